"""The validator: orchestrator.md §10 cases 1–14, then every case the issue lists, each error at
the line it names."""

from __future__ import annotations

import pytest
from lesson_helpers import (
    FIXTURES,
    FRONTMATTER,
    PRACTICE,
    errors,
    line_of,
    make_lesson,
    parse,
    warnings,
)

from esl_build.lesson import parse_lesson


def error_at(source: str, needle: str, fragment: str, *, occurrence: int = 1) -> None:
    """Exactly one error mentions ``fragment``, and it is at the line holding ``needle``."""
    _, problems = parse(source)
    found = [p for p in errors(problems) if fragment in p.message]
    assert len(found) == 1, problems
    assert found[0].line == line_of(source, needle, occurrence), found


def accepted(source: str) -> list:
    _, problems = parse(source)
    assert errors(problems) == [], problems
    return problems


def labels(*names: str) -> str:
    return FRONTMATTER.replace("[Alex, Mara]", "[" + ", ".join(names) + "]")


# -- orchestrator.md §10, validator cases 1–14 ----------------------------------------------------


def test_case_1_ok_fixture_is_accepted():
    accepted((FIXTURES / "short-fenced.md").read_text("utf-8"))


def test_case_2_bad_fixture_reports_frontmatter_sections_markers_and_study_text():
    _, problems = parse((FIXTURES / "empty-frontmatter.md").read_text("utf-8"))
    messages = " | ".join(p.message for p in errors(problems))
    for fragment in ("`title` is empty", "`student` is empty", "`topic` is empty",
                     "missing sections", '"Answer Key" toggle is missing',
                     "\"Teacher's Follow-up Plan\" toggle is missing", "no \":::study-text"):
        assert fragment in messages


def test_case_3_unbracketed_speakers_and_a_topic_list():
    frontmatter = FRONTMATTER.replace("topic: Going to for plans",
                                      'topic: ["travel", "conversation"]')
    lesson, _ = parse(make_lesson(frontmatter=frontmatter, study="Alex: Hello!\nMara: Hi there."))
    assert lesson.frontmatter.topic == ("travel", "conversation")
    accepted(make_lesson(frontmatter=frontmatter, study="Alex: Hello!\nMara: Hi there."))


def test_case_4_unknown_speaker():
    source = make_lesson(study="Alex: Hello!\nSam: Hi there.")
    error_at(source, "Sam: Hi", 'unknown speaker "Sam"')


def test_case_5_marker_with_a_descriptor_and_a_narrator():
    source = make_lesson(frontmatter=labels("Narrator"), study="Narrator: Hello there.")
    source = source.replace(":::study-text\n", ":::study-text Transcript\n")
    accepted(source)


def test_case_6_continuation_paragraphs():
    study = "Alex: Hey there,\n\nthis goes on.\n\nAnd on, At 10:30 we met."
    accepted(make_lesson(frontmatter=labels("Narrator", "Alex"), study=study))


def test_case_7_narrator_only_prose_may_warn_short():
    problems = accepted(make_lesson(frontmatter=labels("Narrator"),
                                    study="One paragraph.\n\nAnother paragraph."))
    assert [p.message for p in warnings(problems)] == [
        "the study text looks short; aim for 3–5 paragraphs or 10–15 lines"]


def test_case_8_indented_opening_marker():
    source = make_lesson().replace("\n:::study-text\n", "\n  :::study-text\n")
    error_at(source, "  :::study-text", "must start at column 1")


def test_case_9_indented_closing_marker():
    source = make_lesson().replace("[Mara]: Hello!\n:::", "[Mara]: Hello!\n  :::")
    error_at(source, "  :::", "closing ::: of the study text must start at column 1")


def test_case_10_column_list_without_columns():
    source = make_lesson(practice="\n".join(f"{k}. x" for k in range(1, 9))
                         + "\n\n:::column-list\ntext\n:::")
    error_at(source, ":::column-list", "has no columns")


def test_case_11_column_list_with_two_columns():
    accepted(make_lesson(practice="\n".join(f"{k}. x" for k in range(1, 9))
                         + "\n\n:::column-list\n:::column\nA\n:::\n:::column\nB\n:::\n:::"))


