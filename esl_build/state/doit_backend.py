"""doit's database, kept inside the lesson manifests (doit backend plugin ``manifest``).

doit stores a small record per task (``_values_:``, ``checker:``, ``deps:``). This backend
routes ``<stage>:<lesson-id>`` to ``manifest["doit"]["<stage>:<lesson-id>"]`` of that lesson
and keeps any other task (group tasks, ``index``) in memory only, so there is no other state:
no ``.doit.db`` is ever written, and deleting one changes nothing.

Behaviour that differs from doit's stock backends, on purpose:

- A task's record is not a write of its own: it rides along with the lesson's next stage
  record (``stages.run``), and what is left is written when the run ends (``dump``), so a
  stage costs one manifest write, which matters on an S3 store. A record equal to the stored
  one is not written at all. A kill can lose doit's last records of a lesson, never a stage
  record; doit needs none of them to see a task up to date (staleness never reads them).
- When a task *fails*, doit drops its record. Here a failure changes no manifest: the stage
  record still holds the last good fingerprint and outputs, and the stage reruns anyway
  because its inputs differ from that record (or its output is missing).
- A failed lesson stops only itself. doit reports the tasks downstream of a failed task as
  errors (``UnmetDependency``), which makes its exit code 2; when every error of a run is
  such a consequence of a stage failure, the run's exit code is 1 (a lesson failed), and
  the site's index, which waits for every lesson, is written at the end of the run anyway.
  A configuration error found while loading the tasks exits with 2 (doit's own path for
  such errors would give 3).
- ``doit forget`` removes doit's record *and* the stage's fingerprint, so the stage runs
  again, while the stage's outputs and the ``remote`` identities (page id, storage key) stay:
  the rerun updates the same page instead of creating a second one.
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import TYPE_CHECKING, Any

from doit.exceptions import BaseFail, TaskFailed, UnmetDependency

from esl_build.errors import ConfigInvalid, EslBuildError, ManifestCorrupt
from esl_build.state.manifest import STAGE_NAMES, forget_stage

if TYPE_CHECKING:
    from esl_build.project import Project


@functools.cache
def _route(task_id: str) -> tuple[str, str] | None:
    """``<stage>:<lesson-id>`` → (stage, lesson id); None for tasks of no lesson."""
    stage, sep, lesson_id = task_id.partition(":")
    return (stage, lesson_id) if sep and stage in STAGE_NAMES and lesson_id else None


class ManifestBackend:
    """doit DB backend: ``get/set/in_/remove/remove_all/dump`` over the lesson manifests."""

    def __init__(self, name: str, codec: Any = None, *, module_name: str | None = None):
        self.name = name
        self.codec = codec
        self.project = new_doit_project()  # one per doit run: each looks at the files afresh
        self._pending: dict[str, dict[str, Any]] = {}  # task id → record being saved
        self._memory: dict[str, dict[str, Any]] = {}   # tasks that belong to no lesson
        self._saved: dict[str, dict[str, Any]] = {}    # lesson id → its manifest's "doit"
        self._answers: dict[str, dict[str, Any] | None] = {}  # task id → its record
        self._lock = threading.Lock()
        self._failed: list[tuple[Any, str, BaseFail]] = []  # (runner, task id, failure)
        self._up_to_date_seen: set[str] = set()  # tasks whose skipped event was emitted

    # -- reads ------------------------------------------------------------------------------
    def _record(self, task_id: str) -> dict[str, Any] | None:
        # doit asks several times per task on every run: after the first answer, one dict
        # lookup (no lock: a dict read is atomic; writers hold the lock and drop the answer).
        try:
            return self._answers[task_id]
        except KeyError:
            pass
        record = self._pending.get(task_id) or self._memory.get(task_id)
        if record is None:
            route = _route(task_id)
            saved = None if route is None else self._lesson_records(route[1])
            record = None if saved is None else saved.get(task_id)
        self._answers[task_id] = record
        return record

    def _lesson_records(self, lesson_id: str) -> dict[str, Any] | None:
        """doit's records of one lesson: from the cache of verified lessons, else its manifest."""
        saved = self._saved.get(lesson_id)
        if saved is None and self.project.checked.fresh(lesson_id):
            saved = self._saved[lesson_id] = self.project.checked.doit_records(lesson_id)
        if saved is None:
            try:
                manifest = self.project.store.read(lesson_id) or {}
            except ManifestCorrupt:
                return None  # the stage's action reports it, with the file and line
            saved = self._saved[lesson_id] = dict(manifest.get("doit") or {})
        return saved

    def get(self, task_id: str, dependency: str) -> Any:
        if dependency == "_values_:":
            self._up_to_date(task_id)
        record = self._record(task_id)
        return None if record is None else record.get(dependency)

    def _up_to_date(self, task_id: str) -> None:
        """Emit ``stage.<stage>.skipped`` once for a stage doit found up to date.

        doit 0.37 reads a task's ``_values_:`` only right after it decides the task is up to
        date (``Runner.select_task``; or for another task's ``getargs``, which our tasks do
        not use), and tells a backend nothing else then; a pipeline run emits the same event
        for an up-to-date stage. Pinned by tests/integration/test_pipeline.py."""
        route = _route(task_id)
        with self._lock:
            if route is None or task_id in self._up_to_date_seen:
                return
            self._up_to_date_seen.add(task_id)
        self.project.observer.stage(*route).skipped("up to date")

    def in_(self, task_id: str) -> bool:
        return self._record(task_id) is not None

    # -- writes -----------------------------------------------------------------------------
    def set(self, task_id: str, dependency: str, value: Any) -> None:
        route = _route(task_id)
        if route is not None:
            self._lesson_records(route[1])  # loaded before this record joins them
        with self._lock:
            self._answers.pop(task_id, None)
            if route is None:
                self._memory.setdefault(task_id, {})[dependency] = value
                return
            record = self._pending.setdefault(task_id, {})
            record[dependency] = list(value) if isinstance(value, tuple) else value
            if dependency != "deps:":  # doit writes deps: last: the record is complete
                return
            del self._pending[task_id]
            saved = self._saved.setdefault(route[1], {})
            self._answers.pop(task_id, None)
            known = saved.get(task_id) == record
            saved[task_id] = record
        # The task just ran. Unless this process recorded its stage, a worker process did
        # (-P process), or another machine: the stage record is news to this process, whose
        # up-to-date checks of the next stages must see it.
        if not self.project.recorded_here(*route):
            self.project.store.invalidate(route[1])
        if not known:  # else the manifest holds it already
            self.project.queue_doit_record(route[1], task_id, record)

    def remove(self, task_id: str) -> None:
        failure = _failure_being_handled()
        if failure is not None:
            self._failed.append(failure)
        route = _route(task_id)
        with self._lock:
            self._answers.pop(task_id, None)
            self._pending.pop(task_id, None)
            self._memory.pop(task_id, None)
            if route is not None:
                self._saved.get(route[1], {}).pop(task_id, None)
        if route is None or failure is not None:
            return
        stage, lesson_id = route
        self.project.drop_doit_record(lesson_id, task_id)

        def forget(manifest: dict[str, Any]) -> None:
            manifest["doit"].pop(task_id, None)
            forget_stage(manifest, stage)

        try:
            if self.project.store.read(lesson_id) is not None:
                self.project.store.update(lesson_id, forget)
        except ManifestCorrupt as error:  # `doit forget`: doit's form, no traceback
            sys.stderr.write(f"ERROR: {error}\n")
            raise SystemExit(error.exit_code) from None

    def remove_all(self) -> None:
        for lesson_id in list(self.project.store.ids()):
            for stage in STAGE_NAMES:
                self.remove(f"{stage}:{lesson_id}")

    def dump(self) -> None:
        """Write doit's records that no stage record carried (one write per lesson), then
        the cache of lessons verified up to date (it is only a cache). doit calls this when
        its run ends: a run whose errors all follow from failed stages settles here."""
        self.project.flush_doit_records()
        if "checked" in vars(self.project):
            self.project.checked.save()
        if self._failed:
            self._settle_failures()

    def _settle_failures(self) -> None:
        consequences = [f for _, _, f in self._failed if isinstance(f, UnmetDependency)]
        others = [f for _, _, f in self._failed if not isinstance(f, UnmetDependency)]
        if "index" in {task for _, task, f in self._failed if isinstance(f, UnmetDependency)}:
            from esl_build.site import write_index
            if self.project.settings.publisher == "html":
                write_index()  # every lesson is done, failed or not: show where each stands
        runner = self._failed[0][0]
        if (consequences and others and all(isinstance(f, TaskFailed) for f in others)
                and getattr(runner, "final_result", None) == _DOIT_ERROR):
            runner.final_result = _DOIT_FAILURE


