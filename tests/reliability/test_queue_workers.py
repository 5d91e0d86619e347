"""Two queue workers on one lesson at once: two jobs for the same lesson, each taken by its
own ``esl-build worker`` process (real Redis), while the fake ElevenLabs holds the first
synthesis so both jobs are running together. Both succeed, and the lesson is built once:
one page, every line billed once, one audio object, each stage succeeding once."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from invariants import STAGES, Stack, check_invariants, dialogue_lessons

from esl_build.queue import JobQueue
from esl_build.settings import Settings
from esl_build.testing.queue import QueueWorkers, RedisServer

pytestmark = [pytest.mark.reliability,
              pytest.mark.skipif(not RedisServer.available(),
                                 reason="redis-server is not installed "
                                        "(apt-get install -y redis-server)")]


def _statuses(queue: JobQueue, ids: list[str]) -> dict[str, dict[str, Any]]:
    return {job: queue.job_status(job) or {} for job in ids}


def _until(what: str, done: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_two_workers_given_the_same_lesson_at_once_build_it_once(
        stack: Stack, tmp_path: Path) -> None:
    lessons = dialogue_lessons(1)
    (lesson,) = lessons
    repo = stack.repo(tmp_path / "repo", lessons)
    log = tmp_path / "events.jsonl"
    stack.eleven.hold()  # the first synthesis waits: the other job starts meanwhile
    with RedisServer() as redis, QueueWorkers(repo, redis.url, count=2, extra={
            "ESL_BUILD_EVENT_LOG": str(log)}) as workers:
        queue = JobQueue(Settings.resolve(env=workers.env).queue)
        ids = [queue.enqueue({"jobId": f"job-{n}", "md": f"lessons/{lesson}.md",
                              "withTts": True, "upload": "s3"}) for n in range(2)]
        _until("both jobs running", lambda: all(
            s.get("state") == "running" for s in _statuses(queue, ids).values()))
        workers_used = {s["worker"] for s in _statuses(queue, ids).values()}
        assert len(workers_used) == 2, workers_used
        stack.eleven.release()
        _until("both jobs ended", lambda: all(
            s.get("state") in ("succeeded", "failed") for s in _statuses(queue, ids).values()))
        found = _statuses(queue, ids)
    assert [s["state"] for s in found.values()] == ["succeeded"] * 2, found
    check_invariants(stack, repo, [lesson])
    assert set(stack.eleven.billed.values()) == {1}
    events = [json.loads(line) for line in log.read_text().splitlines()]
    done = Counter((e["stage"], e["lesson"]) for e in events
                   if e["event"].startswith("stage.") and e["event"].endswith(".success"))
    assert done == Counter({(stage, lesson): 1 for stage in STAGES})
