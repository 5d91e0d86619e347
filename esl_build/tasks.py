"""Lesson ids → doit task dicts. A lessons repository's ``dodo.py`` is one import of this.

For every lesson ``<id>``: ``validate:<id>`` → ``import:<id>`` and ``tts:<id>`` →
``upload:<id>`` → ``add-audio:<id>`` (after both import and upload), plus the group tasks
``validate``, ``import``, … and ``index`` (the HTML site's index page). Tasks have no
``file_dep``/``targets``: each one's ``uptodate`` compares the stage's plan with its record in
the lesson manifest, so staleness is by content, the manifest is the database, and
``doit info TASK`` prints why a task is stale.

``DOIT_CONFIG`` makes esl-build's reporter the default (``--reporter console`` gives doit's
own lines) and continues past failures (``--no-continue`` stops at the first): a stage that
fails stops only its lesson's later stages, and the run exits with 1.
"""

from __future__ import annotations

import atexit
import gc
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from doit.exceptions import TaskError, TaskFailed

from esl_build.errors import ConfigInvalid, EslBuildError, Problem
from esl_build.reporter import BuildReporter
from esl_build.stages import UPSTREAM
from esl_build.state.doit_backend import doit_project

if TYPE_CHECKING:
    from esl_build.stages import Status

DOIT_CONFIG = {
    "backend": "manifest",     # esl_build.state.doit_backend.ManifestBackend (entry point)
    "dep_file": "lessons",     # unused by the manifest backend: no .doit.db is written
    "reporter": BuildReporter,
    # doit dispatches ready tasks in this order: tts before import, so the slow, paid
    # requests start first and the pages are published while they are in flight.
    "default_tasks": ["validate", "tts", "import", "upload", "add-audio", "index"],
    # A broken lesson stops only itself: the other lessons are built (`--no-continue` stops
    # at the first failure).
    "continue": True,
}

# The process exits right after its last task: freezing the heap first spares the
# interpreter's final garbage collection over every module and SDK class it loaded (about
# 0.1 s, a third of a no-op build). Objects are still released; only that last pass is skipped.
atexit.register(gc.freeze)

STAGE_DOCS = {
    "validate": "Check each lesson and write build/<id>/lesson.json.",
    "import": "Publish each lesson as one page (updated in place on reruns).",
    "tts": "Voice each lesson's study text to build/<id>/audio.mp3 (changed lines only).",
    "upload": "Store each lesson's MP3 under a content-named key; record its URL.",
    "add-audio": "Link each lesson's audio into its page, above the study text.",
}


@dataclass
class RecordMatches:
    """doit ``uptodate`` check: the stage's record matches its plan and its output exists.

    doit calls it right before the task would run (after upstream tasks ran). ``doit info``
    prints it when the task is stale: "tts:unit1 is stale: the study text changed (lines
    12, 14)". ``status`` is what the check found (the reporter reads the previous record
    from it)."""

    stage: str
    lesson_id: str
    why: str = field(default="not checked yet", compare=False)
    status: Status | None = field(default=None, compare=False, repr=False)

    # doit inspects each check's signature to decide what to pass; a ready-made one saves
    # that work on every task (and asks doit for no saved values: staleness never uses them).
    __signature__ = inspect.Signature(
        [inspect.Parameter("task", inspect.Parameter.POSITIONAL_OR_KEYWORD)])

    def __call__(self, task: object) -> bool:
        from esl_build.stages import statuses
        try:
            self.status = statuses(doit_project(), self.lesson_id)[self.stage]
            self.why = self.status.reason
        except EslBuildError as error:  # e.g. a corrupt manifest: the action reports it
            self.why = f"cannot check: {error}"
        return not self.why

    def __str__(self) -> str:
        name = f"{self.stage}:{self.lesson_id}"
        if not self.why:
            return f"{name} is up to date: {UP_TO_DATE[self.stage]}"
        return f"{name} is stale: {explain(self.stage, self.why, self.status)}"

    __repr__ = __str__


UP_TO_DATE = {
    "validate": "its record matches the lesson file and lesson.json exists",
    "import": "its record matches the page content, colour preset and publisher",
    "tts": "its record matches the study text, voices and settings, and the MP3 exists",
    "upload": "its record matches the MP3 and the storage, and the object exists",
    "add-audio": "the page holds the player for the uploaded audio",
}

