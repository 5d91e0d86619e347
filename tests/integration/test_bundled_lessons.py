"""The README's promises: the bundled lessons build offline, and every variable and command
esl-build has is documented."""

from __future__ import annotations

import shutil
from pathlib import Path

from esl_build.cli import _parser
from esl_build.settings import ENV_VARS
from esl_build.testing.repo import LessonsRepo

ROOT = Path(__file__).resolve().parents[2]


def test_the_bundled_lessons_build_offline_to_a_site_and_one_mp3_each(tmp_path):
    repo = LessonsRepo(tmp_path / "copy")
    shutil.copytree(ROOT / "lessons", repo.root / "lessons",
                    ignore=shutil.ignore_patterns("*.manifest.json"))
    shutil.copytree(ROOT / "configs", repo.root / "configs")
    shutil.copyfile(ROOT / "dodo.py", repo.root / "dodo.py")
    lessons = sorted(p.relative_to(repo.root / "lessons").with_suffix("").as_posix()
                     for p in (repo.root / "lessons").rglob("*.md"))
    assert len(lessons) >= 3
    run = repo.doit("-n", "4", "-P", "thread")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (repo.root / "build/site/index.html").is_file()
    for lesson_id in lessons:
        assert (repo.root / "build" / lesson_id / "audio.mp3").stat().st_size > 10_000
        assert (repo.root / "build/site" / f"{lesson_id}.html").is_file()
    index = (repo.root / "build/site/index.html").read_text()
    assert index.count("<audio") == len(lessons)


def test_the_bundled_lessons_have_no_warnings():
    from esl_build.lesson.cli import run_validate
    assert run_validate([str(ROOT / "lessons"), "--strict"]) == 0


def test_the_readme_documents_every_variable_and_command():
    readme = (ROOT / "README.md").read_text()
    for name in ENV_VARS:
        assert f"`{name}" in readme or f"{name}`" in readme, name
    commands = _parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command in commands:
        assert f"esl-build {command}" in readme, command
