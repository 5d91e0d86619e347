"""Fixtures of the reliability suite: moto for the session, the three services per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from invariants import Stack, open_stack

from esl_build.testing.moto import CountingMotoServer


@pytest.fixture(scope="session")
def moto_server() -> Iterator[CountingMotoServer]:
    server = CountingMotoServer()
    yield server
    server.stop()


@pytest.fixture
def stack(moto_server: CountingMotoServer, tmp_path: Path, request: pytest.FixtureRequest
          ) -> Iterator[Stack]:
    """The three services; ``@pytest.mark.faults(rate, seed)`` sets their fault rate."""
    marker = request.node.get_closest_marker("faults")
    rate, seed = marker.args if marker else (0.0, 0)
    with open_stack(moto_server.url, tmp_path, rate=rate, seed=seed) as opened:
        yield opened
