"""The built wheel works on its own: installed into a fresh virtual environment, away from the
source tree, it runs the commands the container image runs (the image installs this wheel).

Slow (a wheel build and a venv install): about a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

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
    _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)], work, env)
    return bin_dir


def _env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "ESL_", "NOTION_", "ELEVENLABS_", "S3_", "AWS_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_wheel_carries_everything_the_commands_need(installed: Path, tmp_path: Path) -> None:
    env = _env(installed)
    assert "usage: esl-build" in _run(["esl-build", "--help"], tmp_path, env).stdout
    _run(["esl-build", "init", "demo"], tmp_path, env)  # scaffold files are package data
    demo = tmp_path / "demo"
    _run(["esl-build", "validate", "lessons"], demo, env)
    build = _run(["doit", "-n", "2", "-P", "thread"], demo, env)  # templates, schemas, espeak
    assert (demo / "build" / "site" / "index.html").is_file(), build.stdout
    assert list((demo / "build").rglob("audio.mp3"))
    plan = _run(["esl-build", "plan"], demo, env).stdout
    assert "0 stale stage(s)" in plan, plan  # the build recorded every stage
    # nothing was imported from the source tree: the package lives in the venv
    where = _run([str(installed / "python"), "-c", "import esl_build; print(esl_build.__file__)"],
                 tmp_path, env).stdout
    assert str(REPO) not in where and "site-packages" in where
