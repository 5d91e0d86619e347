"""Sentinel credentials never show: not in output, logs, events, spans, metrics, manifests,
pages, cache files, failures, exception texts or HTTP answers.

Every credential esl-build reads is set to a sentinel: the Notion token, the ElevenLabs key,
the AWS key pair (moto accepts any), the config service's token, the worker's bearer token,
a PostgreSQL DSN and a queue URL with passwords. Then, over real HTTP through the real SDKs
(fake Notion, fake ElevenLabs, moto S3 on 127.0.0.1):

1. a full ``doit`` build (a subprocess, its event log on);
2. a failing build: a broken lesson, ElevenLabs answering 401 then 500, Notion refusing a
   wrong (also sentinel) token with 401, so the error paths and their exceptions run;
3. Pipeline API calls with an injected logger and metrics and OpenTelemetry spans (an
   in-memory exporter), one succeeding and one failing;
4. the HTTP worker on uvicorn (127.0.0.1): dry and live jobs, their status, /status,
   /metrics, a wrong token.

Everything they produced is scanned for each sentinel and its base64 and URL-encoded forms:
the texts and answers collected, every file under the repository (``build/`` included), the
fake Notion's pages and blocks, every log record. Two more runs put the other credentials to
work: the postgres manifest store with a password in its DSN (a build, ``status``, a
database that can't be reached), and the http config provider with its bearer token (a
build, a service answering 401, one answering 500).
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from esl_build import create_pipeline
from esl_build.errors import EslBuildError
from esl_build.observability import PrometheusMetrics
from esl_build.service import BackgroundServer, create_app
from esl_build.services.s3 import s3_client
from esl_build.settings import Settings
from esl_build.testing.fake_elevenlabs import VOICES, FakeElevenLabs
from esl_build.testing.fake_notion import FakeNotion
from esl_build.testing.moto import CountingMotoServer
from esl_build.testing.repo import LessonsRepo, lesson_text
from esl_build.voices.catalog import catalog_bytes

pytestmark = pytest.mark.slow

SENTINELS = {
    "NOTION_TOKEN": "ntn_SENTINEL0notion0token0a1b2c3",
    "ELEVENLABS_API_KEY": "sk_SENTINEL0eleven0key0d4e5f6",
    "AWS_ACCESS_KEY_ID": "AKIASENTINEL0AWS0KEY",
    "AWS_SECRET_ACCESS_KEY": "SENTINEL0aws0secret/key+0g7h8",
    "ESL_PIPELINE_CONFIG_TOKEN": "cfg_SENTINEL0config0token0i9j0",
    "ESL_BUILD_SERVICE_TOKEN": "svc_SENTINEL0bearer0token0k1l2",
}
PG_PASSWORD = "pg_SENTINEL0password0m3n4"
QUEUE_PASSWORD = "redis_SENTINEL0password0o5p6"
WRONG_NOTION = "ntn_SENTINEL0wrong0token0q7r8"  # answered 401: the error path


def forms(secret: str) -> list[str]:
    """The sentinel and the forms it could be smuggled out in."""
    raw = secret.encode()
    return sorted({secret, quote(secret, safe=""), base64.b64encode(raw).decode(),
                   base64.urlsafe_b64encode(raw).decode(),
                   base64.b64encode(raw).decode().rstrip("=")})


ALL = [*SENTINELS.values(), PG_PASSWORD, QUEUE_PASSWORD, WRONG_NOTION]
ENCODED = [(secret, form) for secret in ALL for form in forms(secret)]


class Collected:
    """Everything the runs produced, by where it came from."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.events: list[Any] = []
        self.metrics: list[Any] = []

    def add(self, where: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.texts[where] = self.texts.get(where, "") + text

    def add_runs(self, runs: list[Any]) -> None:
        """What each run printed, as ``run <n>``."""
        for n, run in enumerate(runs):
            self.add(f"run {n}", run.stdout + run.stderr)

    def add_files(self, top: Path) -> None:
        """Every file under ``top`` (symlinks are not followed), as ``file <path>``."""
        for path in sorted(top.rglob("*")):
            if path.is_file() and not path.is_symlink():
                self.add(f"file {path.relative_to(top)}", path.read_bytes())

    def leaks(self) -> list[tuple[str, str]]:
        found = []
        places = {**self.texts, "events": json.dumps(self.events, default=str),
                  "metrics": json.dumps(self.metrics, default=str)}
        for where, text in places.items():
            for secret, form in ENCODED:
                if form in text:
                    found.append((where, f"{secret[:12]}… as {form[:16]}…"))
        return found


class ListLogger:
    def __init__(self, into: list[Any]):
        self.into = into

    def log(self, event: Any) -> None:
        self.into.append(event)


class ListMetrics:
    def __init__(self, into: list[Any]):
        self.into = into

    def timing(self, name: str, ms: float, tags: Any = None) -> None:
        self.into.append(("timing", name, tags))

    def increment(self, name: str, value: float = 1, tags: Any = None) -> None:
        self.into.append(("increment", name, value, tags))


@pytest.fixture(scope="module")
def spans() -> Any:
    """An in-memory span exporter on the process's tracer provider (set once per process)."""
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk.TracerProvider):
        provider = sdk.TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeNotion, FakeElevenLabs, CountingMotoServer]]:
    moto = CountingMotoServer()
    with FakeNotion(token=SENTINELS["NOTION_TOKEN"]) as notion, \
            FakeElevenLabs(api_key=SENTINELS["ELEVENLABS_API_KEY"]) as eleven:
        yield notion, eleven, moto
    moto.stop()


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory, servers: Any,
              spans: Any) -> Iterator[tuple[Collected, LessonsRepo, dict[str, Any]]]:
    notion, eleven, moto = servers
    top = tmp_path_factory.mktemp("secrets")
    bucket = f"secrets-{uuid.uuid4().hex[:8]}"
    env = {**SENTINELS, **notion.env, **eleven.env,
           "NOTION_RATE_LIMIT": "1000", "NOTION_RETRY_DELAY": "0.01",
           "S3_BUCKET": bucket, "AWS_ENDPOINT_URL_S3": moto.url, "AWS_REGION": "us-east-1",
           "S3_ADDRESSING_STYLE": "path", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(top / "no-aws-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(top / "no-aws-credentials"),
           "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
           "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
           "ESL_PIPELINE_MANIFEST_DSN": f"postgresql://esl:{PG_PASSWORD}@127.0.0.1:9/esl",
           "ESL_BUILD_QUEUE_URL": f"redis://:{QUEUE_PASSWORD}@127.0.0.1:9/0",
           "ESL_BUILD_SERVICE_MODE": "inline", "ESL_BUILD_SERVICE_LIVE": "1",
           "ESL_BUILD_EVENT_LOG": "build/events.jsonl"}
    # boto3 reads its credentials from the process environment, not from the pipeline's
    # secrets provider: the in-process runs need them there.
    aws = pytest.MonkeyPatch()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED",
                 "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        aws.setenv(name, env[name])
    s3_client(Settings.resolve(env=env).s3).create_bucket(Bucket=bucket)
    repo = LessonsRepo.create(top / "repo", {
        "unit1": lesson_text(), "unit2": lesson_text(("Alex: Second lesson.", "Mara: Yes."))})
    repo.path("configs/elevenlabs.voices.json").write_bytes(catalog_bytes(list(VOICES)))
    seen = Collected()
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    counts: dict[str, Any] = {}
    try:
        # 1. a full build
        run = repo.doit(env=env)
        seen.add("build 1 output", run.stdout + run.stderr)
        counts["first build"] = run.returncode
        counts["notion requests"] = len(notion.requests)
        counts["eleven requests"] = len(eleven.requests)
        counts["s3 requests"] = sum(moto.requests.values())

        # 2. a failing build: a broken lesson, ElevenLabs 401 then 500, Notion 401
        repo.write("broken", "---\ntitle: [\n---\n## 1. nothing\n")
        repo.edit("unit1", "Great. Let's practise", "Great. Let us practise")
        eleven.fail_next(401, "invalid_api_key", times=1)
        eleven.fail_next(500, "internal_server_error", times=10)  # 2 lessons × 5 tries
        run = repo.doit(env=env)
        seen.add("build 2 output", run.stdout + run.stderr)
        counts["failing build"] = run.returncode
        repo.edit("unit2", "Second lesson.", "Second lesson, edited.")
        run = repo.doit(env={**env, "NOTION_TOKEN": WRONG_NOTION})
        seen.add("build 3 output", run.stdout + run.stderr)
        counts["wrong token build"] = run.returncode
        with eleven._lock:  # the 500s not taken by build 2 must not hit the next runs
            eleven._faults.clear()

        # 3. the Pipeline API with a logger, metrics and spans
        secrets = {**env, "ESL_BUILD_EVENT_LOG": ""}
        pipeline = create_pipeline(cwd=repo.root, secrets=secrets,
                                   logger=ListLogger(seen.events),
                                   metrics=ListMetrics(seen.metrics))
        spans.clear()
        result = pipeline.new_assignment({"md": "unit1"}, run_id="secrets-1")
        seen.add("pipeline result", json.dumps(result.to_json(), default=str))
        counts["pipeline ok"] = result.to_json()
        for md in ("broken", "../outside"):
            try:
                pipeline.new_assignment({"md": md}, run_id="secrets-2")
            except EslBuildError as error:
                seen.add("pipeline exceptions", f"{error}\n{error!r}\n{error.args}\n")
                seen.add("pipeline exceptions", json.dumps(getattr(error, "to_json", dict)(),
                                                           default=str))
        bad = create_pipeline(cwd=repo.root, secrets={**secrets, "NOTION_TOKEN": WRONG_NOTION},
                              logger=ListLogger(seen.events), metrics=ListMetrics(seen.metrics))
        try:
            bad.new_assignment({"md": "unit2", "force": True}, run_id="secrets-3")
        except EslBuildError as error:
            seen.add("pipeline exceptions", f"{error}\n{error!r}\n")
            counts["pipeline 401"] = str(error)
        for span in spans.get_finished_spans():
            seen.add("spans", json.dumps({"name": span.name, "attributes": dict(
                span.attributes or {}), "status": str(span.status.description), "events": [
                    [e.name, dict(e.attributes or {})] for e in span.events]}, default=str))
        counts["spans"] = len(spans.get_finished_spans())

        # 4. the HTTP worker
        metrics = PrometheusMetrics()
        service = create_pipeline(cwd=repo.root, secrets=secrets, metrics=metrics,
                                  logger=ListLogger(seen.events))
        app = create_app(service, live=True, token=SENTINELS["ESL_BUILD_SERVICE_TOKEN"])
        auth = {"Authorization": f"Bearer {SENTINELS['ESL_BUILD_SERVICE_TOKEN']}"}
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url,
                                                           timeout=60) as client:
            answers = [
                client.post("/jobs", json={"md": "unit1", "dryRun": True}, headers=auth),
                client.post("/jobs", json={"md": "unit2", "jobId": "live-1", "force": True},
                            headers=auth),
                client.post("/jobs", json={"md": "broken", "jobId": "live-2"}, headers=auth),
                client.post("/jobs", json={"md": "unit1"},
                            headers={"Authorization": f"Bearer {WRONG_NOTION}"}),
                client.post("/jobs", content=b"{", headers=auth),
            ]
            for job in ("live-1", "live-2"):
                deadline = time.monotonic() + 60
                while client.get(f"/jobs/{job}", headers=auth).json()["state"] not in (
                        "succeeded", "failed") and time.monotonic() < deadline:
                    time.sleep(0.05)
                answers.append(client.get(f"/jobs/{job}", headers=auth))
            answers += [client.get("/status", params={"md": "unit1"}, headers=auth),
                        client.get("/status", params={"md": "broken"}, headers=auth),
                        client.get("/metrics"), client.get("/openapi.json")]
            counts["http"] = [a.status_code for a in answers]
            for answer in answers:
                seen.add("http answers", f"{answer.status_code} {answer.headers} {answer.text}\n")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        aws.undo()
    for record in records:
        # Every logger at INFO and above (what `esl-build serve` logs), ours at DEBUG too.
        # (botocore's own DEBUG lines show the access key id in the signed headers, as AWS's
        # SDKs do; nothing of esl-build turns them on.)
        if record.levelno < logging.INFO and not record.name.startswith("esl_build"):
            continue
        seen.add(f"log {record.name}", f"{record.getMessage()} {record.args!r} "
                 f"{record.exc_text or ''}\n")
    seen.add_files(top)
    with notion.lock:
        for node in notion.nodes.values():
            seen.add("notion pages and blocks", json.dumps(
                {"data": node.data, "properties": node.properties, "icon": node.icon,
                 "cover": node.cover}, default=str))
    yield seen, repo, counts


