"""The job queue on a real redis-server with real ``esl-build worker`` processes.

Skipped only when ``redis-server`` is not installed (``apt-get install -y redis-server``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from esl_build.errors import ValidationError
from esl_build.queue import JobQueue
from esl_build.settings import Settings
from esl_build.testing.queue import QueueWorkers, RedisServer
from esl_build.testing.repo import LessonsRepo, lesson_text

pytestmark = pytest.mark.skipif(not RedisServer.available(),
                                reason="redis-server is not installed "
                                "(apt-get install -y redis-server)")

BUNDLED = Path(__file__).resolve().parents[2] / "lessons"
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "esl_build" / "schemas"
                     / "manifest.schema.json").read_text())
ENDED = ("succeeded", "failed")


@pytest.fixture
def redis():
    with RedisServer() as server:
        yield server


def _repo(tmp_path: Path, lessons: dict[str, str]) -> LessonsRepo:
    repo = LessonsRepo.create(tmp_path / "repo", lessons)
    return repo


def _bundled() -> dict[str, str]:
    return {p.relative_to(BUNDLED).as_posix()[:-3]: p.read_text(encoding="utf-8")
            for p in sorted(BUNDLED.rglob("*.md"))}


def _queue(workers: QueueWorkers) -> JobQueue:
    return JobQueue(Settings.resolve(env=workers.env).queue)


def _wait(queue: JobQueue, ids: list[str], timeout: float = 60) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = {job: queue.job_status(job) or {} for job in ids}
        if all(status.get("state") in ENDED for status in found.values()):
            return found
        assert time.monotonic() < deadline, {j: s.get("state") for j, s in found.items()}
        time.sleep(0.1)


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _ran(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(stage, lesson) → how many times the stage ran and succeeded."""
    return Counter((e["stage"], e["lesson"]) for e in events
                   if e["event"].startswith("stage.") and e["event"].endswith(".success"))


@pytest.mark.slow
def test_twenty_jobs_through_two_workers(tmp_path, redis):
    lessons = {**_bundled(), "broken": lesson_text(("Zed: Nobody knows me.",))}
    repo = _repo(tmp_path, lessons)
    good = sorted(set(lessons) - {"broken"})
    log = repo.root / "build" / "events.jsonl"
    with QueueWorkers(repo, redis.url, count=2,
                      extra={"ESL_BUILD_EVENT_LOG": str(log)}) as workers:
        queue = _queue(workers)
        payloads = [{"jobId": "broken-1", "md": "lessons/broken.md"}]
        for n in range(19):
            lesson = good[n % len(good)]
            payload: dict[str, Any] = {"jobId": f"job-{n}", "md": f"lessons/{lesson}.md",
                                       "withTts": True, "upload": "local"}
            if n % 4 == 3:
                payload["dryRun"] = True
            payloads.append(payload)
        ids = [queue.enqueue(payload) for payload in payloads]
        assert ids == [p["jobId"] for p in payloads]
        found = _wait(queue, ids)
    broken = found.pop("broken-1")
    assert broken["state"] == "failed" and broken["attempts"] == 1
    assert "lessons/broken.md:" in broken["error"] and "Zed" in broken["error"]
    assert broken["error_detail"]["type"] == "ValidationError"
    for job_id, status in found.items():
        assert status["state"] == "succeeded", (job_id, status["error"])
        assert status["attempts"] == 1
        assert status["manifest_path"].endswith(".manifest.json")
        assert [s["stage"] for s in status["steps"]] == ["validate", "import", "tts", "upload",
                                                         "add-audio"]
        assert status["created_at"] <= status["started_at"] <= status["finished_at"]
    ran = _ran(_events(log))
    assert ran == Counter({(stage, lesson): 1 for lesson in good for stage in
                           ("validate", "import", "tts", "upload", "add-audio")})
    build = repo.root / "build"
    assert sorted(p.relative_to(build / "site").as_posix() for p in
                  (build / "site").rglob("*.html") if p.name != "index.html") == sorted(
        f"{lesson}.html" for lesson in good)
    assert sorted(p.parent.relative_to(build).as_posix()
                  for p in build.rglob("audio.mp3")) == good
    for lesson in good:
        manifest = json.loads((repo.root / "lessons" / f"{lesson}.manifest.json").read_text())
        jsonschema.validate(manifest, SCHEMA)
        run_ids = {record["runId"] for record in manifest["stages"].values()}
        assert run_ids <= set(ids) - {"broken-1"}
    assert not (repo.root / "lessons" / "broken.manifest.json").exists()


def test_a_bad_payload_names_the_field_and_enqueues_nothing(tmp_path, redis):
    repo = _repo(tmp_path, {"unit1": lesson_text()})
    env = repo.process_env({"ESL_BUILD_QUEUE_URL": redis.url})
    queue = JobQueue(Settings.resolve(env=env).queue, root=repo.root)
    cases = [({"md": "unit1", "withTts": "yes"}, "withTts"),
             ({"md": "unit1", "upload": "ftp"}, "upload"),
             ({"withTts": True}, "md"),
             ({"md": "unit1", "jobId": "../x"}, "jobId"),
             ({"md": "unit1", "colour": "red"}, "colour")]
    for payload, field in cases:
        with pytest.raises(ValidationError) as caught:
            queue.enqueue(payload)
        assert caught.value.field == field and field in str(caught.value)
    queue.enqueue({"md": "unit1", "jobId": "once"})
    with pytest.raises(ValidationError, match="taken") as caught:
        queue.enqueue({"md": "unit1", "jobId": "once"})
    assert caught.value.field == "jobId"
    import redis as redis_client
    client = redis_client.Redis.from_url(redis.url)
    assert client.llen("esl-build") == 1  # only the one good job reached the queue


