"""``esl-build validate``: files and folders, text and JSON reports, exit codes."""

from __future__ import annotations

import json
import shutil

from lesson_helpers import FIXTURES, make_lesson

import esl_build.lesson as lesson_api
from esl_build.lesson.cli import run_validate
from esl_build.lesson.report import lesson_files


def lessons_folder(tmp_path):
    (tmp_path / "b1").mkdir()
    (tmp_path / "b1" / "unit1.md").write_text(make_lesson(), "utf-8")
    shutil.copy(FIXTURES / "every-directive.md", tmp_path / "demo.md")
    (tmp_path / "build" / "b1").mkdir(parents=True)
    (tmp_path / "build" / "b1" / "old.md").write_text("not a lesson", "utf-8")
    (tmp_path / "unit1.manifest.json").write_text("{}", "utf-8")
    return tmp_path


def test_a_folder_is_searched_for_lessons_outside_build(tmp_path):
    folder = lessons_folder(tmp_path)
    assert [lesson_id for _, lesson_id in lesson_files([folder])] == ["b1/unit1", "demo"]


def test_clean_lessons_exit_0_and_print_warnings_and_a_summary(tmp_path, capsys):
    folder = lessons_folder(tmp_path)
    assert run_validate([str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"{folder / 'demo.md'}:63: warning: Controlled Practice has 2 items; "
                      "8–12 are recommended")
    assert out[-1] == "2 files: 0 errors, 1 warning"


def test_strict_turns_warnings_into_errors(tmp_path, capsys):
    folder = lessons_folder(tmp_path)
    assert run_validate([str(folder), "--strict"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "2 files: 1 error, 0 warnings"


def test_errors_exit_1_with_path_and_line(capsys):
    rejected, accepted = FIXTURES / "empty-frontmatter.md", FIXTURES / "short-fenced.md"
    assert run_validate([str(rejected), str(accepted)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{rejected}:3: error: ")
    assert out[-1] == "2 files: 8 errors, 0 warnings"


def test_json_report(tmp_path, capsys):
    assert run_validate([str(FIXTURES / "empty-frontmatter.md"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["errors"] == 8 and report["warnings"] == 0
    assert report["problems"][0] == {"path": str(FIXTURES / "empty-frontmatter.md"), "line": 3,
                                     "severity": "error", "message": "`title` is empty; give "
                                     "it a value"}


def test_a_missing_path_is_a_message_and_exit_2(tmp_path, capsys):
    assert run_validate([str(tmp_path / "nope.md")]) == 2
    captured = capsys.readouterr()
    assert "no such file or folder" in captured.err and "Traceback" not in captured.err


def test_bad_arguments_exit_2_without_a_traceback(capsys):
    assert run_validate([]) == 2
    assert "usage:" in capsys.readouterr().err


def test_public_api_is_explicit_and_sorted():
    # isort-style, as ruff's RUF022 keeps it: constants, then classes, then functions
    assert lesson_api.__all__ == sorted(lesson_api.__all__, key=lambda n: (not n.isupper(), n))
    for name in lesson_api.__all__:
        assert hasattr(lesson_api, name)
