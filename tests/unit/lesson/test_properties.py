"""Random mutations of valid lessons only ever give problems with lines, never an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lesson_helpers import FIXTURES, make_lesson

from esl_build.lesson import lesson_json_bytes, parse_lesson

SEEDS = [make_lesson(), make_lesson(fenced=False)] + [
    (FIXTURES / name).read_text("utf-8")
    for name in ("four-speakers.md", "teacher-monologue.md", "every-directive.md")]
MARKERS = [":::", ":::callout 💡", ":::column-list", ":::column", ":::study-text",
           ":::synced-block", ":::synced-block x", ":::toggle-h2 T", "```", "---", "| a |",
           "> [!NOTE]", "<!--", "-->", "- ", "  - ", "1) ", "**", "*", "`", "[A]: ", "## 1. x",
           "\ufeff", "\u00a0", "\u200b", "\r", "\t", "\x00", "\x85", "\u2028"]
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mutated(draw) -> str:
    lines = draw(st.sampled_from(SEEDS)).split("\n")
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            lines = [""]
        k = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["cut", "insert", "duplicate", "garble", "indent",
                                       "truncate"]))
        if action == "cut":
            del lines[k:k + draw(st.integers(1, 20))]
        elif action == "insert":
            lines.insert(k, draw(st.sampled_from(MARKERS)) + draw(st.text(max_size=20)))
        elif action == "duplicate":
            lines[k:k] = lines[k:k + draw(st.integers(1, 10))]
        elif action == "garble":
            lines[k] = draw(st.text(max_size=40))
        elif action == "indent":
            lines[k] = " " * draw(st.integers(1, 9)) + lines[k]
        else:
            lines = lines[:k]
    return "\n".join(lines)


def check(text: str) -> None:
    lesson, problems = parse_lesson(text, path="m.md", lesson_id="m")
    assert lesson is not None
    total = text.count("\n") + text.count("\r") + 1
    for problem in problems:
        assert 1 <= problem.line <= total, problem
        assert problem.message
    lesson_json_bytes(lesson)


@FAST
@given(mutated())
def test_mutated_lessons_never_crash(text):
    check(text)


@FAST
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text):
    check(text)


@settings(max_examples=25, deadline=None)
@given(st.integers(20, 400), st.sampled_from(["- x", ":::callout 💡", ":::toggle-h2 T", "> q"]))
def test_deep_nesting_is_an_error_not_a_recursion_error(depth, marker):
    if marker.startswith(":::"):
        body = "\n".join([marker] * depth + ["x"] + [":::"] * depth)
    elif marker == "> q":
        body = "\n".join(">" * k + " q" for k in range(depth))
    else:
        body = "\n".join(" " * (2 * k) + marker for k in range(depth))
    check(make_lesson(practice=body))


def test_huge_lines_take_linear_time():
    """No regex or scanner catastrophe: a 100 000-character line of markup parses in well under
    the time a quadratic scan would need (seconds, even on a slow machine)."""
    import time

    huge = ("**a *b [c](d) `e` ~~f " * 2000 + "[" * 20000 + "*" * 20000 + "`" * 2000
            + "Name" * 5000 + ":")
    started = time.perf_counter()
    check(make_lesson(study="[Alex]: " + huge + "\n[Mara]: ok", practice=huge))
    assert time.perf_counter() - started < 10


@FAST
@given(st.binary(max_size=400), st.sampled_from(SEEDS))
def test_odd_bytes_in_a_file_never_crash(noise, seed):
    import tempfile
    from pathlib import Path

    from esl_build.lesson import read_lesson

    data = seed.encode("utf-8")
    cut = len(data) // 2
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "lesson.md"
        file.write_bytes(data[:cut] + noise + data[cut:])
        lesson, problems = read_lesson(file, lesson_id="x")
    assert lesson is not None or [p.line for p in problems if p.is_error]
    assert all(p.line >= 1 for p in problems)