def test_the_runs_used_the_sentinels_and_took_the_error_paths(collected: Any) -> None:
    """The scan means something: every run did what it was meant to."""
    seen, _, counts = collected
    assert counts["first build"] == 0, seen.texts["build 1 output"]
    assert counts["notion requests"] and counts["eleven requests"] and counts["s3 requests"]
    assert counts["failing build"] == 1 and "broken" in seen.texts["build 2 output"]
    assert "token is invalid" in seen.texts["build 3 output"], seen.texts["build 3 output"]
    assert "HTTP 401" in seen.texts["build 2 output"], seen.texts["build 2 output"]
    assert "HTTP 500" in seen.texts["build 2 output"] + seen.texts["build 3 output"]
    assert counts["pipeline ok"]["steps"], counts
    assert "pipeline 401" in counts and counts["spans"] >= 5
    assert counts["http"][:5] == [200, 202, 202, 401, 400], counts["http"]
    assert any("events.jsonl" in where for where in seen.texts)
    assert any(where.endswith("failures.json") for where in seen.texts), sorted(seen.texts)
    assert any(where.startswith("log ") for where in seen.texts)


def test_no_sentinel_shows_anywhere(collected: Any) -> None:
    seen, _, _ = collected
    assert not seen.leaks(), seen.leaks()


