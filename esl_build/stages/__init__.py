"""The five stages and the engine that decides, runs and records them.

``status(project, stage, id)`` is pure: it says whether a stage is stale and why (which input
changed, or which output is gone). ``run(project, stage, id)`` takes the lesson's lease,
checks again (another worker may have just done it), applies the plan and writes the
stage's record at once, so a kill loses nothing completed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from esl_build.errors import ConfigInvalid, EslBuildError, LessonInvalid
from esl_build.stages import add_audio, import_page, tts, upload, validate
from esl_build.stages.base import (
    STAGES,
    UPSTREAM,
    Cost,
    ManifestView,
    Outcome,
    Plan,
    Waiting,
    record_of,
)
from esl_build.state.checked import Stamp, stamp
from esl_build.state.manifest import record_stage

if TYPE_CHECKING:
    from esl_build.observability import StageEvents
    from esl_build.project import Project

OUTPUT_MISSING = "output missing"
MODULES: dict[str, ModuleType] = {"validate": validate, "import": import_page, "tts": tts,
                                  "upload": upload, "add-audio": add_audio}

__all__ = ["MODULES", "STAGES", "UPSTREAM", "Cost", "Outcome", "Plan", "Status", "Waiting",
           "estimate", "run", "status", "statuses"]


@dataclass(frozen=True)
class Status:
    """Whether one stage of one lesson is up to date; ``reason`` is empty when it is.

    ``plan`` and ``record`` are None when the verdict came from the cache of lessons
    verified before (nothing was computed or read)."""

    stage: str
    lesson_id: str
    reason: str
    plan: Plan | None = None
    record: dict[str, Any] | None = None

    @property
    def stale(self) -> bool:
        return bool(self.reason)


def status(project: Project, stage: str, lesson_id: str,
           manifest: dict[str, Any] | None = None) -> Status:
    """Compare the stage's current plan with its record. Writes and calls nothing.

    ``manifest`` is the lesson's manifest if the caller has read it already."""
    if manifest is None:
        manifest = ManifestView(project.store.read(lesson_id))
    record = record_of(manifest, stage)
    module = MODULES[stage]
    try:
        plan = module.plan(project, lesson_id, manifest)
    except Waiting as waiting:
        return Status(stage, lesson_id, str(waiting), None, record)
    except LessonInvalid:
        return Status(stage, lesson_id, "the lesson has errors (see esl-build validate)",
                      None, record)
    if record is None:
        reason = "never built"
    elif "fingerprint" not in record:
        reason = "forgotten (doit forget): runs again, keeping its page/object ids"
    elif not plan.matches(record):
        reason = "changed: " + ", ".join(_changed(record.get("inputs", {}), plan.inputs))
    elif not _durable(project, stage, lesson_id, record, manifest):
        reason = OUTPUT_MISSING
    else:
        reason = ""
    return Status(stage, lesson_id, reason, plan, record)


def statuses(project: Project, lesson_id: str) -> dict[str, Status]:
    """Every stage's status for one lesson, from one read of its manifest.

    Cached until this process writes the lesson's manifest (or ``project.status_cache`` is
    cleared, as each doit run does when it starts), so doit's five up-to-date checks and the
    index cost one computation. A stale entry can only make a stage *try* to run: ``run``
    checks again under the lesson's lease, from the manifest on disk."""
    key = project.store.generation(lesson_id)
    hit = project.status_cache.get(lesson_id)
    if hit is not None and hit[0] == key:
        return hit[1]
    checked = project.checked
    if checked.fresh(lesson_id):  # nothing it depends on changed since it was verified
        result = {stage: Status(stage, lesson_id, "") for stage in STAGES}
    else:
        manifest_stamp = project.store.stamp(lesson_id)
        result, files, manifest = _verify(project, lesson_id)
        if any(state.stale for state in result.values()):
            checked.forget(lesson_id)
        else:
            checked.remember(lesson_id, files, manifest.get("doit") or {}, manifest_stamp)
    project.status_cache[lesson_id] = (key, result)
    return result


def _verify(project: Project, lesson_id: str
            ) -> tuple[dict[str, Status], dict[str, Stamp], dict[str, Any]]:
    """Every stage's status by content, the stamps (taken first) of the files read, and the
    manifest."""
    files = {str(project.source_path(lesson_id)): stamp(str(project.source_path(lesson_id)))}
    manifest = ManifestView(project.store.read(lesson_id))
    for stage in STAGES:
        record = record_of(manifest, stage)
        if record:
            for path in _watched(project, stage, lesson_id, record, manifest):
                files[path] = stamp(path)
    return ({stage: status(project, stage, lesson_id, manifest) for stage in STAGES}, files,
            manifest)


@dataclass(frozen=True)
class Result:
    stage: str
    lesson_id: str
    ran: bool
    cost: Cost = field(default_factory=Cost)


