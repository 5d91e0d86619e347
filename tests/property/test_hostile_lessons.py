"""A spoiled lesson, built for real: ``esl-build build`` in-process against the fake Notion
and ElevenLabs, on a repository whose every lesson was built before.

Each example takes one built fixture lesson and spoils it (broken frontmatter YAML, a field
of the wrong type, a section removed, doubled or moved, a ``:::`` block left open, deep
nesting, a huge line, control characters, odd Unicode, bytes that are not UTF-8). The
build must then either succeed (the spoiling left a valid lesson) or refuse it: exit 1, a
message naming ``lessons/<id>.md:<line>``, no traceback, no request to either service, no
manifest or other file outside ``build/`` changed. Spoilings that can't leave a valid lesson
must be refused. Either way the lesson keeps exactly one Notion page.
"""

from __future__ import annotations

import re

from hostile_harness import LESSONS, World
from hypothesis import event, given, settings
from hypothesis import strategies as st

FRONTMATTER_KEYS = ("title", "student", "level", "topic", "input_type", "speaker_labels",
                    "speaker_profiles", "icon", "cover")
# YAML that is valid but of a type no frontmatter field has, or YAML that is no YAML.
WRONG_VALUES = ("[a, [b, [c]]]", "{x: 1}", "12", "-3.5e9", "null", "true", "~", "''",
                "!!binary aGk=", "&a [*a]", "*undefined", "{", "[", "'open", '"\\x"',
                "!!python/object:os.system x", "|\n  block", "? complex\n: key",
                "2026-12-02", "0x1F", ".nan", "- listed", "@reserved", "`tick`")
BROKEN_YAML = ("\t", ": :", "- [", "{", "key: 'unterminated", "&anchor", "*alias", "%YAML 9",
               "? ", "!!map [", "\x00", "'''", ":\n  - :\n")
ODD = ("\u202e", "\u200b", "\u200d", "\ufeff", "\ufffe", "\uffff", "\U0010ffff", "\u0301" * 50,
       "\u2028", "\u2029", "\x85", "\r", "\r\n", "\x0b", "\x0c", "\x1b[31m", "\x7f",
       "ﷺ", "𝕏", "👩‍👩‍👧‍👦", "\U000e0041", "İ", "ß", "ǅ")
CONTROL = st.characters(min_codepoint=0, max_codepoint=31) | st.sampled_from(["\x7f", "\x9b"])


def frontmatter_span(lines: list[str]) -> tuple[int, int]:
    """The indexes of the opening and closing ``---`` lines."""
    start = next(i for i, line in enumerate(lines) if line.strip() == "---")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "---")
    return start, end


@st.composite
def spoiled(draw: st.DrawFn) -> tuple[str, str, bytes, bool]:
    """(lesson id, what was done, the new file's bytes, whether it must be refused)."""
    lesson_id = draw(st.sampled_from(LESSONS))
    text = World.fixture(lesson_id)
    lines = text.split("\n")
    start, end = frontmatter_span(lines)
    sections = [i for i, line in enumerate(lines) if line.startswith("## ")]
    openers = [i for i, line in enumerate(lines) if line.strip() == ":::"]
    kind = draw(st.sampled_from(["yaml", "field", "no-close", "section-cut", "section-twice",
                                 "section-swap", "unterminated", "nesting", "huge-line",
                                 "control", "unicode", "not-utf8"]))
    refused = kind in ("no-close", "section-cut", "section-twice", "section-swap",
                       "unterminated", "not-utf8")
    if kind == "yaml":
        at = draw(st.integers(start + 1, end))
        lines.insert(at, draw(st.sampled_from(BROKEN_YAML)) + draw(st.text(max_size=8)))
    elif kind == "field":
        key = draw(st.sampled_from(FRONTMATTER_KEYS))
        value = draw(st.sampled_from(WRONG_VALUES) | st.text(max_size=30).map(repr))
        kept = [line for line in lines[start + 1:end] if not line.startswith(f"{key}:")]
        lines[start + 1:end] = [*kept, f"{key}: {value}"]
    elif kind == "no-close":
        del lines[end]
    elif kind == "section-cut":
        at = draw(st.sampled_from(sections))
        lines[at] = ""  # the heading goes; its text joins the section before
    elif kind == "section-twice":
        at = draw(st.sampled_from(sections))
        lines.insert(draw(st.sampled_from(sections)), lines[at])
    elif kind == "section-swap":
        first, second = sorted(draw(st.lists(st.sampled_from(sections), min_size=2,
                                             max_size=2, unique=True)))
        lines[first], lines[second] = lines[second], lines[first]
    elif kind == "unterminated":
        del lines[draw(st.sampled_from(openers))]
    elif kind == "nesting":
        depth = draw(st.integers(50, 3000))
        shape = draw(st.sampled_from([":::callout 💡\n", "> ", "  - ", "[", "**", "<!--"]))
        block = shape * depth if shape.endswith(("> ", "[", "**")) else "".join(
            " " * (2 * n) + shape.strip() + "\n" for n in range(depth))
        lines.insert(draw(st.integers(end + 1, len(lines))), block + "deep")
    elif kind == "huge-line":
        lines.insert(draw(st.integers(end + 1, len(lines))),
                     draw(st.sampled_from(["x", "Alex: ", "**", "😀", "["])) *
                     draw(st.integers(10_000, 400_000)))
    elif kind in ("control", "unicode"):
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(lines) - 1))
            piece = draw(CONTROL if kind == "control" else st.sampled_from(ODD))
            column = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:column] + piece + lines[at][column:]
    data = "\n".join(lines).encode("utf-8")
    if kind == "not-utf8":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"])) \
            + data[at:]
    return lesson_id, kind, data, refused


@settings(settings.get_profile("hostile"), max_examples=40)
@given(case=spoiled())
def test_a_spoiled_lesson_is_built_or_refused_naming_its_line(world: World,
                                                               case: tuple[str, str, bytes,
                                                                           bool]) -> None:
    lesson_id, kind, data, must_refuse = case
    with world.sandbox() as repo:
        (repo / "lessons" / f"{lesson_id}.md").write_bytes(data)
        run = world.run(repo, "build")
        run.assert_clean()
        event(f"{kind}: exit {run.code}")
        if must_refuse or run.code != 0:
            run.assert_refused(codes=(1,), naming=rf"lessons/{re.escape(lesson_id)}\.md:\d+")
        assert world.pages_of(lesson_id) == 1, run.output
