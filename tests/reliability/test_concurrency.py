"""Concurrency: two ``doit -n 4 -P thread`` processes at once on one repository (one disk,
one set of manifests) against fake Notion, fake ElevenLabs and moto S3. Nothing is lost and
nothing is done twice: one page per lesson, every line billed once, every object written
once, and each stage of each lesson succeeds in exactly one of the two processes (their
event logs say which).

Two machines (copies) sharing one S3 manifest store are in
``tests/integration/s3/test_build_on_s3.py``; two queue workers on one lesson in
``test_queue_workers.py`` here."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from invariants import STAGES, Stack, check_invariants, dialogue_lessons

pytestmark = pytest.mark.reliability

LESSONS = 8


def successes(log: Path) -> Counter[tuple[str, str]]:
    done: Counter[tuple[str, str]] = Counter()
    for line in log.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        name = str(event["event"])
        if name.startswith("stage.") and name.endswith(".success"):
            done[(str(event["lesson"]), str(event["stage"]))] += 1
    return done


def test_two_parallel_builds_on_one_repository_do_each_stage_of_each_lesson_once(
        stack: Stack, tmp_path: Path) -> None:
    lessons = dialogue_lessons(LESSONS)
    repo = stack.repo(tmp_path / "repo", lessons)
    logs = [tmp_path / f"events{n}.jsonl" for n in range(2)]
    builds = [subprocess.Popen([sys.executable, "-m", "doit", "-n", "4", "-P", "thread"],
                               cwd=repo.root, env=repo.process_env({"ESL_BUILD_EVENT_LOG":
                                                                    str(log)}),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for log in logs]
    outputs = [build.communicate(timeout=600) for build in builds]
    assert [b.returncode for b in builds] == [0, 0], outputs
    assert not any("Traceback" in out + err for out, err in outputs), outputs
    check_invariants(stack, repo, list(lessons))
    assert set(stack.eleven.billed.values()) == {1}  # no fault here: nothing billed twice
    assert set(stack.audio_puts().values()) == {1}
    done = sum((successes(log) for log in logs if log.exists()), Counter())
    everything = {(lesson, stage) for lesson in lessons for stage in STAGES}
    assert set(done) == everything, sorted(everything - set(done))
    twice = sorted(f"{stage}:{lesson}" for (lesson, stage), n in done.items() if n > 1)
    assert not twice, f"stages done by both builds: {twice}"