def test_case_12_empty_synced_block():
    source = make_lesson(practice="1. x\n\n:::synced-block\n:::")
    error_at(source, ":::synced-block", "must include content")


def test_case_13_ragged_table():
    source = make_lesson(practice="| a | b |\n| --- | --- |\n| 1 | 2 |\n| only-one |")
    error_at(source, "| only-one |", "has 1 cell but the table's first row has 2")


def test_case_14_content_is_parsed_without_reading_a_file():
    content = (FIXTURES / "short-fenced.md").read_text("utf-8")
    lesson, problems = parse_lesson(content, path="UNUSED.md", lesson_id="ok")
    assert lesson is not None and errors(problems) == []


# -- errors the issue lists, each at the line it names ------------------------------------------


@pytest.mark.parametrize("line", ["Sam: Hi", "**Sam:** Hi", "**Sam**: Hi", "[Sam]: Hi"])
def test_unknown_speaker_in_any_form_at_its_line(line):
    source = make_lesson(study=f"[Alex]: Hi!\n{line}\n[Mara]: Hello!")
    error_at(source, line, 'unknown speaker "Sam" in the study text; add it to speaker_labels')


def test_line_before_the_first_speaker_of_a_dialogue():
    source = make_lesson(study="Once upon a time.\n[Alex]: Hi!\n[Mara]: Hello!")
    error_at(source, "Once upon a time.", "comes before the first speaker")


def test_narration_before_the_first_speaker_goes_to_the_narrator_label():
    """Fix of tts.md §1.4: the predecessor gave it to the first non-narrator label."""
    lesson, problems = parse(make_lesson(frontmatter=labels("Narrator", "Alex", "Mara"),
                                         study="Once upon a time.\n[Alex]: Hi!\n[Mara]: Hello!"))
    assert errors(problems) == []
    assert lesson.study_text.segments[0].speaker == "Narrator"


@pytest.mark.parametrize("opener", [":::callout 💡", ":::toggle-heading X", ":::toggle-h2 X",
                                    ":::column-list", ":::synced-block", ":::study-text"])
def test_unclosed_directive_at_its_opener(opener):
    study = make_lesson()
    source = study.replace("notes\n:::\n", f"notes\n:::\n\n{opener}\ntext\n")
    _, problems = parse(source)
    found = [p for p in errors(problems) if "is never closed" in p.message]
    assert [p.line for p in found] == [line_of(source, opener, 2 if opener == ":::study-text"
                                               else 1)]


def test_callout_without_an_icon_at_its_opener():
    source = make_lesson(practice=PRACTICE + "\n\n:::callout\nx\n:::")
    error_at(source, ":::callout", "needs an emoji icon")


def test_column_list_with_an_empty_column_at_that_column():
    body = ":::column-list\n:::column\nA\n:::\n:::column\n:::\n:::"
    source = make_lesson(practice=PRACTICE + "\n\n" + body)
    error_at(source, ":::column", "this column is empty", occurrence=3)  # 1st: column-list


def test_column_list_with_a_single_column_fix_w4():
    """Notion rejects a one-column layout; the predecessor let it through."""
    body = ":::column-list\n:::column\nA\n:::\n:::"
    source = make_lesson(practice=PRACTICE + "\n\n" + body)
    error_at(source, ":::column-list", "has one column")


def test_ragged_table_inside_a_directive_at_the_row_fix_quirk_13():
    body = ":::callout 💡\n| a | b |\n| 1 | 2 | 3 |\n:::"
    source = make_lesson(practice=PRACTICE + "\n\n" + body)
    error_at(source, "| 1 | 2 | 3 |", "has 3 cells but")


def test_table_with_a_header_and_no_data_row():
    body = "| a | b |\n| --- | --- |"
    source = make_lesson(practice=PRACTICE + "\n\n" + body)
    error_at(source, "| a | b |", "no data rows")


def test_wrong_typed_frontmatter_key_at_that_key():
    source = make_lesson(frontmatter=FRONTMATTER.replace("level: A2", "level: 2"))
    error_at(source, "level: 2", "`level` must be text")


def test_yaml_syntax_error_at_its_line():
    source = make_lesson(frontmatter=FRONTMATTER.replace("student: Anna", "student: [Anna"))
    _, problems = parse(source)
    (problem,) = errors(problems)
    assert "not valid YAML" in problem.message
    assert problem.line == line_of(source, "student: [Anna")


