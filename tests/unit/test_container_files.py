"""The image, its CI job, compose and the wheel's smoke test name the same commands (no I/O
beyond reading the repository's files)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_ci_runs_the_smoke_script_inside_the_image_it_built():
    docker = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())["jobs"]["docker"]
    script = "\n".join(step.get("run", "") for step in docker["steps"])
    assert "docker build -t esl-build:ci ." in script
    assert '-v "$PWD/.ci/smoke:/smoke:ro"' in script and "esl-build:ci /smoke" in script
    assert "redis" in docker["services"]


def test_the_smoke_script_runs_the_commands_compose_runs():
    smoke = (REPO / ".ci/smoke").read_text()
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    for service in ("service", "worker"):
        command = compose[service]["command"]
        head = " ".join(command[:3] if service == "worker" else command[:1])
        assert f"esl-build {head}" in smoke, (service, command)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG EXTRAS=service,queue$", dockerfile, re.M)
    assert 'ENTRYPOINT ["esl-build"]' in dockerfile and re.search(r"^USER esl$", dockerfile,
                                                                   re.M)
