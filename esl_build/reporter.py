"""What a build prints: ``esl-build`` (the default) for people, doit's ``console`` for scripts.

``esl-build`` (``BuildReporter``, set as the default in ``DOIT_CONFIG``; also ``doit
--reporter esl-build``) prints one line naming each stage's backend, then one line per task
that ran, with a progress count (``[12/40] tts:b1/unit3``; up-to-date tasks are counted, not
listed), each new speaker's voice (flagging guessed ones), a failed task once with its
``file:line`` problems, and at the end a table per stage (ran, up to date, failed, not run;
characters synthesised, requests sent), the lessons that failed, and where the result is:
the site's ``index.html``, or the page URLs of a remote publisher.

Tasks downstream of a failed one are not run; doit calls them failures
(``UnmetDependency``), this reporter counts them as "not run" and says nothing more.

``console`` is doit's stock ``ConsoleReporter`` (``.  task`` ran, ``-- task`` up to date),
unchanged, for scripts that read those lines.

doit calls a reporter from its main thread, except ``execute_task`` (worker threads under
``-P thread``), which this one leaves alone; writes hold a lock all the same.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from doit.exceptions import UnmetDependency
from doit.reporter import ConsoleReporter

from esl_build.casting import VoiceChoice, new_choices, voice_choices
from esl_build.errors import EslBuildError
from esl_build.stages import STAGES

if TYPE_CHECKING:
    from esl_build.project import Project

OUTCOMES = ("ran", "up to date", "failed", "not run")


class BuildReporter(ConsoleReporter):  # type: ignore[misc]  # doit has no type hints
    """doit reporter ``esl-build``: progress, failures and voices for people (see module)."""

    desc = "esl-build's output: what ran with a progress count, failures once, a summary"

    def __init__(self, outstream: Any, options: dict[str, Any]):
        super().__init__(outstream, options)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._ran: list[str] = []
        self._failed: dict[str, str] = {}  # lesson id → its first failed task
        self._guessed: dict[str, list[VoiceChoice]] = {}  # lesson id → guessed new voices
        self._total = 0
        self._done = 0
        self._lock = threading.Lock()

    @staticmethod
    def _project() -> Project:
        from esl_build.state.doit_backend import doit_project
        return doit_project()

    def write(self, text: str) -> None:
        with self._lock:
            self.outstream.write(text)

    # -- doit's calls -----------------------------------------------------------------------
    def initialize(self, tasks: dict[str, Any], selected_tasks: list[str]) -> None:
        settings = self._project().settings
        backends = " ".join(f"{stage}={name}" for stage, name in settings.backends.items()
                            if stage != "validate")
        self._total = _count_actions(tasks, selected_tasks)
        self.write(f"esl-build {settings.run_id}: {backends}\n")

    def execute_task(self, task: Any) -> None:
        pass  # a task is shown when it ends, with its outcome

    def add_success(self, task: Any) -> None:
        if not task.actions:
            return
        stage, lesson_id = _split(task.name)
        if stage and not self._ran_this_run(stage, lesson_id):
            self._finish(task.name, "up to date")  # re-checked under its lease: done already
            return
        self._ran.append(task.name)
        lines = [self._finish(task.name, "ran")]
        if stage == "tts":
            lines += self._voices(task, lesson_id)
        self.write("".join(lines))

    def skip_uptodate(self, task: Any) -> None:
        if task.actions:
            self._finish(task.name, "up to date")

    def skip_ignore(self, task: Any) -> None:
        if task.actions:
            self.write(self._finish(task.name, "not run") + " (ignored: doit ignore)\n")

    def add_failure(self, task: Any, exception: Any) -> None:
        if isinstance(exception, UnmetDependency):
            if task.actions:
                self._finish(task.name, "not run")
            return
        self.failures.append({"task": task, "exception": exception})
        _, lesson_id = _split(task.name)
        if lesson_id:
            self._failed.setdefault(lesson_id, task.name)
        message = exception.get_msg().rstrip("\n")
        indented = "".join(f"    {line}\n" for line in message.splitlines())
        self.write(self._finish(task.name, "failed") + " failed\n" + indented)

    def complete_run(self) -> None:
        if self.runtime_errors:
            self.write("Execution aborted.\n" + "\n".join(self.runtime_errors) + "\n")
        if not self._counts:
            return
        characters, requests = self._spent()
        text = format_summary(self._counts, characters, requests)
        if self._guessed:
            where = ("a gender in the lesson's speaker_profiles"
                     if self._project().settings.voice == "espeak" else
                     "a voice in configs/voices.yml or a gender in the lesson's "
                     "speaker_profiles")
            guesses = "; ".join(f"{lesson_id}: {', '.join(c.speaker for c in choices)}"
                                for lesson_id, choices in self._guessed.items())
            text += (f"warning: guessed voices (nothing says who these speakers are): "
                     f"{guesses}. Give each {where}\n")
        if self._failed:
            failed = ", ".join(f"{lesson_id} (at {task.partition(':')[0]})"
                               for lesson_id, task in self._failed.items())
            text += (f"failed: {failed}; the other lessons are built. Fix the problems above "
                     "and build again\n")
        text += self._result()
        self.write(text)

    # -- helpers ----------------------------------------------------------------------------
    def _finish(self, name: str, outcome: str) -> str:
        """Count a task's outcome; returns its progress line without the newline."""
        stage, _ = _split(name)
        with self._lock:
            self._done += 1
            if stage:
                self._counts[(stage, outcome)] += 1
            done = self._done
        line = f"[{done}/{max(self._total, done)}] {name}"
        return line + "\n" if outcome == "ran" else line

    def _record(self, stage: str, lesson_id: str) -> dict[str, Any]:
        try:
            manifest = self._project().store.read(lesson_id) or {}
        except EslBuildError:
            return {}
        return dict(((manifest.get("stages") or {}).get(stage)) or {})

    def _ran_this_run(self, stage: str, lesson_id: str) -> bool:
        record = self._record(stage, lesson_id)
        return not record or record.get("runId") == self._project().settings.run_id

    def _voices(self, task: Any, lesson_id: str) -> list[str]:
        """The line naming each new speaker's voice (and remembering guessed ones)."""
        project = self._project()
        after = self._record("tts", lesson_id).get("outputs", {}).get("voices")
        from esl_build.tasks import RecordMatches
        status = next((check.status for check, *_ in task.uptodate
                       if isinstance(check, RecordMatches)), None)
        before = ((status.record or {}).get("outputs") or {}).get("voices") if status else None
        source = getattr(project.voice, "source", None)
        source_of = None
        if source is not None:
            try:
                lesson = project.lesson(lesson_id)
            except EslBuildError:
                lesson = None
            if lesson is not None:
                def source_of(speaker: str) -> str:
                    return str(source(lesson, speaker))
        new = new_choices(before, voice_choices(after, source_of))
        guessed = [choice for choice in new if choice.guessed]
        if guessed:
            self._guessed[lesson_id] = guessed
        return ["    voices: " + ", ".join(map(str, new)) + "\n"] if new else []

    def _spent(self) -> tuple[int, int]:
        characters = requests = 0
        for name in self._ran:
            stage, lesson_id = _split(name)
            if stage:
                cost = self._record(stage, lesson_id).get("cost", {})
                characters += cost.get("characters", 0)
                requests += cost.get("requests", 0)
        return characters, requests

    def _result(self) -> str:
        """Where the result is: the index page, or the pages that changed."""
        project = self._project()
        if project.settings.publisher == "html":
            index = project.settings.site_dir / "index.html"
            return f"open {project.relative(index)} to see every lesson\n" if index.exists() \
                else ""
        changed = sorted({lesson_id for name in self._ran for stage, lesson_id in [_split(name)]
                          if stage in ("import", "add-audio")})
        urls = [(lesson_id, self._record("import", lesson_id).get("outputs", {}).get("url"))
                for lesson_id in changed]
        if not urls:
            return "no page changed; `esl-build status` lists every page's URL\n"
        return "pages:\n" + "".join(f"  {lesson_id}: {url}\n" for lesson_id, url in urls if url)