def doit_project() -> Project:
    """The project of the doit run in progress: the one its ``ManifestBackend`` built.

    doit builds the backend (``Globals.dep_manager.backend``) before it loads the tasks, and
    the task loader, the up-to-date checks, the actions and the reporter all run inside that
    run, so they share its project without any "current" object of our own. Outside a doit
    run (no manifest backend), a new project is built."""
    from doit.globals import Globals

    backend = getattr(Globals.dep_manager, "backend", None)
    if isinstance(backend, ManifestBackend):
        return backend.project
    return new_doit_project()


def new_doit_project() -> Project:
    """A project resolved from the environment, its settings, services and config files
    checked.

    A bad one prints ``ERROR: <file:line: message>`` (doit's form, no traceback) and exits
    with 2, the code for bad configuration everywhere: doit's loader would exit with 3."""
    from esl_build.project import Project
    from esl_build.settings import Settings
    try:
        project = Project(Settings.resolve())
        project.check_setup()
    except EslBuildError as error:
        sys.stderr.write(f"ERROR: {error}\n")
        raise SystemExit(ConfigInvalid.exit_code) from None
    return project


_DOIT_FAILURE, _DOIT_ERROR = 1, 2  # doit.runner.FAILURE, ERROR


def _failure_being_handled() -> tuple[Any, str, BaseFail] | None:
    """(doit's runner, task id, failure) when doit removes a record because the task just
    failed, else None (``doit forget``).

    doit 0.37 calls ``remove`` from ``Dependency.remove_success``, which its runner calls
    from ``_handle_task_error(node, base_fail)`` before counting the failure; nothing else
    tells the two apart. Pinned by tests/integration/test_failures.py."""
    frame = sys._getframe(2)
    if frame.f_code.co_name != "remove_success" or frame.f_back is None:
        return None
    handler = frame.f_back
    if handler.f_code.co_name != "_handle_task_error":
        return None
    found = handler.f_locals
    return found["self"], found["node"].task.name, found["base_fail"]
