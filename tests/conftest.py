"""Shared fixtures: our environment variables are cleared for every test; golden folders.

The reliability suite (``tests/reliability``: faults, kills, concurrency; and the
standalone-clone test; minutes, not seconds) runs only with ``--reliability``; without it
those tests are deselected, and the summary says how to run them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esl_build.settings import ENV_VARS

RUN_RELIABILITY = "python -m pytest --reliability -m reliability"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reliability", action="store_true",
                     help="also run the slow reliability suite (faults, kills, concurrency): "
                          f"{RUN_RELIABILITY}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: the slow reliability suite; runs only with "
                                       "--reliability")
    config.addinivalue_line("markers", "faults(rate, seed): the reliability stack's fault rate")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--reliability"):
        return
    slow = [item for item in items if item.get_closest_marker("reliability")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("reliability")]
        config.stash[_DESELECTED] = len(slow)


_DESELECTED = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    count = config.stash.get(_DESELECTED, 0)
    if count:
        terminalreporter.write_line(f"{count} reliability tests deselected; run them with: "
                                    f"{RUN_RELIABILITY}")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield


class GoldenFolder:
    """A folder of golden files named ``<name><suffix>``: each check compares bytes, or rewrites
    the file when ``UPDATE_GOLDEN=1`` (then review the diff)."""

    def __init__(self, folder: Path, suffix: str) -> None:
        self.folder, self.suffix = folder, suffix
        self.update = os.environ.get("UPDATE_GOLDEN") == "1"

    def check(self, name: str, data: bytes) -> None:
        golden = self.folder / f"{name}{self.suffix}"
        if self.update:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_bytes(data)
        assert golden.is_file(), f"{golden} is missing; UPDATE_GOLDEN=1 writes it"
        assert golden.read_bytes() == data, f"{golden} differs; UPDATE_GOLDEN=1 rewrites it"

    def check_complete(self, names: list[str]) -> None:
        """Every golden file has a source and every source a golden file (no silent skips);
        with ``UPDATE_GOLDEN=1`` golden files without a source are deleted."""
        assert len(set(names)) == len(names), f"two sources share a name: {sorted(names)}"
        present = {path.name.removesuffix(self.suffix)
                   for path in self.folder.glob(f"*{self.suffix}")}
        orphans = sorted(present - set(names))
        if self.update:  # the per-source checks write the missing ones
            for name in orphans:
                (self.folder / f"{name}{self.suffix}").unlink()
            return
        assert not orphans, f"golden files without a source in {self.folder}: {orphans}"
        missing = sorted(set(names) - present)
        assert not missing, f"sources without a golden file in {self.folder}: {missing}"


@pytest.fixture
def golden_folder() -> type[GoldenFolder]:
    """``golden_folder(folder, suffix)``: see ``GoldenFolder``."""
    return GoldenFolder
