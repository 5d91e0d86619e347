"""Inline rich text: what is markup, what stays literal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esl_build.lesson.inline import _parse, parse_inline, strip_inline
from esl_build.lesson.model import Span


def test_formatting_around_a_link_is_kept_fix_w10():
    assert parse_inline("**[x](https://u)**") == (Span("x", bold=True, link="https://u"),)


def test_formatting_around_code_is_kept_fix_w10():
    assert parse_inline("**`Can` + Verb**") == (Span("Can", bold=True, code=True),
                                                 Span(" + Verb", bold=True))


def test_inline_image_is_a_linked_span_with_its_alt_text():
    assert parse_inline("see ![a cat](https://c.png)") == (Span("see "),
                                                           Span("a cat", link="https://c.png"))


def test_bold_and_italic_together():
    assert parse_inline("***both*** x") == (Span("both", bold=True, italic=True), Span(" x"))


@pytest.mark.parametrize("source", [
    "**unclosed", "a * b * c", "word*x*", "5*3*2", "~single~", "snake_case and __dunder__",
    "[not a link]", "[Alex]: hi", "[a](has space)", "```", "x \\* y"])
def test_literal_text_stays_as_written(source):
    expected = source.replace("\\*", "*")
    assert strip_inline(source) == expected
    assert not any(s.bold or s.italic or s.strike or s.code for s in parse_inline(source))


def test_backslash_escapes():
    assert strip_inline(r"\*\*not bold\*\* \[x\]\(y\) \_") == "**not bold** [x](y) _"


def test_code_spans_use_matching_backtick_runs():
    assert parse_inline("``a ` b``") == (Span("a ` b", code=True),)


def test_empty_text_is_no_spans():
    assert parse_inline("") == ()


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="***``ab1_ .(\n\u00e9\u0301\u3000\u2003-\"", max_size=40))
def test_the_shortcut_for_bold_italic_and_code_agrees_with_the_scanner(source):
    if source:
        assert parse_inline(source) == _parse(source)
