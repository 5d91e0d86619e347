"""The envelope: fence or no fence, normalisation that keeps line numbers, frontmatter split."""

from __future__ import annotations

from lesson_helpers import errors, line_of, make_lesson, parse, warnings

from esl_build.lesson.envelope import normalise, split_envelope


def test_normalisation_keeps_the_line_count_and_emoji_joiners():
    text = "\ufeffa\u00a0b\u200b\r\nc\rd\u2060\n👨‍🏫"
    assert normalise(text) == "a b\nc\nd\n👨‍🏫"


def test_fenced_and_bare_lessons_give_the_same_tree_shifted_by_the_fence_line():
    fenced, _ = parse(make_lesson())
    bare, _ = parse(make_lesson(fenced=False))
    assert [b.type for b in fenced.blocks] == [b.type for b in bare.blocks]
    assert [b.line - 1 for b in fenced.blocks] == [b.line for b in bare.blocks]


def test_code_fences_inside_a_fenced_lesson_do_not_end_it_fix_w15():
    source = make_lesson(practice="1. a\n\n```python\nprint(1)\n```\n\n2. b")
    lesson, problems = parse(source)
    assert [p for p in problems if "Controlled" not in p.message] == []
    assert any(b.type == "code" for b in lesson.blocks)
    assert lesson.blocks[-1].type == "toggle"


def test_an_unclosed_outer_fence_is_an_error_at_the_fence():
    source = make_lesson().rstrip().removesuffix("```")
    _, problems = parse(source)
    assert [(p.line, "never closed" in p.message) for p in errors(problems)] == [(1, True)]


def test_text_after_the_outer_fence_is_a_warning():
    source = make_lesson() + "\nstray words\n"
    _, problems = parse(source)
    assert [p.line for p in warnings(problems)] == [line_of(source, "stray words")]


def test_no_frontmatter_is_one_error():
    envelope = split_envelope("## 1. Hi\n", "t.md")
    assert [p.message.split(";")[0] for p in envelope.problems] == [
        "the lesson has no frontmatter"]
    assert envelope.body == [(1, "## 1. Hi"), (2, "")]


def test_an_unclosed_html_comment_is_an_error_and_its_text_is_shown():
    lesson, problems = parse(make_lesson(practice="<!-- open\n1. a"))
    (problem,) = [p for p in errors(problems)]
    assert "never closed" in problem.message
    assert any(b.type == "numbered_list_item" for b in lesson.blocks)
