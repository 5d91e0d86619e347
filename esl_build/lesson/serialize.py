"""``Lesson`` → ``lesson.json``: deterministic, so later stages can fingerprint it.

Keys are sorted, nothing depends on the clock or the machine (no timestamps, no file paths),
and fields a block does not use are left out.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from esl_build.lesson.model import Block, Lesson, RichText, SpeakerProfile

SCHEMA_VERSION = 1


def lesson_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``lesson.json``, shipped in ``esl_build/schemas``."""
    text = resources.files("esl_build").joinpath("schemas/lesson.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def lesson_to_json(lesson: Lesson) -> dict[str, Any]:
    """The ``lesson.json`` document as plain data (see ``schemas/lesson.schema.json``)."""
    fm = lesson.frontmatter
    study = lesson.study_text
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": lesson.id,
        "frontmatter": {
            "title": fm.title, "student": fm.student, "level": fm.level,
            "topic": list(fm.topic), "input_type": fm.input_type,
            "speaker_labels": list(fm.speaker_labels),
            "speaker_profiles": [_profile(p) for p in fm.speaker_profiles],
            "icon": fm.icon, "cover": fm.cover, "properties": fm.properties,
        },
        "blocks": [_block(block) for block in lesson.blocks],
        "studyText": None if study is None else {
            "line": study.line, "label": study.label, "kind": study.kind,
            "speakers": list(study.speakers),
            "segments": [{"speaker": s.speaker, "text": s.text, "markdown": s.markdown,
                          "line": s.line} for s in study.segments],
        },
        "warnings": [{"line": p.line, "severity": p.severity, "message": p.message}
                     for p in lesson.warnings],
    }


def lesson_json_bytes(lesson: Lesson) -> bytes:
    """``lesson_to_json`` as UTF-8 bytes: sorted keys, indent 2, a trailing newline."""
    text = json.dumps(lesson_to_json(lesson), sort_keys=True, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def rich_text_to_json(rich: RichText) -> list[dict[str, Any]]:
    """Spans as ``{"text", and only the annotations that are set}``."""
    out = []
    for span in rich:
        item: dict[str, Any] = {"text": span.text}
        for name in ("bold", "italic", "strike", "code"):
            if getattr(span, name):
                item[name] = True
        if span.link is not None:
            item["link"] = span.link
        out.append(item)
    return out


def _block(block: Block) -> dict[str, Any]:
    item: dict[str, Any] = {"type": block.type, "line": block.line}
    if block.text:
        item["text"] = rich_text_to_json(block.text)
    if block.children:
        item["children"] = [_block(child) for child in block.children]
    for name in ("url", "icon", "label", "language", "number", "source_id"):
        value = getattr(block, name)
        if value is not None:
            item[name] = value
    if block.toggleable:
        item["toggleable"] = True
    if block.type == "table":
        item["rows"] = [[rich_text_to_json(cell) for cell in row] for row in block.rows]
        item["has_header"] = block.has_header
    return item


def _profile(profile: SpeakerProfile) -> dict[str, Any]:
    return {name: getattr(profile, name) for name in profile.__slots__
            if getattr(profile, name) is not None}
