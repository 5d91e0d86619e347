"""The manifest as doit's database: crashes, concurrent builds, doit in-process, no network."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from doit.cmd_base import ModuleTaskLoader
from doit.doit_cmd import DoitMain

from esl_build import tasks
from esl_build.testing.repo import LessonsRepo, lesson_text

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "esl_build" / "schemas"
                     / "manifest.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)  # compiled once: the kill test polls


def many_lessons(root: Path, count: int) -> LessonsRepo:
    lessons = {f"unit{n}": lesson_text((f"Alex: This is lesson number {n}.",
                                        f"Mara: We practise sentence {n} together today.",
                                        "Alex: Let's read the whole dialogue again slowly."),
                                       title=f"Lesson {n}")
               for n in range(count)}
    return LessonsRepo.create(root, lessons)


def records(repo: LessonsRepo) -> dict[tuple[str, str], dict]:
    found = {}
    for path in sorted(repo.path("lessons").glob("*.manifest.json")):
        manifest = json.loads(path.read_text())  # every manifest parses: never torn
        VALIDATOR.validate(manifest)
        for stage, record in manifest["stages"].items():
            found[(manifest["lesson"], stage)] = record
    return found


def test_kill_9_mid_build_then_rebuild_repeats_no_completed_stage(tmp_path):
    repo = many_lessons(tmp_path / "repo", 8)
    process = subprocess.Popen([sys.executable, "-m", "doit"], cwd=repo.root,
                               env=repo.process_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    done: dict = {}
    while time.monotonic() < deadline:
        try:
            done = records(repo)
        except (json.JSONDecodeError, jsonschema.ValidationError):
            raise
        if sum(1 for (_, stage) in done if stage == "tts") >= 2:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = records(repo)
    assert before, "the build was killed before any stage finished"
    assert len(before) < 8 * 5, "the build finished before it could be killed"

    rerun = repo.doit()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = records(repo)
    assert len(after) == 8 * 5
    for key, record in before.items():
        assert after[key] == record, f"{key} ran again after the kill"
        assert f"{key[1]}:{key[0]}" not in rerun.ran


def test_two_concurrent_builds_lose_no_record_and_bill_nothing_twice(tmp_path):
    repo = many_lessons(tmp_path / "repo", 6)
    command = [sys.executable, "-m", "doit", "-n", "2", "-P", "thread"]
    first = subprocess.Popen(command, cwd=repo.root, env=repo.process_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, cwd=repo.root, env=repo.process_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    found = records(repo)
    assert len(found) == 6 * 5
    billed = sum(found[(f"unit{n}", "tts")]["cost"]["characters"] for n in range(6))
    synthesised = sum(int(out.split("characters synthesised:")[1].split()[0])
                      for out, _ in outputs)
    assert synthesised == billed  # no line was synthesised by both builds
    assert repo.doit().ran == set()


@pytest.fixture
def in_process(tmp_path, monkeypatch):
    repo = many_lessons(tmp_path / "repo", 2)
    monkeypatch.chdir(repo.root)
    return repo


def run_doit(*args: str) -> int:
    return DoitMain(ModuleTaskLoader(tasks), config_filenames=()).run(list(args))


def build(repo: LessonsRepo, *args: str) -> tuple[int, str]:
    """``doit run`` in this process; returns the exit code and what doit printed."""
    out = repo.root / "doit-output.txt"  # doit binds its default stdout at import time
    code = run_doit("run", "-o", str(out), *args)
    return code, out.read_text()


def test_doit_main_builds_and_a_no_op_needs_no_network_and_no_sdk(in_process, monkeypatch):
    code, out = build(in_process)
    assert code == 0 and "] tts:unit1\n" in out

    def refuse(*args, **kwargs):
        raise AssertionError("a no-op build opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in ("notion_client", "elevenlabs", "boto3"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    code, out = build(in_process)
    assert code == 0
    assert "] " not in out and "add-audio            0           2" in out
    assert not {"notion_client", "elevenlabs", "boto3"} & set(sys.modules)


def test_doit_list_documents_the_tasks(in_process, capfd):
    assert run_doit("list", "--all") == 0
    listing = capfd.readouterr().out
    for line in ("validate ", "import ", "tts ", "upload ", "add-audio ", "index ",
                 "tts:unit1 ", "add-audio:unit0 "):
        assert line in listing
    assert "Voice each lesson's study text" in listing


def test_no_doit_database_is_written(in_process):
    assert build(in_process)[0] == 0
    assert not list(in_process.root.rglob(".doit.db*"))
    assert not (in_process.root / "lessons" / "lessons").exists()


def test_a_failing_stage_keeps_its_record_and_identity(in_process):
    assert build(in_process)[0] == 0
    manifest = in_process.path("lessons/unit0.manifest.json")
    before = manifest.read_bytes()
    in_process.edit("unit0", "Lesson 0", "Lesson zero")
    page = in_process.path("build/site/unit0.html")
    page.unlink()
    page.mkdir()  # the publisher can't write its page: import fails
    code, out = build(in_process, "import:unit0")
    assert code != 0 and "unit0.html" in out
    assert manifest.read_bytes() != before  # validate succeeded and was recorded …
    record = json.loads(manifest.read_text())["stages"]["import"]
    assert json.loads(before)["stages"]["import"] == record  # … import's record is intact
    assert "doit" in json.loads(manifest.read_text())
    assert "Traceback" not in out


def test_parallel_threads_leave_the_standard_streams_alone(in_process):
    """doit's per-action output capture swaps sys.stdout; under `-P thread` interleaved
    swaps nest wrappers until a large build overflows the stack at exit. Ours don't capture."""
    stdout, stderr = sys.stdout, sys.stderr
    assert build(in_process, "-n", "2", "-P", "thread")[0] == 0
    assert sys.stdout is stdout and sys.stderr is stderr

