"""RemoteConfigProvider against a local HTTP config service (real httpx, 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from esl_build.config import parse_config
from esl_build.config_provider import RemoteConfigProvider
from esl_build.errors import ConfigInvalid
from esl_build.settings import Secret
from esl_build.testing.repo import LessonsRepo, lesson_text

PRESETS = {"b1-default": {"h2": "yellow_background", "h3": "purple_background"},
           "calm": {"h2": "blue_background", "h3": "gray_background"}}
STUDENTS = [{"student": "Anna", "colorPreset": "calm"}, {"student": "Default",
                                                        "colorPreset": "b1-default"}]


class ConfigService:
    """Serves documents with ETags, answers 304 to a matching If-None-Match, records every
    request; ``status`` forces an answer for a path."""

    def __init__(self) -> None:
        self.documents = {"/cfg/presets.json": json.dumps(PRESETS),
                          "/cfg/students.json": json.dumps(STUDENTS),
                          "/cfg/voices.yml": "auto: true\n"}
        self.status: dict[str, int] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                service.requests.append((self.path, dict(self.headers)))
                if path in service.status:
                    self.send_response(service.status[path])
                    self.end_headers()
                    return
                body = service.documents.get(path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cfg"

    def env(self) -> dict[str, str]:
        return {"ESL_PIPELINE_CONFIG_PROVIDER": "http", "ESL_PIPELINE_CONFIG_ENDPOINT": self.url,
                "ESL_PIPELINE_CONFIG_TOKEN": "cfg-token-secret"}


@pytest.fixture
def service():
    running = ConfigService()
    yield running
    running.server.shutdown()


def provider(service: ConfigService, tmp_path: Path, **options: object) -> RemoteConfigProvider:
    return RemoteConfigProvider(service.url, token=Secret("cfg-token-secret"),
                                cache_dir=tmp_path / "cache", **options)  # type: ignore[arg-type]


def test_documents_come_with_the_bearer_token_and_the_tenant(service, tmp_path):
    config = parse_config(provider(service, tmp_path, tenant="school-7").documents())
    assert config.preset_for("Anna") == ("calm", PRESETS["calm"])
    assert config.voices == {"auto": True}
    assert [path for path, _ in service.requests] == [
        "/cfg/presets.json?tenant=school-7", "/cfg/students.json?tenant=school-7",
        "/cfg/voices.yml?tenant=school-7"]
    assert all(h["Authorization"] == "Bearer cfg-token-secret" for _, h in service.requests)


def test_an_unchanged_document_is_not_sent_again(service, tmp_path):
    first = provider(service, tmp_path).documents()
    service.requests.clear()
    again = provider(service, tmp_path).documents()  # a new run: same cache folder
    assert again == first
    assert all(h.get("If-None-Match") for _, h in service.requests)
    service.documents["/cfg/presets.json"] = json.dumps({"calm": PRESETS["calm"]})
    changed = provider(service, tmp_path).documents()
    assert json.loads(changed.presets.text) == {"calm": PRESETS["calm"]}


def test_a_server_error_names_the_endpoint_after_retries(service, tmp_path):
    service.status["/cfg/presets.json"] = 500
    with pytest.raises(ConfigInvalid) as caught:
        provider(service, tmp_path, retries=2).documents()
    text = str(caught.value)
    assert f"config endpoint {service.url}/presets.json: HTTP 500 after 2 attempts" in text
    assert "cfg-token-secret" not in text
    assert len(service.requests) == 2


def test_a_malformed_document_names_its_url_and_line(service, tmp_path):
    service.documents["/cfg/presets.json"] = '{"calm": {"h2": "blue"},\n  "x": }'
    with pytest.raises(ConfigInvalid, match=rf"^{service.url}/presets.json:2: invalid JSON"):
        parse_config(provider(service, tmp_path).documents())
    service.documents["/cfg/presets.json"] = '{"calm": {"h2": "sky"}}'
    with pytest.raises(ConfigInvalid, match=r"presets.json:1: calm.h2: colour 'sky' is not"):
        parse_config(provider(service, tmp_path / "other").documents())


def test_an_unreachable_endpoint_is_a_clear_error(tmp_path):
    dead = RemoteConfigProvider("http://127.0.0.1:9/cfg", retries=1, timeout=1)
    with pytest.raises(ConfigInvalid, match=r"config endpoint http://127.0.0.1:9/cfg/presets"):
        dead.documents()


def test_a_changed_remote_preset_republishes_only_the_pages_that_use_it(service, tmp_path):
    repo = LessonsRepo.create(tmp_path / "repo", {
        "anna": lesson_text(student="Anna"), "bob": lesson_text(student="Bob")},
        env=service.env())
    first = repo.doit()
    assert first.returncode == 0, first.stdout + first.stderr
    assert repo.doit().ran == set()
    changed = dict(PRESETS, calm={"h2": "green_background", "h3": "gray_background"})
    service.documents["/cfg/presets.json"] = json.dumps(changed)
    before = {lesson: json.loads(data) for lesson, data in repo.manifest_bytes().items()}
    again = repo.doit()
    assert again.ran - {"index"} == {"import:anna"}, again.stdout
    after = {lesson: json.loads(data) for lesson, data in repo.manifest_bytes().items()}
    assert after["lessons/bob.manifest.json"] == before["lessons/bob.manifest.json"]
    anna = "lessons/anna.manifest.json"
    assert {stage for stage in after[anna]["stages"]
            if after[anna]["stages"][stage] != before[anna]["stages"][stage]} == {"import"}
    broken = repo.doit(env={"ESL_PIPELINE_CONFIG_ENDPOINT": "http://127.0.0.1:9/cfg"})
    assert broken.returncode != 0
    assert "config endpoint http://127.0.0.1:9/cfg/presets.json" in broken.stdout + broken.stderr
    assert "Traceback" not in broken.stdout + broken.stderr
