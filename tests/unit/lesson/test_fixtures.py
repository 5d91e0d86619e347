"""Our fixture lessons (``tests/fixtures/lessons``, one per construct and defect the
predecessor's lessons exercised): all parse, the valid ones are accepted,
``empty-frontmatter.md`` is rejected once per problem; their ``lesson.json`` matches the golden
files and the shipped JSON Schema.

Run with ``UPDATE_GOLDEN=1`` to rewrite the golden files (then review the diff).
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from lesson_helpers import FIXTURES, GOLDEN, errors

from esl_build.lesson import lesson_json_bytes, lesson_schema, read_lesson

LESSONS = sorted(FIXTURES.glob("*.md"))
REJECTED = "empty-frontmatter.md"
ACCEPTED = [path for path in LESSONS if path.name != REJECTED]


def read(path):
    lesson, problems = read_lesson(path, lesson_id=path.stem, path=path.name)
    assert lesson is not None
    return lesson, problems


def test_the_fixtures_are_there():
    assert {path.name for path in LESSONS} >= {REJECTED, "short-fenced.md", "four-speakers.md",
                                               "every-directive.md", "teacher-monologue.md"}


@pytest.mark.parametrize("path", ACCEPTED, ids=lambda p: p.name)
def test_a_valid_fixture_is_accepted(path):
    _, problems = read(path)
    assert errors(problems) == []


def test_the_rejected_fixture_has_each_problem_once_and_a_line():
    _, problems = read(FIXTURES / REJECTED)
    assert errors(problems)
    assert len({(p.line, p.message) for p in problems}) == len(problems)
    assert len({p.message for p in problems}) == len(problems)
    assert all(p.line >= 1 for p in problems)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_json_matches_golden_and_schema(path, golden_folder):
    lesson, _ = read(path)
    data = lesson_json_bytes(lesson)
    jsonschema.Draft202012Validator(lesson_schema()).validate(json.loads(data))
    golden_folder(GOLDEN, ".json").check(path.stem, data)


def test_every_golden_lesson_json_has_a_fixture_and_every_fixture_one(golden_folder):
    golden_folder(GOLDEN, ".json").check_complete([path.stem for path in LESSONS])


def test_lesson_json_is_byte_identical_across_runs_and_paths():
    path = FIXTURES / "four-speakers.md"
    first, _ = read_lesson(path, lesson_id="b1/four", path=str(path))
    second, _ = read_lesson(path, lesson_id="b1/four", path="lessons/b1/four.md")
    assert lesson_json_bytes(first) == lesson_json_bytes(second)
    assert str(FIXTURES).encode() not in lesson_json_bytes(first)


def test_the_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(lesson_schema())


def test_study_text_of_the_fixtures_is_read_with_the_exact_speaker_grammar():
    """Fix of tts.md §7.3: ``**Guide:**`` is Guide, not ``**Guide``."""
    lesson, _ = read(FIXTURES / "teacher-monologue.md")
    assert lesson.study_text.speakers == ("Guide",)
    assert lesson.study_text.kind == "monologue"
    lesson, _ = read(FIXTURES / "every-directive.md")
    assert lesson.study_text.speakers == ("Kofi", "Hana")
    assert lesson.study_text.kind == "dialogue"
    assert lesson.study_text.label == "Transcript"
    lesson, _ = read(FIXTURES / "mixed-speaker-forms.md")
    assert lesson.study_text.speakers == ("Coach", "Milo")
    lesson, _ = read(FIXTURES / "four-speakers.md")
    assert lesson.study_text.speakers == ("Yusuf", "Greta", "Kenji", "Amara")
    assert [s.speaker for s in lesson.study_text.segments] == ["Yusuf", "Greta", "Kenji", "Amara"]
    lesson, _ = read(FIXTURES / "short-no-labels.md")
    assert lesson.study_text.speakers == ("Rui", "Ines")
