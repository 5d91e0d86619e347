"""A broken lesson stops only itself, and what a build prints is readable: real doit, real
lessons repositories in temporary folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esl_build.testing.repo import LessonsRepo, lesson_text

STAGES = ("validate", "import", "tts", "upload", "add-audio")
BROKEN = ("Alex: Hi Mara, how are you today?", "Sam: I'm fine, thanks. And you?")
PROBLEM = 'unknown speaker "Sam"'


def tasks(lesson_id: str, *stages: str) -> set[str]:
    return {f"{stage}:{lesson_id}" for stage in stages or STAGES}


@pytest.fixture
def repo(tmp_path: Path) -> LessonsRepo:
    repo = LessonsRepo.create(tmp_path / "repo", {
        "unit1": lesson_text(),
        "unit2": lesson_text(("Alex: Where is the station?", "Mara: It is next to the bank."),
                             title="Directions"),
    })
    run = repo.doit()
    assert run.returncode == 0, run.stdout + run.stderr
    return repo


def broken_line(repo: LessonsRepo, lesson_id: str) -> int:
    lines = repo.path(f"lessons/{lesson_id}.md").read_text().splitlines()
    return 1 + next(n for n, line in enumerate(lines) if line.startswith("Sam:"))


def index_row(repo: LessonsRepo, lesson_id: str) -> str:
    index = repo.path("build/site/index.html").read_text()
    return index.split(f'<tr id="lesson-{lesson_id}">')[1].split("</tr>")[0]


def test_a_broken_lesson_stops_only_itself(repo):
    repo.edit("unit2", "It is next to the bank.", "It is next to the park.")
    repo.write("unit3", lesson_text(BROKEN, title="Broken"))
    run = repo.doit()
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert tasks("unit2") <= run.ran  # the edited lesson is published …
    assert "It is next to the park." in repo.path("build/site/unit2.html").read_text()
    assert run.failed == {"validate:unit3"}  # … the broken one is named once, with its line
    assert output.count(PROBLEM) == 1
    assert f"lessons/unit3.md:{broken_line(repo, 'unit3')}: error: {PROBLEM}" in run.stdout
    assert "UnmetDependency" not in output and "Traceback" not in output
    assert run.count("tts", "not run") == 1
    assert "failed: unit3 (at validate)" in run.stdout
    assert not repo.path("lessons/unit3.manifest.json").exists()  # no manifest changed

    row = index_row(repo, "unit3")
    assert "status-failed" in row and f"lessons/unit3.md:{broken_line(repo, 'unit3')}" in row
    assert "status-failed" not in index_row(repo, "unit2")

    status = repo.esl_build("status", "unit3", "--json")
    assert status.returncode == 0, status.stderr
    validate = json.loads(status.stdout)[0]["stages"]["validate"]
    assert validate["state"] == "failed" and PROBLEM in validate["reason"]
    assert "validate   failed: lessons/unit3.md:" in repo.esl_build("status", "unit3").stdout


def test_a_fixed_lesson_is_no_longer_marked_failed(repo):
    repo.write("unit3", lesson_text(BROKEN))
    manifests = repo.manifest_bytes()
    assert repo.doit().returncode == 1
    assert repo.manifest_bytes() == manifests
    again = repo.doit()  # still broken: reported again, nothing else runs
    assert again.returncode == 1 and again.ran == {"validate:unit3"}

    repo.edit("unit3", "Sam:", "Mara:")
    fixed = repo.doit()
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert tasks("unit3") <= fixed.ran
    assert "status-failed" not in index_row(repo, "unit3")
    assert not repo.path("build/.cache/failures.json").exists()
    status = json.loads(repo.esl_build("status", "unit3", "--json").stdout)
    assert {s["state"] for s in status[0]["stages"].values()} == {"done"}


def test_a_failed_stage_in_parallel_builds_stops_only_its_lesson(repo):
    repo.write("unit3", lesson_text(BROKEN))
    for mode in ("thread", "process"):
        repo.edit("unit1", "Alex: Great", f"Alex: Great {mode}")
        run = repo.doit("-n", "2", "-P", mode)
        assert run.returncode == 1, run.stdout + run.stderr
        assert tasks("unit1") <= run.ran and run.failed == {"validate:unit3"}
        assert "status-failed" in index_row(repo, "unit3")
        assert f"Great {mode}" in repo.path("build/site/unit1.html").read_text()


def test_doit_conventions_still_hold(repo):
    repo.write("unit0", lesson_text(BROKEN))  # sorts first: fails before the others run
    repo.edit("unit1", "Alex: Great", "Alex: Great then")
    stop = repo.doit("--no-continue")
    assert stop.returncode == 1
    assert stop.failed == {"validate:unit0"} and "import:unit1" not in stop.ran

    console = repo.doit("--reporter", "console")  # doit's stock lines, for scripts
    assert console.returncode == 1
    assert ".  validate:unit0" in console.stdout and "-- validate:unit2" in console.stdout
    assert ".  import:unit1" in console.stdout


def test_the_output_shows_what_ran_with_progress_and_where_the_result_is(repo):
    repo.edit("unit1", "Alex: Great. Let's practise our English.", "Alex: Great, let's begin.")
    run = repo.doit()
    assert run.returncode == 0, run.stdout + run.stderr
    progress = [line for line in run.stdout.splitlines() if line.startswith("[")]
    assert [line.split()[1] for line in progress] == [  # the paid, slow stage first
        "validate:unit1", "tts:unit1", "import:unit1", "upload:unit1", "add-audio:unit1",
        "index"]
    assert progress[-1] == "[11/11] index"  # every task is counted, up-to-date ones too
    assert "unit2" not in run.stdout  # … but not listed
    assert run.count("validate", "up to date") == 1 and run.count("tts", "ran") == 1
    assert run.stdout.rstrip().endswith("open build/site/index.html to see every lesson")

    noop = repo.doit()
    assert [line for line in noop.stdout.splitlines() if line.startswith("[")] == []
    assert "open build/site/index.html" in noop.stdout


def test_each_run_names_new_speakers_voices_and_warns_of_guesses(tmp_path):
    profiled = lesson_text().replace('speaker_labels: [Alex, Mara]', """speaker_labels: [Alex, Mara]