def test_the_scan_finds_a_sentinel_in_any_of_its_forms() -> None:
    secret = SENTINELS["AWS_SECRET_ACCESS_KEY"]  # a "/" and a "+": its URL form differs
    assert len(forms(secret)) >= 4
    for form in forms(secret):
        seen = Collected()
        seen.add("somewhere", f"Authorization: Basic {form}")
        assert ("somewhere", f"{secret[:12]}… as {form[:16]}…") in seen.leaks()


def test_a_postgres_dsn_password_never_shows(tmp_path: Path) -> None:
    """The postgres manifest store with a password in its DSN: a build, ``status``, and a
    database that can't be reached (its error path)."""
    from esl_build.testing.postgres import PostgresServer

    why = PostgresServer.available()
    if why:
        pytest.skip(why)
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text()})
    with PostgresServer.start() as server:  # trust authentication: any password is let in
        dsn = server.dsn.replace("esl@", f"esl:{PG_PASSWORD}@")
        env = {"ESL_PIPELINE_MANIFEST_STORE": "postgres", "ESL_PIPELINE_MANIFEST_DSN": dsn,
               "ESL_BUILD_EVENT_LOG": "build/events.jsonl"}
        runs = [repo.doit(env=env), repo.esl_build("status", "--json", env=env),
                repo.esl_build("status", env={**env, "ESL_PIPELINE_MANIFEST_DSN":
                                              dsn.replace(f":{server.port}/", ":9/")}),
                repo.doit(env={**env, "ESL_PIPELINE_MANIFEST_DSN":
                               dsn.replace(f":{server.port}/", ":9/")})]
    assert runs[0].returncode == 0, runs[0].stdout + runs[0].stderr
    assert "unit1" in runs[1].stdout and runs[2].returncode != 0 and runs[3].returncode != 0
    assert "manifest database" in runs[2].stderr, runs[2].stderr
    seen = Collected()
    seen.add_runs(runs)
    seen.add_files(tmp_path)
    assert any("events.jsonl" in where for where in seen.texts)
    assert not seen.leaks(), seen.leaks()


