"""The built wheel works on its own: installed into a fresh virtual environment with the extras
the container image installs, away from the source tree, it passes ``.ci/smoke``, the script
CI runs inside the image (a build, a queue worker, the HTTP service enqueueing a live job).

Slow (a wheel build and a venv install): about a minute.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from esl_build.testing.queue import RedisServer, free_port

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / ".ci" / "smoke"


def _image_extras() -> str:
    """The extras the Dockerfile installs with the wheel (its ``ARG EXTRAS=``)."""
    found = re.search(r"^ARG EXTRAS=([a-z,]+)$", (REPO / "Dockerfile").read_text(), re.M)
    assert found, "the Dockerfile names its extras in ARG EXTRAS="
    return found.group(1)


pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel built from this checkout (and its dependencies) installed."""
    work = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(work / "dist"),
          str(REPO)], work, env)
    [wheel] = (work / "dist").glob("esl_build-*.whl")
    venv.create(work / "venv", with_pip=True)
    bin_dir = work / "venv" / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet",
          f"{wheel}[{_image_extras()}]"], work, env)
    return bin_dir


def _env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "ESL_", "NOTION_", "ELEVENLABS_", "S3_", "AWS_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_wheel_passes_the_images_smoke_test(installed: Path, tmp_path: Path) -> None:
    env = _env(installed)
    with RedisServer(tmp_path) as redis:
        smoke = _run(["sh", str(SMOKE)], tmp_path, {
            **env, "ESL_BUILD_QUEUE_URL": redis.url, "SMOKE_PORT": str(free_port())})
    assert smoke.stdout.rstrip().endswith("smoke: ok"), smoke.stdout
    assert "queued job smoke-" in smoke.stdout and " succeeded" in smoke.stdout
    demo = tmp_path / "demo"  # templates, schemas and espeak came with the wheel
    assert (demo / "build" / "site" / "index.html").is_file()
    assert list((demo / "build").rglob("audio.mp3"))
    # nothing was imported from the source tree: the package lives in the venv
    where = _run([str(installed / "python"), "-c", "import esl_build; print(esl_build.__file__)"],
                 tmp_path, env).stdout
    assert str(REPO) not in where and "site-packages" in where
