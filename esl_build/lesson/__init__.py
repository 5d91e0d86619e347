"""Lesson Markdown → ``Lesson``: the only place that reads lesson Markdown.

- ``parse_lesson(text, *, path, lesson_id, strict=False) -> (Lesson | None, [Problem])``
- ``read_lesson(file, *, lesson_id, path=None, strict=False) -> (Lesson | None, [Problem])``
- ``lesson_to_json(lesson) -> dict`` and ``lesson_json_bytes(lesson) -> bytes`` (deterministic),
  ``lesson_schema()`` (its JSON Schema) and ``SCHEMA_VERSION`` of ``lesson.json``
- ``validate_paths(paths, strict) -> Report`` (the engine of ``esl-build validate``)
- ``split_speaker`` and ``speech_text``: the one speaker-line grammar and speech cleaning

The dialect is documented in ``docs/lesson-format.md``.
"""

from typing import TYPE_CHECKING

from esl_build import lazy_exports

# Where each public name lives. Loaded on first use, so code that only needs the model (an
# up-to-date check, the doit backend) does not import the parser and its YAML library.
_HOMES = {
    "Block": "model", "Frontmatter": "model", "Lesson": "model", "Segment": "model",
    "Span": "model", "SpeakerProfile": "model", "StudyText": "model", "plain_text": "model",
    "parse_lesson": "parse", "read_lesson": "parse", "Report": "report",
    "validate_paths": "report", "SCHEMA_VERSION": "serialize", "lesson_json_bytes": "serialize",
    "lesson_schema": "serialize", "lesson_to_json": "serialize", "speech_text": "speech",
    "split_speaker": "speech",
}


__getattr__ = lazy_exports(__name__, _HOMES, globals())


if TYPE_CHECKING:
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