def test_the_config_service_token_never_shows(tmp_path: Path) -> None:
    """The http config provider with a sentinel bearer token: a build that reads its
    documents, a service that refuses the token (401) and one that fails (500)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    token = SENTINELS["ESL_PIPELINE_CONFIG_TOKEN"]
    documents = {"/cfg/presets.json": '{"b1-default": {"h2": "yellow_background"}}',
                 "/cfg/students.json": '[{"student": "Anna"}]', "/cfg/voices.yml": ""}
    seen_tokens: list[str] = []
    answer = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen_tokens.append(self.headers.get("Authorization", ""))
            body = documents.get(self.path.split("?")[0])
            status = answer["status"] if body is not None else 404
            if self.headers.get("Authorization") != f"Bearer {token}":
                status = 401
            self.send_response(status)
            data = (body or "").encode() if status == 200 else b'{"error": "no"}'
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text()})
    env = {"ESL_PIPELINE_CONFIG_PROVIDER": "http", "ESL_PIPELINE_CONFIG_TOKEN": token,
           "ESL_PIPELINE_CONFIG_ENDPOINT": f"http://127.0.0.1:{server.server_port}/cfg",
           "ESL_PIPELINE_CONFIG_TENANT": "t1", "ESL_BUILD_EVENT_LOG": "build/events.jsonl"}
    try:
        runs = [repo.doit(env=env)]
        repo.edit("unit1", "It helps you speak", "It helps you talk")
        runs.append(repo.doit(env={**env, "ESL_PIPELINE_CONFIG_TOKEN": WRONG_NOTION}))
        answer["status"] = 500
        runs.append(repo.esl_build("plan", env=env))
    finally:
        server.shutdown()
        server.server_close()
    assert runs[0].returncode == 0, runs[0].stdout + runs[0].stderr
    assert f"Bearer {token}" in seen_tokens and f"Bearer {WRONG_NOTION}" in seen_tokens
    assert "HTTP 401" in runs[1].stderr and "HTTP 500" in runs[2].stderr, \
        [r.stderr for r in runs]
    seen = Collected()
    seen.add_runs(runs)
    seen.add_files(tmp_path)
    assert not seen.leaks(), seen.leaks()
