"""Hostile bodies for ``POST /jobs``, sent over real HTTP to the worker app on uvicorn
(127.0.0.1), whose pipeline is aimed at the fake Notion and ElevenLabs.

Bodies are random JSON of any shape, the job's fields with values of random types, unknown
fields, ``md`` paths that leave the lessons folder, bytes that are no JSON, odd content
types, with the bearer token, without it, or with a wrong one. Every answer must be 2xx or
4xx, never 5xx; a 4xx is JSON with a message, and for an object body a 400 names the field
(in ``field`` and in the message); no request reaches either service and no file of the
repository changes (live runs are off: every job is a dry run or refused).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile_harness import World, snapshot
from hypothesis import event, given, settings
from hypothesis import strategies as st

from esl_build import create_pipeline
from esl_build.service import BackgroundServer, create_app
from esl_build.service.app import JobRequest

TOKEN = "svc-hostile-token-0042"
ALIASES = sorted({info.alias or name for name, info in JobRequest.model_fields.items()}
                 | set(JobRequest.model_fields))
SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)
MD = st.sampled_from(["lessons/short-fenced.md", "short-fenced", "../outside.txt",
                      "/etc/passwd", "lessons/../../outside.txt", "lessons/short-fenced.md\x00",
                      "lessons/%2e%2e/x.md", "C:\\x.md", "lessons/.hidden.md", "lessons/",
                      "x" * 2000, "lessons/short-fenced.manifest.json", "build/x.md", " ",
                      "lessons/\u202eevil.md", "~/x.md"])


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(what it is, the bytes, the content type)."""
    kind = draw(st.sampled_from(["json", "fields", "fields", "md", "bytes"]))
    if kind == "bytes":
        data = draw(st.binary(max_size=200) | st.sampled_from(
            [b"{", b'{"md": ', b"\xff\xfe{}", b"[" * 5000, b'{"md": "a"' + b" " * 10,
             b'{"md": "short-fenced", "md": 1}', b"null", b"NaN", b'{"md": NaN}']))
        return kind, data, draw(st.sampled_from(["application/json", "text/plain", ""]))
    if kind == "json":
        value: Any = draw(JSON)
    else:
        value = {"md": draw(MD)} if kind == "md" or draw(st.booleans()) else {}
        for name in draw(st.lists(st.sampled_from(ALIASES), max_size=4)):
            value[name] = draw(JSON)
        if draw(st.booleans()):
            value[draw(st.text(min_size=1, max_size=10))] = draw(JSON)
        if draw(st.booleans()):
            value["dryRun"] = True
    return kind, json.dumps(value).encode(), "application/json"


@pytest.fixture(scope="module")
def served(small_world: World, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[httpx.Client, Path]]:
    top = tmp_path_factory.mktemp("hostile-http")
    repo = top / "repo"
    shutil.copytree(small_world.base, repo, symlinks=True)
    pipeline = create_pipeline(cwd=repo, secrets={**small_world.env,
                                                  "ESL_BUILD_SERVICE_TOKEN": TOKEN})
    app = create_app(pipeline, live=False, token=TOKEN)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client, repo


@settings(settings.get_profile("hostile"), max_examples=150)
@given(body=bodies(), auth=st.sampled_from(["token", "token", "token", "none", "wrong"]))
def test_a_hostile_body_gets_a_4xx_naming_the_field_never_a_5xx(
        small_world: World, served: tuple[httpx.Client, Path], body: tuple[str, bytes, str],
        auth: str) -> None:
    client, repo = served
    kind, data, content_type = body
    headers = {"Content-Type": content_type} if content_type else {}
    if auth != "none":
        headers["Authorization"] = f"Bearer {TOKEN if auth == 'token' else TOKEN[:-1]}"
    before = snapshot(repo.parent)
    notion, eleven = len(small_world.notion.requests), len(small_world.eleven.requests)

    answer = client.post("/jobs", content=data, headers=headers)

    event(f"{kind} {auth}: {answer.status_code}")
    assert answer.status_code < 500, answer.text
    assert "Traceback" not in answer.text
    if answer.status_code >= 400:
        problem = answer.json()
        assert isinstance(problem.get("message"), str) and problem["message"], \
            (data, answer.status_code, problem)
        if auth != "token":
            assert answer.status_code == 401, problem
        elif answer.status_code == 400 and isinstance(json_of(data), dict):
            assert problem["field"] and mentions(problem["message"], problem["field"]), \
                (data, problem)
    else:
        assert auth == "token" and answer.json()["dryRun"] is True, answer.text
    assert len(small_world.notion.requests) == notion
    assert len(small_world.eleven.requests) == eleven
    assert snapshot(repo.parent) == before


def json_of(data: bytes) -> object:
    """The body as strict JSON (no NaN, no Infinity), or None."""
    def refuse(constant: str) -> None:
        raise ValueError(constant)
    try:
        return json.loads(data, parse_constant=refuse)
    except ValueError:
        return None


def mentions(message: str, field: str) -> bool:
    """Whether the message names the field (or its first part), as is or escaped."""
    head = field.split(".")[0]
    return any(form in message for form in (head, repr(head)[1:-1]))


@pytest.mark.parametrize(("body", "auth", "status"), [
    (b"\x00" * 5, True, 400),  # JSON in no encoding: FastAPI's own "error parsing the body"
    (b"{", False, 401),  # invalid JSON from a stranger: 401, not a hint of the body
    (b'{"md": 1}', False, 401),
])
def test_a_body_fastapi_refuses_itself_gets_our_answer(served: tuple[httpx.Client, Path],
                                                       body: bytes, auth: bool,
                                                       status: int) -> None:
    client, _ = served
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = f"Bearer {TOKEN}"
    answer = client.post("/jobs", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error", "message", "field"}, answer.text


def test_an_unreachable_queue_is_a_503_on_post_and_get_never_a_500(
        small_world: World, tmp_path: Path) -> None:
    pytest.importorskip("celery")
    from esl_build.queue import JobQueue

    repo = tmp_path / "repo"
    shutil.copytree(small_world.base, repo, symlinks=True)
    password = "queue-password-never-shown"
    pipeline = create_pipeline(cwd=repo, secrets={
        "ESL_BUILD_QUEUE_URL": f"redis://:{password}@127.0.0.1:9/0"})
    app = create_app(pipeline, live=True,
                     queue=JobQueue(pipeline.settings().queue, root=repo))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        answers = [client.post("/jobs", json={"md": "short-fenced", "jobId": "q-1"}),
                   client.get("/jobs/q-1")]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "queue_unavailable"
        assert password not in answer.text
