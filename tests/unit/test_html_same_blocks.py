"""The site's pages are made from the blocks sent to Notion (``esl_build.notion.render``):
every line of each lesson is on its page, and the blocks' texts appear there in the order
Notion shows them, so the two publishers cannot drift apart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from esl_build.config import load_config
from esl_build.lesson import read_lesson
from esl_build.lesson.model import Block, plain_text
from esl_build.notion.render import Node, render
from esl_build.notion.sync import text_of
from esl_build.services.html import HtmlPublisher
from esl_build.services.protocols import PageSpec

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SOURCES = [p for p in sorted((FIXTURES / "lessons").glob("*.md"))
           if p.name != "empty-frontmatter.md"] + sorted((ROOT / "lessons").rglob("*.md"))


class _Shown(HTMLParser):
    """What a reader gets from a page: its text, and image alt texts and media URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("alt", "src") if tag in ("img", "audio") else ("href",) if tag == "a" \
                else ():
            if found.get(name):
                self.parts.append(f" {found[name]} ")


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def shown(html: str) -> str:
    parser = _Shown()
    parser.feed(html)
    return squash("".join(parser.parts))


def lesson_lines(block: Block) -> Iterator[str]:
    if block.text:
        yield plain_text(block.text)
    for row in block.rows:
        yield from (plain_text(cell) for cell in row)
    if block.url:
        yield block.url
    for child in block.children:
        yield from lesson_lines(child)


def node_texts(nodes: tuple[Node, ...]) -> Iterator[str]:
    for item in nodes:
        text = text_of(item.block())
        if not text.startswith("("):  # a block without text: "(divider)"
            yield from text.split(" | ")
        yield from node_texts(item.children)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_every_line_is_on_the_page_in_the_order_notion_shows_it(source: Path,
                                                                 tmp_path: Path) -> None:
    lesson, _ = read_lesson(source, lesson_id=source.stem, path=source.name)
    assert lesson is not None
    configs = FIXTURES / "configs" if source.is_relative_to(FIXTURES) else ROOT / "configs"
    name, preset = load_config(configs).preset_for(lesson.frontmatter.student)
    page = shown(HtmlPublisher(tmp_path, tmp_path).render(
        PageSpec(lesson, name, preset)).decode())
    for block in lesson.blocks:
        for line in lesson_lines(block):
            assert squash(line) in page, line
    at = 0
    for text in node_texts(render(lesson, preset)):
        found = page.find(squash(text), at)
        assert found >= 0, f"{text!r} is not on the page after position {at}"
        at = found
