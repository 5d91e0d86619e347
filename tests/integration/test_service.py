"""The HTTP worker as a real uvicorn server on 127.0.0.1, over real lessons repositories."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from esl_build import create_pipeline
from esl_build.observability import PrometheusMetrics
from esl_build.service import BackgroundServer, create_app
from esl_build.testing.repo import LessonsRepo, lesson_text

TOKEN = "svc_token_5f2a9c1e7b"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]


class Events:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.running = self.most = 0
        self._lock = threading.Lock()

    def log(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)
            if event["event"] == "pipeline.newAssignment.start":
                self.running += 1
                self.most = max(self.most, self.running)
            elif event["event"].startswith("pipeline.newAssignment."):
                self.running -= 1


@pytest.fixture
def repo(tmp_path: Path) -> LessonsRepo:
    return LessonsRepo.create(tmp_path / "repo", {
        f"unit{n}": lesson_text((f"Alex: Lesson {n} starts.", "Mara: Good.")) for n in range(4)})


@pytest.fixture
def worker(repo):
    events = Events()
    pipeline = create_pipeline(cwd=repo.root, logger=events, metrics=PrometheusMetrics(),
                               secrets={"ESL_BUILD_SERVICE_TOKEN": TOKEN})
    app = create_app(pipeline, live=True, token=TOKEN, max_jobs=2)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH,
                                                       timeout=60) as client:
        yield client, events, server


def wait(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_a_dry_run_job_answers_at_once_and_get_shows_it(worker, repo):
    client, events, _ = worker
    answer = client.post("/jobs", json={"md": "lessons/unit1.md", "jobId": "dry-1",
                                        "dryRun": True})
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert job["state"] == "succeeded" and job["dryRun"] is True
    assert [s["state"] for s in job["steps"]] == ["would-run"] * 5
    assert not repo.path("lessons/unit1.manifest.json").exists()
    assert client.get("/jobs/dry-1").json() == job
    assert {e["run_id"] for e in events.events} == {"dry-1"}
    assert client.get("/jobs/nope").status_code == 404
    assert client.post("/jobs", json={"md": "unit1", "jobId": "dry-1",
                                      "dryRun": True}).status_code == 409


def test_live_jobs_run_off_the_request_thread_a_bounded_number_at_once(worker, repo):
    client, events, _ = worker
    ids = [f"live-{n}" for n in range(4)]
    answers = [client.post("/jobs", json={"md": f"unit{n}", "jobId": job_id})
               for n, job_id in enumerate(ids)]
    assert [a.status_code for a in answers] == [202] * 4
    jobs = [wait(client, job_id) for job_id in ids]
    assert [j["state"] for j in jobs] == ["succeeded"] * 4
    assert 1 <= events.most <= 2
    for n, job in enumerate(jobs):
        assert job["result"]["audio"]["url"] and [s["state"] for s in job["steps"]] == \
            ["ran"] * 5
        manifest = json.loads(repo.path(f"lessons/unit{n}.manifest.json").read_text())
        assert {r["runId"] for r in manifest["stages"].values()} == {f"live-{n}"}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "text/plain" in metrics.headers["content-type"]
    assert 'esl_pipeline_stage_success_total{stage="tts"} 4.0' in metrics.text
    assert 'esl_service_jobs_total{mode="live",state="queued"} 4.0' in metrics.text


def test_failed_job_shows_a_typed_error(worker, repo):
    client, _, _ = worker
    repo.write("broken", "no frontmatter here")
    job = client.post("/jobs", json={"md": "broken", "dryRun": True}).json()
    assert job["state"] == "failed"
    assert job["error"]["type"] == "ValidationError" and job["error"]["stage"] == "validate"
    assert job["error"]["retryable"] is False and job["error"]["lesson"] == "broken"


def test_auth_is_required_and_the_token_never_shows(worker, caplog):
    client, events, server = worker
    with caplog.at_level(logging.DEBUG):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = httpx.post(f"{server.url}/jobs", json={"md": "unit1"}, headers=headers)
            assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
            assert httpx.get(f"{server.url}/jobs/x", headers=headers).status_code == 401
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
        done = client.post("/jobs", json={"md": "unit1", "dryRun": True}).text
        doc = httpx.get(f"{server.url}/openapi.json").text
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in done + doc + logs + json.dumps(events.events)


@pytest.mark.parametrize(("body", "field"), [
    ({}, "md"), ({"md": ""}, "md"), ({"md": 7}, "md"), ({"md": "../../etc/passwd"}, "md"),
    ({"md": "/etc/passwd"}, "md"), ({"md": "lessons/../../x.md"}, "md"),
    ({"md": "missing"}, "md"), ({"md": "unit1", "surprise": True}, "surprise"),
    ({"md": "unit1", "withTts": "yes"}, "withTts"), ({"md": "unit1", "upload": "ftp"}, "upload"),
    ({"md": "unit1", "jobId": "has space"}, "jobId"), ([], None), ("md", None)])
def test_bad_bodies_are_400s_naming_the_field(worker, body, field):
    client, _, _ = worker
    answer = client.post("/jobs", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and answer.json()["message"]


def test_malformed_json_is_a_400(worker):
    client, _, _ = worker
    answer = client.post("/jobs", content=b'{"md": ', headers={"content-type":
                                                               "application/json"})
    assert answer.status_code == 400 and "JSON" in answer.json()["message"]


def test_paths_are_confined_to_the_lessons_folder(worker, repo, tmp_path):
    client, _, _ = worker
    outside = tmp_path / "secret.md"
    outside.write_text(lesson_text())
    (repo.root / "lessons" / "escape.md").symlink_to(outside)
    (repo.root / "lessons" / "linked").symlink_to(tmp_path)
    for md in ("escape", "escape.md", "lessons/escape.md", "linked/secret",
               "../secret.md", "../../secret", "lessons/../../secret.md", "unit2/../../../secret",
               str(outside), str(repo.root / "dodo.py")):
        answer = client.post("/jobs", json={"md": md, "dryRun": True})
        assert answer.status_code == 400, (md, answer.text)
    for md in ("unit2", "unit2.md", "lessons/unit2.md", str(repo.root / "lessons/unit2.md")):
        answer = client.post("/jobs", json={"md": md, "dryRun": True})
        assert answer.status_code == 200 and answer.json()["state"] == "succeeded", md


def test_a_worker_without_live_runs_refuses_them(repo):
    pipeline = create_pipeline(cwd=repo.root, secrets={})
    with BackgroundServer(create_app(pipeline)) as server:
        refused = httpx.post(f"{server.url}/jobs", json={"md": "unit1", "dryRun": False})
        default = httpx.post(f"{server.url}/jobs", json={"md": "unit1"})
    assert refused.status_code == 403 and refused.json()["field"] == "dryRun"
    assert default.status_code == 200 and default.json()["dryRun"] is True
    assert not repo.path("lessons/unit1.manifest.json").exists()


def test_the_openapi_document_holds_up_under_schemathesis(worker, tmp_path):
    _, _, server = worker
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
         "-H", f"Authorization: Bearer {TOKEN}", "--max-examples", "25", "--seed", "1",
         "--phases", "examples,coverage,fuzzing"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_the_step_3_example_works_as_written(repo, monkeypatch):
    monkeypatch.setenv("PIPELINE_CWD", str(repo.root))
    spec = importlib.util.spec_from_file_location("step3", ROOT / "examples/service/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with BackgroundServer(module.app) as server:
        ok = httpx.post(f"{server.url}/jobs", json={"md": "lessons/unit1.md", "jobId": "s3-1"})
        missing = httpx.post(f"{server.url}/jobs", json={"jobId": "s3-2"})
        escape = httpx.post(f"{server.url}/jobs", json={"md": "../../etc/passwd"})
    assert ok.status_code == 200, ok.text
    result = ok.json()["result"]
    assert ok.json()["jobId"] == "s3-1" and result["run_id"] == "s3-1" and result["dry_run"]
    assert [s["state"] for s in result["steps"]] == ["would-run", "skipped", "skipped",
                                                     "skipped", "skipped"]
    assert missing.status_code == 400 and missing.json() == {"error": "md is required"}
    assert escape.status_code == 400
    assert not repo.path("lessons/unit1.manifest.json").exists()


def test_esl_build_serve_starts_the_worker_with_the_deployments_settings(repo):
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = repo.process_env({"ESL_BUILD_SERVICE_TOKEN": TOKEN, "ESL_BUILD_SERVICE_LIVE": "1"})
    server = subprocess.Popen([sys.executable, "-m", "esl_build.cli", "serve", "--port",
                               str(port)], cwd=repo.root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        assert httpx.post(f"{url}/jobs", json={"md": "unit1"}).status_code == 401
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
            queued = client.post("/jobs", json={"md": "unit1", "jobId": "cli-1"})
            assert queued.status_code == 202  # live: the deployment enabled it
            assert wait(client, "cli-1")["state"] == "succeeded"
            assert "esl_pipeline_stage_success_total" in client.get("/metrics").text
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert {e["run_id"] for e in events if e.get("stage")} == {"cli-1"}
    assert TOKEN not in output


def test_status_reads_a_lessons_manifest(worker, repo):
    client, _, server = worker
    before = client.get("/status", params={"md": "lessons/unit1.md"})
    assert before.status_code == 200 and before.json()["has_manifest"] is False
    assert wait(client, client.post("/jobs", json={"md": "unit1"}).json()["jobId"])[
        "state"] == "succeeded"
    after = client.get("/status", params={"md": "unit1"}).json()
    assert after["up_to_date"] and after["stages"]["tts"]["state"] == "done"
    assert client.get("/status", params={"md": "../x"}).status_code == 400
    assert httpx.get(f"{server.url}/status", params={"md": "unit1"}).status_code == 401


def test_a_full_queue_answers_503_with_retry_after(repo):
    pipeline = create_pipeline(cwd=repo.root, secrets={})
    app = create_app(pipeline, live=True, max_jobs=1, max_waiting=0)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
        answers = [client.post("/jobs", json={"md": f"unit{n}", "jobId": f"q-{n}"})
                   for n in range(4)]
        codes = [a.status_code for a in answers]
        assert codes[0] == 202 and 503 in codes, codes
        busy = next(a for a in answers if a.status_code == 503)
        assert busy.headers["retry-after"] == "5" and busy.json()["error"] == "busy"
        assert wait(client, "q-0")["state"] == "succeeded"
        refused = [f"q-{n}" for n, code in enumerate(codes) if code == 503]
        assert all(client.get(f"/jobs/{job_id}").status_code == 404 for job_id in refused)
