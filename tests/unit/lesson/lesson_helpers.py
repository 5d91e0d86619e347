"""Helpers for the lesson tests: a valid lesson to mutate, and short ways to parse snippets."""

from __future__ import annotations

import textwrap
from pathlib import Path

from esl_build.errors import Problem
from esl_build.lesson import parse_lesson
from esl_build.lesson.blocks import Document, parse_blocks
from esl_build.lesson.model import Block, Lesson, plain_text

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "lessons"
BAD_LESSONS = REPO / "tests" / "lessons"
GOLDEN = REPO / "tests" / "golden" / "lesson"

FRONTMATTER = """\
---
title: 'Homework Assignment: Weekend Plans'
student: Anna
level: A2
topic: Going to for plans
input_type: generate
speaker_labels: [Alex, Mara]
---
"""

STUDY = """\
[Alex]: Hi!
[Mara]: Hello!"""

PRACTICE = "\n".join(f"{k}. item {k}" for k in range(1, 9))

BODY = """\
## 1. 🎯 This Week's Mission Briefing

Text

## 2. 🗺️ Your Homework Roadmap

Text

## 3. 🎧 Input Material: The Source

:::study-text
{study}
:::

## 4. 🛠️ Language Toolkit: Useful Language

text

## 5. ✍️ Practice & Pronunciation

### A. 🔩 Controlled Practice

{practice}

### B. 🤔 Comprehension Check

1. x
2. y

## 6. ✅ Your Turn: Complete the Mission!

text

## 7. 🧠 Why This Mission Helps You

text

## 8. 🔑 Answer Key & Sample Mission

:::toggle-heading Answer Key
1. a
:::

## 9. 👨‍🏫 Teacher's Follow-up Plan

:::toggle-heading Teacher's Follow-up Plan
notes
:::
"""


def make_lesson(*, study: str = STUDY, frontmatter: str = FRONTMATTER, practice: str = PRACTICE,
                fenced: bool = True) -> str:
    """A valid lesson (the shape of ``tests/fixtures/lessons/short-fenced.md``), with parts
    replaced."""
    text = frontmatter + "\n" + BODY.format(study=study, practice=practice)
    return f"```markdown\n{text}```\n" if fenced else text


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line number of the ``occurrence``-th line containing ``needle``."""
    seen = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in text")


def parse(text: str, *, strict: bool = False) -> tuple[Lesson, list[Problem]]:
    lesson, problems = parse_lesson(text, path="t.md", lesson_id="t", strict=strict)
    assert lesson is not None
    return lesson, problems


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]


def warnings(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if not p.is_error]


def tree(markdown: str) -> Document:
    """Parse a body snippet (dedented; line 1 is its first line) into blocks."""
    text = textwrap.dedent(markdown).strip("\n")
    return parse_blocks(list(enumerate(text.split("\n"), start=1)), "t.md")


def blocks(markdown: str) -> tuple[Block, ...]:
    """The blocks of a snippet that must parse without problems."""
    document = tree(markdown)
    assert document.problems == [], document.problems
    return document.blocks


def text(block: Block) -> str:
    return plain_text(block.text)
