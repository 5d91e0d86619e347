"""compose.yaml: every esl-build service runs a command ``esl-build --help`` lists, with the
queue wired to the Redis service."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import yaml

from esl_build.cli import main

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


def _commands() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["--help"])
    return out.getvalue()


def test_every_esl_build_service_runs_a_listed_command():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"service", "worker", "redis", "minio"} <= set(services)
    listed = _commands()
    ours = {name: spec for name, spec in services.items() if spec.get("build") == "."}
    assert set(ours) == {"service", "worker"}
    for name, spec in ours.items():
        assert f"    {spec['command'][0]} " in listed, name
        env = spec["environment"]
        assert env["ESL_BUILD_QUEUE_URL"] == "redis://redis:6379/0"
        assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
        assert env["ESL_PIPELINE_MANIFEST_STORE"].endswith("s3}")
        assert any(v.endswith(":/lessons") for v in spec["volumes"])
        assert env["ESL_BUILD_ROOT"] == "/lessons"
    assert services["service"]["environment"]["ESL_BUILD_SERVICE_MODE"] == "queue"