def _split(task_name: str) -> tuple[str, str]:
    """``tts:b1/unit1`` → ("tts", "b1/unit1"); ("", "") for tasks of no lesson."""
    stage, sep, lesson_id = task_name.partition(":")
    return (stage, lesson_id) if sep and stage in STAGES else ("", "")


def _count_actions(tasks: dict[str, Any], selected: list[str]) -> int:
    """How many tasks with actions the selected tasks take (themselves and upstream)."""
    seen: set[str] = set()
    todo = list(selected)
    while todo:
        name = todo.pop()
        if name in seen or name not in tasks:
            continue
        seen.add(name)
        todo.extend(tasks[name].task_dep)
    return sum(1 for name in seen if tasks[name].actions)


def format_summary(counts: Counter[tuple[str, str]], characters: int, requests: int) -> str:
    """The end-of-run table (also used by ``esl-build rerun``); "not run" only when some
    task was not run."""
    outcomes = OUTCOMES if any(counts[(s, "not run")] for s in STAGES) else OUTCOMES[:3]
    lines = ["", f"{'stage':<10}" + "".join(f"{o:>12}" for o in outcomes)]
    for stage in STAGES:
        if any(counts[(stage, o)] for o in outcomes):
            lines.append(f"{stage:<10}" + "".join(f"{counts[(stage, o)]:>12}" for o in outcomes))
    lines.append(f"characters synthesised: {characters}   requests sent: {requests}")
    return "\n".join(lines) + "\n"
