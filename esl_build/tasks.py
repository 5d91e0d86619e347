"""Lesson ids → doit task dicts. A lessons repository's ``dodo.py`` is one import of this.

For every lesson ``<id>``: ``validate:<id>`` → ``import:<id>`` and ``tts:<id>`` →
``upload:<id>`` → ``add-audio:<id>`` (after both import and upload), plus the group tasks
``validate``, ``import``, … and ``index`` (the HTML site's index page). Tasks have no
``file_dep``/``targets``: each one's ``uptodate`` compares the stage's plan with its record in
the lesson manifest, so staleness is by content, the manifest is the database, and
``doit info TASK`` prints why a task is stale.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from doit.exceptions import TaskFailed

from esl_build.errors import EslBuildError, Problem
from esl_build.project import Project
from esl_build.reporter import BuildReporter
from esl_build.stages import STAGES, UPSTREAM
from esl_build.state.doit_backend import doit_project

DOIT_CONFIG = {
    "backend": "manifest",     # esl_build.state.doit_backend.ManifestBackend (entry point)
    "dep_file": "lessons",     # unused by the manifest backend: no .doit.db is written
    "reporter": BuildReporter,
    "default_tasks": [*STAGES, "index"],
}

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

    doit calls it right before the task would run (after upstream tasks ran), and
    ``doit info`` prints its ``repr``, which carries the reason."""

    stage: str
    lesson_id: str
    why: str = field(default="not checked yet", compare=False)

    # doit inspects each check's signature to decide what to pass; a ready-made one saves
    # that work on every task (and asks doit for no saved values: staleness never uses them).
    __signature__ = inspect.Signature(
        [inspect.Parameter("task", inspect.Parameter.POSITIONAL_OR_KEYWORD)])

    def __call__(self, task: object) -> bool:
        from esl_build.stages import statuses
        try:
            self.why = statuses(Project.current(), self.lesson_id)[self.stage].reason
        except EslBuildError as error:  # e.g. a corrupt manifest: the action reports it
            self.why = f"cannot check: {error}"
        return not self.why

    def __repr__(self) -> str:
        return f"{self.stage}:{self.lesson_id}: {self.why or 'up to date'}"


def run_stage(stage: str, lesson_id: str) -> TaskFailed | None:
    """The action of ``<stage>:<lesson-id>``: user errors become a one-paragraph failure."""
    from esl_build import stages
    project = Project.current()
    try:
        result = stages.run(project, stage, lesson_id)
    except EslBuildError as error:
        return TaskFailed(str(error))
    if not result.ran:  # another worker had just done it: the summary says "up to date"
        project.found_done.add(f"{stage}:{lesson_id}")
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