def run(project: Project, stage: str, lesson_id: str, *, force: bool = False) -> Result:
    """Run one stage of one lesson if it is stale (or ``force``), and record it.

    Emits ``stage.<stage>.start|success|skipped|failure`` through ``project.observer``.
    Raises ``EslBuildError`` subclasses for anything a user can fix. A failure is kept in
    ``project.failures`` (not in the manifest) until the stage succeeds or is up to date;
    configuration errors are no lesson's failure and are not kept."""
    events = project.observer.stage(stage, lesson_id)
    try:
        result = _run(project, stage, lesson_id, force, events)
    except BaseException as error:
        events.failure(error)
        if isinstance(error, EslBuildError) and error.exit_code != ConfigInvalid.exit_code:
            project.failures.record(lesson_id, stage, str(error), project.settings.run_id)
        raise
    project.failures.clear(lesson_id, stage)
    return result


def _run(project: Project, stage: str, lesson_id: str, force: bool,
         events: StageEvents) -> Result:
    with project.store.lease(lesson_id):
        # Read afresh under the lease: another worker may have just run this stage.
        manifest = ManifestView(project.store.read_versioned(lesson_id)[0])
        current = status(project, stage, lesson_id, manifest)
        if current.plan is None:
            if stage != "validate" and "errors" in current.reason:
                project.lesson(lesson_id)  # raises LessonInvalid with every problem
            raise EslBuildError(f"{stage}:{lesson_id}: {current.reason}; "
                                f"run `doit {stage}:{lesson_id}` to build what it needs")
        if not current.stale and not force:
            events.skipped("up to date")
            return Result(stage, lesson_id, ran=False)
        plan = current.plan
        module = MODULES[stage]
        # A derived output (``derived = True``: a pure, cheap function of the recorded
        # inputs, made locally) that is only missing is made again; when it comes out exactly
        # as recorded, for free, the record stands: no write, no new run id. So a fresh copy
        # of the repository re-makes its local files without running the stage again.
        remaking = (current.reason == OUTPUT_MISSING and not force
                    and getattr(module, "derived", False))
        if not remaking:
            events.start(reason=current.reason or "forced", fingerprint=plan.fingerprint)
        outcome: Outcome = module.apply(project, plan, manifest)
        if remaking:
            if outcome.cost == Cost() and _as_json(outcome.outputs) == (
                    current.record or {}).get("outputs"):
                events.skipped("up to date: its missing output was made again")
                return Result(stage, lesson_id, ran=False)
            events.start(reason=current.reason, fingerprint=plan.fingerprint)
        remote = _is_remote(project, stage)
        doit_records = project.unsaved_doit_records(lesson_id)

        def record(manifest: dict[str, Any]) -> None:
            record_stage(manifest, stage=stage, backend=plan.backend, remote=remote,
                         fingerprint=plan.fingerprint, inputs=plan.inputs,
                         outputs=outcome.outputs, cost=outcome.cost.to_json(),
                         run_id=project.settings.run_id)
            manifest["doit"].update(doit_records)  # doit's records wait for this one write

        project.store.update(lesson_id, record)
        project.note_recorded(stage, lesson_id)
        events.success(outcome.cost.to_json(), {"backend": plan.backend, **outcome.outputs})
        return Result(stage, lesson_id, ran=True, cost=outcome.cost)


def _as_json(value: Any) -> Any:
    """``value`` as a manifest holds it (tuples as lists)."""
    return json.loads(json.dumps(value))


SERVICE_OF = {"import": "publisher", "tts": "voice", "upload": "storage", "add-audio": "publisher"}


def _durable(project: Project, stage: str, lesson_id: str, record: dict[str, Any],
             manifest: dict[str, Any]) -> bool:
    """The stage's own check if it has one, else its service's check of the outputs."""
    check = getattr(MODULES[stage], "durable", None)
    if check:
        return bool(check(project, lesson_id, record, manifest))
    return bool(getattr(project, SERVICE_OF[stage]).durable(record.get("outputs", {})))


def _watched(project: Project, stage: str, lesson_id: str, record: dict[str, Any],
             manifest: dict[str, Any]) -> tuple[str, ...]:
    """The local files the stage's durability check reads."""
    files = getattr(MODULES[stage], "watched", None)
    if files:
        return tuple(files(project, lesson_id, record, manifest))
    return tuple(getattr(project, SERVICE_OF[stage]).watched(record.get("outputs", {})))


def _is_remote(project: Project, stage: str) -> bool:
    """Whether the stage's backend leaves the machine (its identities must be kept)."""
    return stage in SERVICE_OF and getattr(project, SERVICE_OF[stage]).remote


def estimate(project: Project, current: Status, seen: set[str] | None = None) -> Cost:
    """What running a stale stage would spend (characters to synthesise, requests to send).

    ``seen`` collects the work already counted for other lessons (tts requests shared by
    several lessons are billed once), so a sum over a build is exact; it goes to the stages
    whose estimate takes it (``shared_work = True``)."""
    if current.plan is None:
        return Cost()
    module = MODULES[current.stage]
    estimator = getattr(module, "estimate", None)
    if estimator is None:
        return Cost()
    if getattr(module, "shared_work", False):
        return estimator(project, current.plan, seen)  # type: ignore[no-any-return]
    return estimator(project, current.plan)  # type: ignore[no-any-return]


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    names = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            names += [f"{key}.{sub}" for sub in _changed(old, new)]
        else:
            names.append(key)
    return names or ["inputs"]
