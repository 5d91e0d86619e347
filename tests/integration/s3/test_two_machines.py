"""Two CI machines build one lessons repository at once: two copies (no shared disk), two
``doit`` processes, one S3 manifest store and bucket (moto), the real notion-client and
elevenlabs SDKs against the fake Notion and ElevenLabs servers. Only validate's
``build/<id>/lesson.json`` is a local output; everything else lives in a service.

What ran is counted where it can't be missed: every version of every manifest object (the
bucket is versioned, so no write is ever hidden by a later one), each copy's stage events,
and the fakes' request logs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from esl_build.stages import STAGES
from esl_build.testing.fake_elevenlabs import VOICES, FakeElevenLabs
from esl_build.testing.fake_notion import FakeNotion
from esl_build.testing.repo import LessonsRepo, lesson_text
from esl_build.voices.catalog import catalog_bytes

LESSONS = {f"unit{n}": lesson_text((f"Alex: This is lesson number {n}.",
                                    f"Mara: We practise sentence {n} together today.",
                                    f"Alex: Lesson {n} is done, well played."),
                                   title=f"Lesson {n}") for n in range(6)}
LINES = {line.split(": ", 1)[1] for text in LESSONS.values()
         for line in text.splitlines() if line.startswith(("Alex: ", "Mara: "))}


@pytest.fixture
def notion():
    with FakeNotion() as server:
        yield server


@pytest.fixture
def eleven():
    with FakeElevenLabs() as server:
        yield server


def copy_of_the_repository(root: Path, env: dict[str, str]) -> LessonsRepo:
    repo = LessonsRepo.create(root, LESSONS, env={**env, "ESL_BUILD_EVENT_LOG": "events.jsonl"})
    repo.path("configs/elevenlabs.voices.json").write_bytes(catalog_bytes(list(VOICES)))
    return repo


def successes(repo: LessonsRepo) -> Counter[tuple[str, str]]:
    """(stage, lesson) → stage.<stage>.success events in this copy's event log."""
    log = repo.path("events.jsonl")
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return Counter((e["stage"], e["lesson"]) for e in events
                   if e["event"].startswith("stage.") and e["event"].endswith(".success"))


@pytest.mark.slow
def test_two_copies_at_once_run_each_stage_once_and_a_third_copy_has_nothing_to_do(
        s3, notion, eleven, tmp_path):
    env = {**s3.env, **notion.env, **eleven.env, "NOTION_RATE_LIMIT": "1000",
           "NOTION_RETRY_DELAY": "0.01", "S3_BUCKET": s3.bucket,
           "ESL_PIPELINE_MANIFEST_STORE": "s3", "ESL_PIPELINE_MANIFEST_BUCKET": s3.bucket,
           "ESL_PIPELINE_MANIFEST_PREFIX": "m", "ESL_PIPELINE_LEASE_TTL": "5"}
    copies = [copy_of_the_repository(tmp_path / f"machine{n}", env) for n in range(3)]
    command = [sys.executable, "-m", "doit", "-n", "2", "-P", "thread"]
    # The second machine takes the lessons in the opposite order, so that the two meet in
    # the middle (in the same order the second would only trail the first, lesson by lesson).
    backwards = [f"add-audio:{lesson}" for lesson in reversed(LESSONS)]
    builds = [subprocess.Popen(command + tasks, cwd=copy.root, env=copy.process_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for copy, tasks in zip(copies[:2], ([], backwards), strict=True)]
    outputs = [b.communicate(timeout=600) for b in builds]
    assert [b.returncode for b in builds] == [0, 0], outputs
    assert not any(notion.token in out + err or eleven.api_key in out + err
                   for out, err in outputs)

    every_stage = {(stage, lesson) for stage in STAGES for lesson in LESSONS}
    assert s3.stage_runs("m/lessons/") == Counter(dict.fromkeys(every_stage, 1))  # once, in total
    assert successes(copies[0]) + successes(copies[1]) == Counter(dict.fromkeys(every_stage, 1))
    assert successes(copies[0]) and successes(copies[1])  # both machines did part of it
    assert set(eleven.billed) == LINES and set(eleven.billed.values()) == {1}  # billed once
    for lesson in LESSONS:
        assert len(notion.pages_of(lesson)) == 1  # one page each, with its player
        [page] = notion.pages_of(lesson)
        assert any(node.kind == "audio" for _, node in notion.walk(page.id))
        for copy in copies[:2]:  # each machine has the local output, whoever validated
            assert copy.path(f"build/{lesson}/lesson.json").is_file()
    assert copies[0].path("build/unit0/lesson.json").read_bytes() == \
        copies[1].path("build/unit0/lesson.json").read_bytes()

    versions, notion_writes = len(s3.versions("m/lessons/")), notion.writes()
    paid, billed = len(eleven.synthesis_requests), eleven.characters_billed
    third = copies[2].doit()
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.ran == set() and third.characters == 0
    assert successes(copies[2]) == Counter()
    assert len(s3.versions("m/lessons/")) == versions  # not one manifest written
    assert notion.writes() == notion_writes  # 0 Notion writes
    assert (len(eleven.synthesis_requests), eleven.characters_billed) == (paid, billed)
    for lesson in LESSONS:  # its local output is made again, as the others made it
        assert copies[2].path(f"build/{lesson}/lesson.json").read_bytes() == \
            copies[0].path(f"build/{lesson}/lesson.json").read_bytes()
    again = copies[2].doit()
    assert again.ran == set() and len(s3.versions("m/lessons/")) == versions