speaker_profiles:
  - id: Alex
    gender: female
  - id: Mara
    gender: male""")
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text(), "unit2": profiled})
    first = repo.doit()
    assert first.returncode == 0, first.stdout + first.stderr
    voices = [line.strip() for line in first.stdout.splitlines() if "voices:" in line]
    assert voices == ["voices: Alex → en-us+m1 (guessed), Mara → en-us+f1 (guessed)",
                      "voices: Alex → en-us+f1, Mara → en-us+m1"]
    assert "warning: guessed voices (nothing says who these speakers are): unit1: Alex, " \
           "Mara. Give each a gender in the lesson's speaker_profiles" in first.stdout

    repo.edit("unit1", "Alex: Great", "Alex: Great then")  # same speakers: nothing new
    second = repo.doit()
    assert "tts:unit1" in second.ran
    assert "voices:" not in second.stdout and "warning" not in second.stdout

    repo.edit("unit1", "speaker_labels: [Alex, Mara]", "speaker_labels: [Alex, Mara, Kim]")
    repo.edit("unit1", "Alex: Great then", "Kim: Great then")
    third = repo.doit()
    assert "voices: Kim → en-us+m3 (guessed)" in third.stdout


def test_esl_build_build_help_describes_esl_build(repo):
    run = repo.esl_build("build", "--help")
    assert run.returncode == 0
    assert run.stdout.startswith("usage: esl-build build [COMMAND]")
    for words in ("info TASK", "forget TASK", "--no-continue", "--reporter NAME", "console",
                  "exit codes"):
        assert words in run.stdout
    assert "strace" not in run.stdout and "dumpdb" not in run.stdout  # doit's, not ours


def test_a_configuration_error_found_by_a_stage_exits_2_and_marks_no_lesson_failed(repo):
    repo.path("configs/students/anna.json").write_text(
        json.dumps({"student": "Anna", "colorPreset": "no-such-preset"}))
    run = repo.doit()
    assert run.returncode == 2, run.stdout + run.stderr
    assert "unknown preset 'no-such-preset'" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert not repo.path("build/.cache/failures.json").exists()  # no lesson is to blame
