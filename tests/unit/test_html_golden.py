"""The HTML pages of the predecessor's lessons and the bundled ones, pinned as golden files.

Run with ``UPDATE_GOLDEN=1`` to rewrite them (then review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esl_build.config import load_config
from esl_build.lesson import read_lesson
from esl_build.services.html import HtmlPublisher
from esl_build.services.protocols import PageSpec

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "html"
SOURCES = sorted((ROOT.parent / "shared" / "anchor-fixtures").glob("*.md")) + sorted(
    (ROOT / "lessons").rglob("*.md"))


@pytest.mark.parametrize("source", [s for s in SOURCES if s.name != "bad.md"],
                         ids=lambda p: p.name)
def test_page_matches_its_golden_file(source, tmp_path):
    lesson, _ = read_lesson(source, lesson_id=source.stem, path=source.name)
    name, preset = load_config(ROOT / "configs").preset_for(lesson.frontmatter.student)
    page = HtmlPublisher(tmp_path / "site", tmp_path).render(PageSpec(lesson, name, preset))
    golden = GOLDEN / f"{source.stem}.html"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_bytes(page)
    assert page == golden.read_bytes(), f"{golden} differs; UPDATE_GOLDEN=1 rewrites it"
    assert page == HtmlPublisher(tmp_path / "s2", tmp_path).render(
        PageSpec(lesson, name, preset))  # deterministic
