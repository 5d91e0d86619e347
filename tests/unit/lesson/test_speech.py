"""The study text as speech: one exact speaker grammar, clean text, lines kept."""

from __future__ import annotations

import pytest
from lesson_helpers import FRONTMATTER, errors, line_of, make_lesson, parse

from esl_build.lesson import speech_text, split_speaker


@pytest.mark.parametrize(("line", "speaker", "rest"), [
    ("**Kofi:** hi", "Kofi", "hi"),
    ("**Kofi**: hi", "Kofi", "hi"),
    ("[Alex]: hi", "Alex", "hi"),
    ("Mara: hi there", "Mara", "hi there"),
    ("Анна: привет", "Анна", "привет"),
    ("Mr. Smith-Jones: ok", "Mr. Smith-Jones", "ok"),
    ("Alex:", "Alex", ""),
    ("At 10:30 we met", None, "At 10:30 we met"),
    ("See https://x.com", None, "See https://x.com"),
    ("A:Hello", None, "A:Hello"),
    ("1st: go", None, "1st: go"),
    ("This name is far too long to be a speaker name: x", None,
     "This name is far too long to be a speaker name: x"),
])
def test_split_speaker(line, speaker, rest):
    assert split_speaker(line) == (speaker, rest)


def test_speech_text_removes_markup_only():
    assert speech_text("She **wants to** *run* `away` [now](https://x) ~~no~~ <br> snake_case, "
                       "5 > 3 [laughs]") == \
        "She wants to run away now no snake_case, 5 > 3 [laughs]"


def test_segments_keep_speaker_text_markdown_and_line():
    source = make_lesson(study="- [Alex]: I **can** go.\n\n> and more\n### [Mara]: Fine.")
    lesson, problems = parse(source)
    assert errors(problems) == []
    assert [(s.speaker, s.text, s.markdown, s.line) for s in lesson.study_text.segments] == [
        ("Alex", "I can go.", "I **can** go.", line_of(source, "[Alex]")),
        ("Alex", "and more", "and more", line_of(source, "and more")),
        ("Mara", "Fine.", "Fine.", line_of(source, "[Mara]"))]
    assert lesson.study_text.kind == "dialogue"
    assert lesson.study_text.speakers == ("Alex", "Mara")


def test_speakers_match_labels_case_insensitively_with_the_labels_spelling():
    lesson, problems = parse(make_lesson(study="alex: hi\nMARA: hello"))
    assert errors(problems) == []
    assert lesson.study_text.speakers == ("Alex", "Mara")


def test_without_labels_speakers_come_from_the_grammar():
    front = FRONTMATTER.replace("speaker_labels: [Alex, Mara]\n", "")
    lesson, _ = parse(make_lesson(frontmatter=front, study="**Kofi:** Hi.\n**Hana:** Hello."))
    assert lesson.study_text.speakers == ("Kofi", "Hana")


def test_one_speaker_is_a_monologue():
    front = FRONTMATTER.replace("[Alex, Mara]", "[Teacher]")
    study = "**Teacher:** One.\n\nTwo.\n\nThree.\n\n**Teacher:** Four."
    lesson, problems = parse(make_lesson(frontmatter=front, study=study))
    assert problems == []
    assert lesson.study_text.kind == "monologue"
    assert {s.speaker for s in lesson.study_text.segments} == {"Teacher"}


def test_a_first_line_repeating_the_label_is_not_spoken():
    source = make_lesson(study="Transcript\n[Alex]: Hi!\n[Mara]: Hello!").replace(
        ":::study-text\n", ":::study-text Transcript\n")
    lesson, problems = parse(source)
    assert errors(problems) == [] and len(lesson.study_text.segments) == 2


def test_narrator_only_lessons_read_colons_as_text():
    front = FRONTMATTER.replace("[Alex, Mara]", "[Narrator]")
    lesson, problems = parse(make_lesson(frontmatter=front, study="Note: read this.\n" * 10))
    assert errors(problems) == []
    assert lesson.study_text.segments[0].speaker == "Narrator"
    assert lesson.study_text.segments[0].text == "Note: read this."


def test_an_empty_study_text_is_an_error():
    source = make_lesson(study="")
    _, problems = parse(source)
    assert [p.line for p in errors(problems)] == [line_of(source, ":::study-text")]
