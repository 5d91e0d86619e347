"""The suite stands on its own: the git-tracked files, copied to a folder with nothing beside it
(no ``../shared``, no build outputs, no virtualenv), pass the README's test command.

The command is read from README.md (the second command of its first ``bash`` block), so this test
follows the README. The inner run has ``ESL_BUILD_INNER_SUITE=1``, which skips this test there
(and ``-m "not slow"`` keeps it out as well)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INNER = "ESL_BUILD_INNER_SUITE"
# The inner run skips the slow tests (this one, the wheel build): the outer suite runs them, and
# with them the copy takes over 5 minutes on a busy 2-core machine.
INNER_ARGS = ' -x -q -p no:cacheprovider -m "not slow"'


def readme_test_command(readme: str) -> str:
    """The second command of the README's first ```bash block, without its ``# comment``."""
    block = re.search(r"^```bash\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert block, "README.md has no ```bash block"
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) >= 2, "README.md's first ```bash block has no test command"
    return re.sub(r"\s+#.*$", "", commands[1]).strip()


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0") if name]


def test_the_readme_command_is_read_from_its_first_bash_block() -> None:
    readme = ("# x\n\n```bash\nmake build   # build\n\nmake test  # the tests\n```\n"
              "```bash\nno\n```\n")
    assert readme_test_command(readme) == "make test"
    assert readme_test_command((ROOT / "README.md").read_text("utf-8")).endswith("pytest")


@pytest.mark.slow
@pytest.mark.reliability  # minutes: it runs the fast suite a second time (in `.ci/run`)
@pytest.mark.skipif(bool(os.environ.get(INNER)), reason="this is the inner run of this test")
@pytest.mark.skipif(not (ROOT / ".git").exists() or shutil.which("git") is None,
                    reason="not a git checkout: no tracked files to copy")
def test_a_copy_of_the_tracked_files_passes_the_readme_test_command(tmp_path: Path) -> None:
    command = readme_test_command((ROOT / "README.md").read_text("utf-8"))
    # Installing into whatever python3 is would change the caller's environment.
    assert "-m venv" in command, f"the README's test command installs outside a venv: {command}"
    clone = tmp_path / "clone"  # tmp_path holds nothing else: no ../shared beside the copy
    for name in tracked_files():
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    assert not (clone.parent / "shared").exists()
    env = {key: value for key, value in os.environ.items()
           if key not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env[INNER] = "1"
    run = subprocess.run(["bash", "-c", command + INNER_ARGS], cwd=clone, env=env,
                         capture_output=True, text=True, timeout=1500)
    noise = re.compile(r"^WARNING: Location .* is ignored.*\n?", re.MULTILINE)  # pip's config
    output = run.stdout[-5000:] + "\n" + noise.sub("", run.stderr)[-2000:]
    code = run.returncode  # pytest: 0 only when tests ran and all passed (5: none collected)
    assert code == 0, f"{command}{INNER_ARGS} failed in {clone}:\n{output}"