@pytest.mark.slow
def test_a_killed_worker_process_loses_no_job_and_redoes_no_stage(tmp_path, redis):
    long_text = tuple(f"{'Alex' if n % 2 else 'Mara'}: Sentence number {n} of a long "
                      "dialogue about nothing at all, spoken slowly." for n in range(160))
    repo = _repo(tmp_path, {"long": lesson_text(long_text)})
    log = repo.root / "build" / "events.jsonl"
    with QueueWorkers(repo, redis.url, count=2,
                      extra={"ESL_BUILD_EVENT_LOG": str(log)}) as workers:
        queue = _queue(workers)
        job = queue.enqueue({"jobId": "long-1", "md": "long"})
        deadline = time.monotonic() + 30
        while not any(e["event"] == "stage.tts.start" for e in _events(log)):
            assert time.monotonic() < deadline, "tts never started"
            time.sleep(0.02)
        status = queue.job_status(job)
        assert status is not None and status["state"] == "running"
        pid = int(status["worker"].rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)  # the pool process running the job, mid-tts
        found = _wait(queue, [job])[job]
    assert found["state"] == "succeeded" and found["attempts"] == 2
    events = _events(log)
    assert [e["event"] for e in events if e["event"] == "stage.tts.start"] == [
        "stage.tts.start"] * 2
    assert _ran(events) == Counter({(stage, "long"): 1 for stage in
                                    ("validate", "import", "tts", "upload", "add-audio")})
    steps = {s["stage"]: s["state"] for s in found["steps"]}
    assert steps == {"validate": "up-to-date", "import": "up-to-date", "tts": "ran",
                     "upload": "ran", "add-audio": "ran"}


@pytest.mark.slow
def test_an_infrastructure_error_is_retried_with_backoff(tmp_path, redis):
    repo = _repo(tmp_path, {"unit1": lesson_text()})
    blocker = repo.root / "build" / "unit1"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the lesson's build folder goes")
    with QueueWorkers(repo, redis.url, extra={"ESL_BUILD_QUEUE_BACKOFF": "1"}) as workers:
        queue = _queue(workers)
        job = queue.enqueue({"md": "unit1"})
        deadline = time.monotonic() + 20
        while True:
            status = queue.job_status(job) or {}
            if status.get("error"):
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.02)
        assert status["state"] == "queued" and status["next_attempt_at"]
        assert status["error_detail"]["type"] == "InfrastructureError"
        assert "lessons/unit1.md" in status["error"]
        blocker.unlink()
        found = _wait(queue, [job])[job]
    assert found["state"] == "succeeded" and found["attempts"] >= 2
    assert found["error"] is None


def test_the_status_of_an_unknown_job_is_none(tmp_path, redis):
    queue = JobQueue(Settings.resolve(env={"ESL_BUILD_QUEUE_URL": redis.url}).queue,
                     root=tmp_path)
    assert queue.job_status("nobody") is None
    with pytest.raises(ValidationError):
        queue.job_status("../etc")


def test_workers_need_no_shared_folder_with_the_producer(tmp_path, redis):
    """The producer checks only the payload; md is the worker's business."""
    queue = JobQueue(Settings.resolve(env={"ESL_BUILD_QUEUE_URL": redis.url}).queue,
                     root=tmp_path)
    assert queue.enqueue({"md": "lessons/elsewhere.md", "jobId": "j1"}) == "j1"
    assert (queue.job_status("j1") or {})["state"] == "queued"
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.slow
def test_the_http_worker_in_queue_mode_enqueues_live_jobs(tmp_path, redis):
    import httpx

    from esl_build import create_pipeline
    from esl_build.service import BackgroundServer, create_app

    repo = _repo(tmp_path, {"unit1": lesson_text()})
    with QueueWorkers(repo, redis.url) as workers:
        queue = _queue(workers)
        pipeline = create_pipeline(repo.root, secrets={})
        app = create_app(pipeline, live=True, queue=queue)
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
            answer = client.post("/jobs", json={"md": "lessons/unit1.md", "jobId": "web-1",
                                                "withTts": True})
            assert answer.status_code == 202 and answer.json()["state"] == "queued"
            assert client.post("/jobs", json={"md": "unit1", "jobId": "web-1"}
                               ).status_code == 409
            bad = client.post("/jobs", json={"md": "lessons/nothing.md"})
            assert bad.status_code == 400 and bad.json()["field"] == "md"
            deadline = time.monotonic() + 30
            while (view := client.get("/jobs/web-1").json())["state"] not in ENDED:
                assert time.monotonic() < deadline, view
                time.sleep(0.05)
            dry = client.post("/jobs", json={"md": "unit1", "dryRun": True})
            assert dry.status_code == 200 and dry.json()["state"] == "succeeded"
            assert client.get("/jobs/nobody").status_code == 404
    assert view["state"] == "succeeded" and view["attempts"] == 1
    assert view["manifestPath"] == "lessons/unit1.manifest.json"
    assert (queue.job_status("web-1") or {})["result"]["page_url"]
