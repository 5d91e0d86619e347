"""Lesson-structure rules on the parsed tree: the nine sections, the two toggles, soft checks.

(Rules about the text itself — directives, tables, speakers, frontmatter types — are reported by
the module that reads that text, at the line it read.)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from esl_build.errors import Problem
from esl_build.lesson.model import Block, plain_text

SECTIONS = (
    "1. This Week's Mission Briefing",
    "2. Your Homework Roadmap",
    "3. Input Material",
    "4. Language Toolkit: Useful Language",
    "5. Practice & Pronunciation",
    "6. Your Turn: Complete the Mission!",
    "7. Why This Mission Helps You",
    "8. Answer Key & Sample Mission",
    "9. Teacher's Follow-up Plan",
)
PREFIX_SECTIONS = frozenset({2})  # index of "3. Input Material": compared by prefix
CONTROLLED_PRACTICE = (8, 12)
COMPREHENSION_MIN = 2

_QUOTES = str.maketrans({"‘": "'", "’": "'", "ʼ": "'", "`": "'", "´": "'", "“": '"', "”": '"',
                         "–": "-", "—": "-", "‑": "-", "‐": "-"})
_DROP = re.compile(r"[^\w\s.\-'&:]")
_SPACES = re.compile(r"\s+")


def normalise_title(text: str) -> str:
    """Compare headings without emoji, punctuation variants, curly apostrophes or case."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = text.translate(_QUOTES)
    text = _DROP.sub(" ", text)
    return _SPACES.sub(" ", text).strip().lower()


_EXPECTED = tuple(normalise_title(title) for title in SECTIONS)


def check_structure(blocks: tuple[Block, ...], path: str) -> list[Problem]:
    """The nine H2 sections, the Answer Key and Teacher's Follow-up Plan toggles, soft checks."""
    problems: list[Problem] = []
    sections = _check_sections(blocks, path, problems)
    _check_toggles(blocks, sections, path, problems)
    _check_practice(blocks, sections, path, problems)
    return problems


def _section_of(title: str) -> int | None:
    for index, expected in enumerate(_EXPECTED):
        if title == expected or (index in PREFIX_SECTIONS and title.startswith(expected)):
            return index
    return None


def _check_sections(blocks: tuple[Block, ...], path: str, problems: list[Problem]
                    ) -> dict[int, int]:
    """Top-level H2s → {section index: position in ``blocks``}; errors for the rest."""
    found: dict[int, int] = {}
    claimed: set[int] = set()
    headings = [(k, b) for k, b in enumerate(blocks) if b.type == "heading_2" and not b.toggleable]
    highest = -1
    for count, (position, block) in enumerate(headings):
        title = plain_text(block.text).strip()
        section = _section_of(normalise_title(title))
        if section is None:
            if count >= len(SECTIONS):
                message = (f'a tenth H2 heading "{title}": a lesson has exactly nine sections; '
                           "make it a ### subheading or remove it")
            else:
                expected = min(highest + 1, len(SECTIONS) - 1)
                claimed.add(expected)  # reported here, so not again as "missing"
                highest = expected
                message = (f'H2 heading "{title}" is not one of the nine lesson sections; '
                           f'expected "{SECTIONS[expected]}" here (use ### for subheadings)')
            problems.append(Problem(path, block.line, "error", message))
        elif section in found:
            problems.append(Problem(path, block.line, "error",
                                    f'section "{SECTIONS[section]}" appears twice; remove or '
                                    "rename this heading"))
        elif section < highest:
            problems.append(Problem(path, block.line, "error",
                                    f'section "{SECTIONS[section]}" is out of order: it comes '
                                    f'after "{SECTIONS[highest]}"; move it so the sections run '
                                    "1 to 9"))
            found[section] = position
        else:
            found[section] = position
            highest = section
    missing = [k for k in range(len(SECTIONS)) if k not in found and k not in claimed]
    if missing:
        names = "; ".join(f'"## {SECTIONS[k]}"' for k in missing)
        after = [found[k] for k in found if k > missing[0]]
        if after:
            line = blocks[min(after)].line
        elif headings:
            line = headings[-1][1].line
        else:
            line = blocks[0].line if blocks else 1
        problems.append(Problem(path, line, "error",
                                f"missing section{'s' if len(missing) > 1 else ''}: {names}; a "
                                "lesson has these nine H2 headings, in order"))
    return found


def walk(blocks: tuple[Block, ...]) -> Iterator[Block]:
    """Every block of the tree, depth first, in document order."""
    stack = list(reversed(blocks))
    while stack:
        block = stack.pop()
        yield block
        stack.extend(reversed(block.children))


def _check_toggles(blocks: tuple[Block, ...], sections: dict[int, int], path: str,
                   problems: list[Problem]) -> None:
    answer = teacher = False
    for block in walk(blocks):
        kind = "toggle" if block.type == "toggle" else block.type if block.toggleable else None
        if kind is None:
            continue
        label = normalise_title(plain_text(block.text))
        if label == "answer key" and kind in ("toggle", "heading_2"):
            answer = True
        elif label == "teacher's follow-up plan" and kind in ("toggle", "heading_2",
                                                                "heading_3"):
            teacher = True
    for present, section, what in ((answer, 7, "Answer Key"),
                                   (teacher, 8, "Teacher's Follow-up Plan")):
        if present:
            continue
        where = sections.get(section)
        line = blocks[where].line if where is not None else (blocks[-1].line if blocks else 1)
        problems.append(Problem(path, line, "error",
                                f'the "{what}" toggle is missing; add ":::toggle-heading {what}" '
                                f'(or ":::toggle-h2 {what}") … ":::" under '
                                f'"{SECTIONS[section]}"'))


def _check_practice(blocks: tuple[Block, ...], sections: dict[int, int], path: str,
                    problems: list[Problem]) -> None:
    start = sections.get(4)
    if start is None:
        return
    end = next((k for k in range(start + 1, len(blocks))
                if blocks[k].type == "heading_2" and not blocks[k].toggleable), len(blocks))
    part = blocks[start + 1:end]
    controlled = _count_items(part, "a. controlled practice")
    if controlled is None:
        problems.append(Problem(path, blocks[start].line, "warning",
                                'no "### A. Controlled Practice" subsection under section 5; '
                                "add one with 8–12 exercise items"))
    elif controlled[1] and not CONTROLLED_PRACTICE[0] <= controlled[1] <= CONTROLLED_PRACTICE[1]:
        problems.append(Problem(path, controlled[0], "warning",
                                f"Controlled Practice has {controlled[1]} items; 8–12 are "
                                "recommended"))
    comprehension = _count_items(part, "b. comprehension check")
    if comprehension is not None and 0 < comprehension[1] < COMPREHENSION_MIN:
        problems.append(Problem(path, comprehension[0], "warning",
                                f"Comprehension Check has {comprehension[1]} item; 2–3 are "
                                "recommended"))


_ITEM_PARAGRAPH = re.compile(r"^\d{1,3}\)\s")


def _count_items(blocks: tuple[Block, ...], prefix: str) -> tuple[int, int] | None:
    """(heading line, number of top-level items up to the next heading) or None if absent."""
    for k, block in enumerate(blocks):
        if block.type == "heading_3" and normalise_title(plain_text(block.text)).startswith(prefix):
            count = 0
            for item in blocks[k + 1:]:
                if item.type in ("heading_1", "heading_2", "heading_3"):
                    break
                if item.type in ("numbered_list_item", "bulleted_list_item") or (
                        item.type == "paragraph" and _ITEM_PARAGRAPH.match(plain_text(item.text))):
                    count += 1
            return block.line, count
    return None
