"""Lesson Markdown → ``Lesson``: the only place that reads lesson Markdown.

Public API (implemented in the modules of this package):

- ``parse_lesson(text, *, path, lesson_id, strict=False) -> (Lesson | None, [Problem])``
- ``read_lesson(file, *, lesson_id, path=None, strict=False) -> (Lesson | None, [Problem])``
- ``lesson_to_json(lesson) -> dict`` and ``lesson_json_bytes(lesson) -> bytes`` (deterministic)
- ``SCHEMA_VERSION`` of ``lesson.json``
"""
