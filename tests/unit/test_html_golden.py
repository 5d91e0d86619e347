"""The HTML pages of our fixture lessons (``tests/fixtures/lessons``, the rejected one aside,
coloured by ``tests/fixtures/configs``) and of the bundled lessons (by ``configs``), pinned as
golden files in ``tests/golden/html``: every page has a golden file and every golden file a lesson.

Run with ``UPDATE_GOLDEN=1`` to rewrite them (then review the diff)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esl_build.config import load_config
from esl_build.lesson import read_lesson
from esl_build.services.html import HtmlPublisher
from esl_build.services.protocols import PageSpec

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "html"
FIXTURES = ROOT / "tests" / "fixtures"
REJECTED = {"empty-frontmatter.md"}
SOURCES = [path for path in sorted((FIXTURES / "lessons").glob("*.md"))
           if path.name not in REJECTED] + sorted((ROOT / "lessons").rglob("*.md"))


def test_there_are_pages_to_pin():
    assert len(SOURCES) >= 10


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_page_matches_its_golden_file(source, tmp_path, golden_folder):
    lesson, _ = read_lesson(source, lesson_id=source.stem, path=source.name)
    configs = FIXTURES / "configs" if source.is_relative_to(FIXTURES) else ROOT / "configs"
    name, preset = load_config(configs).preset_for(lesson.frontmatter.student)
    page = HtmlPublisher(tmp_path / "site", tmp_path).render(PageSpec(lesson, name, preset))
    golden_folder(GOLDEN, ".html").check(source.stem, page)
    assert page == HtmlPublisher(tmp_path / "s2", tmp_path).render(
        PageSpec(lesson, name, preset))  # deterministic


def test_every_golden_page_has_a_lesson_and_every_lesson_a_page(golden_folder):
    golden_folder(GOLDEN, ".html").check_complete([source.stem for source in SOURCES])
