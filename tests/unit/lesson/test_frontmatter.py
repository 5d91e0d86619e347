"""Frontmatter types, each problem at its key's line."""

from __future__ import annotations

from lesson_helpers import FRONTMATTER, errors, line_of, make_lesson, parse, warnings


def fm(extra: str = "", **replace: str) -> str:
    text = FRONTMATTER
    for old, new in replace.items():
        text = text.replace(old, new)
    return make_lesson(frontmatter=text.replace("---\n\n", "---\n").rstrip("-\n")
                       + ("\n" + extra if extra else "") + "\n---\n")


def test_all_fields_are_typed():
    source = fm("speaker_profiles:\n  - id: Alex\n    gender: male\n    voice: Will\n"
                "icon: 🎯\ncover: https://x.org/c.png\nproperties:\n  Due: 2025-01-31")
    lesson, problems = parse(source)
    assert problems == []
    front = lesson.frontmatter
    assert (front.title, front.student, front.level) == (
        "Homework Assignment: Weekend Plans", "Anna", "A2")
    assert front.topic == ("Going to for plans",) and front.speaker_labels == ("Alex", "Mara")
    assert front.speaker_profiles[0].gender == "male" and front.speaker_profiles[0].voice == "Will"
    assert (front.icon, front.cover) == ("🎯", "https://x.org/c.png")
    assert front.properties == {"Due": "2025-01-31"}
    assert front.lines["level"] == line_of(source, "level: A2")


def test_missing_required_key_is_an_error_at_the_opening_line():
    source = fm(**{"student: Anna\n": ""})
    _, problems = parse(source)
    assert [(p.line, p.message.split(";")[0]) for p in errors(problems)] == [
        (2, "frontmatter key `student` is missing")]


def test_unknown_keys_are_warnings_at_their_line():
    source = fm("colour: blue")
    _, problems = parse(source)
    assert [p.line for p in warnings(problems)] == [line_of(source, "colour: blue")]


def test_wrong_types_are_errors_at_their_line():
    source = fm("icon: not an emoji\ncover: ftp://x\nproperties: [1]\nspeaker_profiles: x",
                **{"[Alex, Mara]": "Alex"})
    _, problems = parse(source)
    got = {p.line: p.message.split(" ")[0] for p in errors(problems)}
    assert got == {line_of(source, "icon:"): "icon", line_of(source, "cover:"): "cover",
                   line_of(source, "properties:"): "`properties`",
                   line_of(source, "speaker_profiles:"): "`speaker_profiles`",
                   line_of(source, "speaker_labels:"): "`speaker_labels`"}


def test_a_frontmatter_that_is_not_a_map():
    _, problems = parse(make_lesson(frontmatter="---\n- a\n- b\n---\n"))
    assert errors(problems)[0].message.startswith("the frontmatter must be")


def test_a_control_character_is_an_error_at_its_line():
    source = fm("colour: bl\x07ue")
    _, problems = parse(source)
    assert [(p.line, p.message.split(";")[0]) for p in errors(problems)] == [
        (line_of(source, "colour:"), "the frontmatter holds a character YAML does not allow "
                                     "(#x0007)")]


def test_yaml_line_breaks_inside_values_do_not_shift_lines():
    source = fm("colour: a\x85b\u2028c")
    _, problems = parse(source)
    assert [p.line for p in problems] == [line_of(source, "colour:")]


def test_properties_become_json_values():
    import json

    from esl_build.lesson import lesson_json_bytes

    lesson, problems = parse(fm("properties:\n  Tags: !!set {b, a}\n  Bin: !!binary aGk=\n"
                                "  N: .nan\n  Due: 2025-01-31 10:00:00"))
    assert problems == []
    assert json.loads(lesson_json_bytes(lesson))["frontmatter"]["properties"] == {
        "Tags": ["a", "b"], "Bin": "hi", "N": None, "Due": "2025-01-31T10:00:00"}