_INPUTS = {  # (stage, input) or input → what a change of it means, in words
    "source": "the lesson file changed",
    "parser": "esl-build's lesson parser changed",
    "strict": "strict mode (ESL_BUILD_STRICT) changed",
    ("import", "page"): "the page content changed",
    ("add-audio", "page"): "the page is another one",
    "preset": "the colour preset changed",
    "speech": "the study text changed",
    "assembly": "the way the audio is put together changed",
    ("upload", "audio"): "the MP3 changed",
    ("add-audio", "audio"): "the audio URL changed",
    ("import", "settings"): "the publisher or its settings changed",
    ("add-audio", "settings"): "the publisher or its settings changed",
    ("tts", "settings"): "the voice or its settings changed",
    ("upload", "settings"): "the storage or its settings changed",
}


def explain(stage: str, reason: str, status: Status | None = None) -> str:
    """A stale stage's reason in plain words ("changed: speech" → "the study text changed"),
    with the lines still to voice when the study text changed."""
    if not reason.startswith("changed: "):
        return {"never built": "it was never built",
                "output missing": "its output is missing"}.get(reason, reason)
    keys: dict[str, list[str]] = {}
    for name in reason.removeprefix("changed: ").split(", "):
        top, _, sub = name.partition(".")
        keys.setdefault(top, []).extend([sub] if sub else [])
    words = []
    for top, subs in keys.items():
        text = _INPUTS.get((stage, top)) or _INPUTS.get(top) or f"its input {top!r} changed"
        if top == "speech" and status is not None and status.plan is not None:
            text += _lines_to_voice(status)
        elif subs:
            text += f" ({', '.join(subs)})"
        words.append(text)
    return "; ".join(words)


def _lines_to_voice(status: Status) -> str:
    from esl_build.stages import tts
    assert status.plan is not None
    try:
        lines = tts.unvoiced_lines(doit_project(), status.plan)
    except EslBuildError:
        return ""
    return f" (line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))})" if lines \
        else " (every line is voiced already)"


def run_stage(stage: str, lesson_id: str) -> TaskFailed | TaskError | None:
    """The action of ``<stage>:<lesson-id>``: a user error becomes a one-paragraph failure
    (doit's exit code 1), a configuration error a doit error (exit code 2)."""
    from esl_build import stages
    try:
        stages.run(doit_project(), stage, lesson_id)
    except EslBuildError as error:
        if error.exit_code == ConfigInvalid.exit_code:
            return TaskError(str(error))
        return TaskFailed(str(error))
    return None


def _refused(problem: Problem) -> TaskFailed:
    return TaskFailed(str(problem))


def _stage_tasks(stage: str) -> Iterator[dict[str, Any]]:
    project = doit_project()
    yield {"basename": stage, "name": None, "doc": STAGE_DOCS[stage]}
    if stage == "validate":  # a file that can't be a lesson fails here, naming itself
        for problem in project.refused_lessons():
            yield {"basename": stage, "name": problem.path,  # printable: see discovery
                   "doc": f"refused: {problem.message}", "actions": [(_refused, [problem])],
                   "verbosity": 2, "io": {"capture": False}}
    for lesson_id in project.lesson_ids():
        yield {
            "basename": stage,
            "name": lesson_id,
            "doc": f"{stage} {project.display_path(lesson_id)}",
            "actions": [(run_stage, [stage, lesson_id])],
            "task_dep": [f"{up}:{lesson_id}" for up in UPSTREAM[stage]],
            "uptodate": [RecordMatches(stage, lesson_id)],
            "verbosity": 2,
            # doit's output capture swaps the global sys.stdout around each action; with
            # `-P thread` the swaps interleave and nest, and over a large build the chain of
            # wrappers grows until writing to it overflows the stack. Our actions print
            # nothing worth capturing.
            "io": {"capture": False},
        }


def task_validate() -> Iterator[dict[str, Any]]:
    yield from _stage_tasks("validate")


def task_import() -> Iterator[dict[str, Any]]:
    yield from _stage_tasks("import")


def task_tts() -> Iterator[dict[str, Any]]:
    yield from _stage_tasks("tts")


def task_upload() -> Iterator[dict[str, Any]]:
    yield from _stage_tasks("upload")


def task_add_audio() -> Iterator[dict[str, Any]]:
    yield from _stage_tasks("add-audio")


def task_index() -> dict[str, Any]:
    """Write build/site/index.html: every lesson, its status and its audio (html publisher)."""
    from esl_build.site import IndexMatches, write_index

    project = doit_project()
    if project.settings.publisher != "html":
        return {"actions": None, "doc": "(only with the html publisher)"}
    return {"actions": [write_index], "task_dep": ["import", "add-audio"],
            "uptodate": [IndexMatches()], "verbosity": 2, "io": {"capture": False}}
