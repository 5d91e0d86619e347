"""validate: lesson Markdown → ``build/<id>/lesson.json``, and the digests later stages use.

The record's outputs carry a digest of the page content and one of the speech content (line
numbers left out, so moving text down a line changes neither). Later stages fingerprint these
digests instead of re-parsing, which keeps a no-op build to one file hash per lesson.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esl_build.files import atomic_write
from esl_build.fingerprint import fingerprint, sha256_bytes
from esl_build.lesson.model import Lesson
from esl_build.stages.base import Outcome, Plan, record_of

if TYPE_CHECKING:
    from esl_build.project import Project

PARSER_VERSION = 1  # bump when the same Markdown parses to a different tree
# lesson.json is a function of the source (its sha256 is an input) and the parser: a copy of
# the repository that lacks it makes it again without running the stage (stages.run).
# Later stages read the parsed Lesson, never the file.
derived = True


def plan(project: Project, lesson_id: str, manifest: dict[str, Any]) -> Plan:
    memo = getattr(manifest, "memo", {})
    cached: Plan | None = memo.get("validatePlan")
    if cached is None:
        _, digest = project.source(lesson_id)
        cached = memo["validatePlan"] = Plan(
            "validate", lesson_id, "esl-build",
            {"source": "sha256:" + digest, "parser": PARSER_VERSION,
             "strict": project.settings.strict})
    return cached


def apply(project: Project, plan: Plan, manifest: dict[str, Any]) -> Outcome:
    from esl_build.lesson import lesson_json_bytes

    lesson = project.lesson(plan.lesson_id)
    data = lesson_json_bytes(lesson)
    target = lesson_json_path(project, plan.lesson_id)
    atomic_write(target, data)
    return Outcome({"lessonJson": project.relative(target), "sha256": sha256_bytes(data),
                    "warnings": len(lesson.warnings), **_outputs(project, plan)})


def durable(project: Project, lesson_id: str, record: dict[str, Any],
            manifest: dict[str, Any]) -> bool:
    return os.path.exists(watched(project, lesson_id, record, manifest)[0])


def watched(project: Project, lesson_id: str, record: dict[str, Any],
            manifest: dict[str, Any]) -> tuple[str, ...]:
    return (os.path.join(project.settings.build_dir, lesson_id, "lesson.json"),)


def current(project: Project, lesson_id: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The validate outputs for the lesson as it is now: the record when it is current,
    else computed in memory (``LessonInvalid`` when the lesson has errors)."""
    memo = getattr(manifest, "memo", {})
    validated: dict[str, Any] | None = memo.get("validated")
    if validated is None:
        record = record_of(manifest, "validate")
        current_plan = plan(project, lesson_id, manifest)
        validated = record["outputs"] if record is not None and current_plan.matches(record) \
            else _outputs(project, current_plan)
        memo["validated"] = validated
    return validated


def _outputs(project: Project, plan: Plan) -> dict[str, Any]:
    """Summary and digests of the lesson as planned, worked out once per run and source
    (later stages' plans ask for them before the stage has run, and the stage again)."""
    memo = project.memo.setdefault("validateOutputs", {})
    key = (plan.lesson_id, plan.inputs["source"])
    if key not in memo:
        lesson = project.lesson(plan.lesson_id)
        memo[key] = {**summary(lesson), **digests(lesson)}
    return dict(memo[key])


def lesson_json_path(project: Project, lesson_id: str) -> Path:
    return project.settings.build_dir / lesson_id / "lesson.json"


def summary(lesson: Lesson) -> dict[str, Any]:
    """What an index or status listing shows about a lesson."""
    fm = lesson.frontmatter
    return {"title": fm.title, "student": fm.student, "level": fm.level,
            "topic": ", ".join(fm.topic)}


def digests(lesson: Lesson) -> dict[str, str]:
    """Fingerprints of what the page shows and of what the audio says."""
    fm = _content(lesson.frontmatter)
    speech: dict[str, Any] = {
        "title": lesson.frontmatter.title,
        "profiles": fm["speaker_profiles"],
        "labels": fm["speaker_labels"],
        "segments": [] if lesson.study_text is None else
        [[s.speaker, s.text] for s in lesson.study_text.segments],
    }
    return {"pageDigest": fingerprint({"frontmatter": fm,
                                       "blocks": [_content(b) for b in lesson.blocks]}),
            "speechDigest": fingerprint(speech)}


def _content(value: Any) -> Any:
    """``value`` as plain data without its line numbers: what ``dataclasses.asdict`` gives,
    with every ``line``/``lines`` key left out and tuples as lists, in one walk (asdict
    copies the tree first, which was most of a lesson's validation time)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _content(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in _LINE_FIELDS}
    if isinstance(value, dict):
        return {k: _content(v) for k, v in value.items() if k not in _LINE_FIELDS}
    if isinstance(value, list | tuple):
        return [_content(v) for v in value]
    return value


_LINE_FIELDS = frozenset({"line", "lines"})
