"""Lesson Markdown → ``Lesson``: the only place that reads lesson Markdown.

- ``parse_lesson(text, *, path, lesson_id, strict=False) -> (Lesson | None, [Problem])``
- ``read_lesson(file, *, lesson_id, path=None, strict=False) -> (Lesson | None, [Problem])``
- ``lesson_to_json(lesson) -> dict`` and ``lesson_json_bytes(lesson) -> bytes`` (deterministic),
  ``lesson_schema()`` (its JSON Schema) and ``SCHEMA_VERSION`` of ``lesson.json``
- ``validate_paths(paths, strict) -> Report`` (the engine of ``esl-build validate``)
- ``split_speaker`` and ``speech_text``: the one speaker-line grammar and speech cleaning

The dialect is documented in ``docs/lesson-format.md``.
"""

from esl_build.lesson.model import (
    Block,
    Frontmatter,
    Lesson,
    Segment,
    Span,
    SpeakerProfile,
    StudyText,
    plain_text,
)
from esl_build.lesson.parse import parse_lesson, read_lesson
from esl_build.lesson.report import Report, validate_paths
from esl_build.lesson.serialize import (
    SCHEMA_VERSION,
    lesson_json_bytes,
    lesson_schema,
    lesson_to_json,
)
from esl_build.lesson.speech import speech_text, split_speaker

__all__ = [
    "SCHEMA_VERSION",
    "Block",
    "Frontmatter",
    "Lesson",
    "Report",
    "Segment",
    "Span",
    "SpeakerProfile",
    "StudyText",
    "lesson_json_bytes",
    "lesson_schema",
    "lesson_to_json",
    "parse_lesson",
    "plain_text",
    "read_lesson",
    "speech_text",
    "split_speaker",
    "validate_paths",
]