def test_yaml_error_line_counts_the_fence_and_the_frontmatter_opener():
    source = make_lesson(frontmatter=FRONTMATTER.replace("title:", "title: x: y\n  bad:"))
    _, problems = parse(source)
    assert errors(problems)[0].line == line_of(source, "title: x: y")


def test_sections_out_of_order_at_the_offending_heading():
    source = make_lesson()
    four = "## 4. 🛠️ Language Toolkit: Useful Language\n\ntext\n\n"
    five_start = source.index("## 5.")
    six_start = source.index("## 6.")
    five = source[five_start:six_start]
    source = source.replace(four, "").replace(five, five + four)
    error_at(source, "## 4.", "out of order")


def test_a_tenth_h2_at_that_heading():
    source = make_lesson().replace("notes\n:::\n", "notes\n:::\n\n## 10. Bonus\n")
    error_at(source, "## 10. Bonus", "a tenth H2 heading")


def test_missing_section_is_one_error_naming_it():
    source = make_lesson().replace("## 7. 🧠 Why This Mission Helps You\n", "")
    error_at(source, "## 8.", 'missing section: "## 7. Why This Mission Helps You"')


def test_synced_block_reference_with_a_body_fix_w8():
    body = ":::synced-block abc-123\nthis would be thrown away\n:::"
    source = make_lesson(practice=PRACTICE + "\n\n" + body)
    error_at(source, ":::synced-block abc", "cannot have a body")


# -- accepted ------------------------------------------------------------------------------


def test_curly_apostrophes_in_headings_and_markers_fix_quirk_13():
    source = make_lesson().replace("Teacher's", "Teacher’s").replace("Week's", "Week’s")
    accepted(source)


def test_toggle_h2_answer_key():
    accepted(make_lesson().replace(":::toggle-heading Answer Key", ":::toggle-h2 Answer Key"))


def test_crlf_with_bom_nbsp_and_zero_width_characters():
    source = "\ufeff" + make_lesson().replace("\n", "\r\n").replace("Hi!", "Hi!\u00a0there\u200b")
    lesson, problems = parse(source)
    assert errors(problems) == []
    assert lesson.study_text.segments[0].text == "Hi! there"
    assert lesson.study_text.segments[0].line == line_of(make_lesson(), "[Alex]: Hi!")


def test_continuation_that_looks_like_a_time():
    lesson, _ = parse(make_lesson(study="[Alex]: Hi!\nAt 10:30 we met.\n[Mara]: Hello!"))
    assert [(s.speaker, s.text) for s in lesson.study_text.segments] == [
        ("Alex", "Hi!"), ("Alex", "At 10:30 we met."), ("Mara", "Hello!")]


def test_input_type_authentic_and_a_bare_lesson():
    accepted(make_lesson(frontmatter=FRONTMATTER.replace("generate", "authentic"), fenced=False))


def test_input_type_other_is_a_warning_and_strict_makes_it_an_error():
    source = make_lesson(frontmatter=FRONTMATTER.replace("generate", "invented"))
    _, problems = parse(source)
    assert [p.line for p in warnings(problems)] == [line_of(source, "input_type:")]
    _, strict = parse(source, strict=True)
    assert [p.severity for p in strict] == ["error"]


def test_soft_checks_are_warnings():
    source = make_lesson(practice="1. only\n2. two")
    problems = accepted(source)
    assert [p.message for p in warnings(problems)] == [
        "Controlled Practice has 2 items; 8–12 are recommended"]
    assert warnings(problems)[0].line == line_of(source, "### A.")


def test_a_study_text_inside_a_list_item_continuation_is_at_column_1():
    accepted((FIXTURES / "short-fenced.md").read_text("utf-8"))


def test_an_unclosed_study_text_is_one_error_not_a_cascade():
    source = make_lesson().replace("[Mara]: Hello!\n:::\n", "[Mara]: Hello!\n")
    _, problems = parse(source)
    assert [(p.line, p.message.split(";")[0]) for p in problems] == [
        (line_of(source, ":::study-text"), ":::study-text is never closed")]
