"""The predecessor's lessons: all parse, the accepted ones are accepted, ``bad.md`` is rejected
once per problem; their ``lesson.json`` matches the golden files and the shipped JSON Schema.

Run with ``UPDATE_GOLDEN=1`` to rewrite the golden files (then review the diff).
"""

from __future__ import annotations

import json
import os

import jsonschema
import pytest
from lesson_helpers import FIXTURES, GOLDEN, errors

from esl_build.lesson import lesson_json_bytes, lesson_schema, read_lesson

LESSONS = sorted(FIXTURES.glob("*.md"))
ACCEPTED = [path for path in LESSONS if path.name != "bad.md"]


def read(path):
    lesson, problems = read_lesson(path, lesson_id=path.stem, path=path.name)
    assert lesson is not None
    return lesson, problems


def test_the_fixtures_are_there():
    assert {path.name for path in LESSONS} >= {"ok.md", "bad.md", "first.md", "fixture.md"}


@pytest.mark.parametrize("path", ACCEPTED, ids=lambda p: p.name)
def test_accepted_by_the_predecessor_is_accepted(path):
    _, problems = read(path)
    assert errors(problems) == []


def test_bad_is_rejected_with_each_problem_once_and_a_line():
    _, problems = read(FIXTURES / "bad.md")
    assert errors(problems)
    assert len({(p.line, p.message) for p in problems}) == len(problems)
    assert len({p.message for p in problems}) == len(problems)
    assert all(p.line >= 1 for p in problems)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_json_matches_golden_and_schema(path):
    lesson, _ = read(path)
    data = lesson_json_bytes(lesson)
    jsonschema.Draft202012Validator(lesson_schema()).validate(json.loads(data))
    golden = GOLDEN / (path.stem + ".json")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(data)
    assert golden.read_bytes() == data, f"{golden} differs; rerun with UPDATE_GOLDEN=1 and review"


def test_lesson_json_is_byte_identical_across_runs_and_paths():
    path = FIXTURES / "first.md"
    first, _ = read_lesson(path, lesson_id="b1/first", path=str(path))
    second, _ = read_lesson(path, lesson_id="b1/first", path="lessons/b1/first.md")
    assert lesson_json_bytes(first) == lesson_json_bytes(second)
    assert str(FIXTURES).encode() not in lesson_json_bytes(first)


def test_the_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(lesson_schema())


def test_study_text_of_the_fixtures_is_read_with_the_exact_speaker_grammar():
    """Fix of tts.md §7.3: ``**Teacher:**`` is Teacher, not ``**Teacher``."""
    lesson, _ = read(FIXTURES / "2.0_new_features_extended_demo.md")
    assert lesson.study_text.speakers == ("Teacher",)
    assert lesson.study_text.kind == "monologue"
    lesson, _ = read(FIXTURES / "2.0_new_features_demo.md")
    assert lesson.study_text.speakers == ("Emma", "Dan")
    assert lesson.study_text.kind == "dialogue"
    assert lesson.study_text.label == "Transcript"
