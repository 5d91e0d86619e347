"""Hostile-input properties. Shared parts live in ``hostile_harness`` (imported by name, so
they never clash with another folder's conftest); one built repository serves the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_harness import FEW, World
from hypothesis import HealthCheck, settings

# Derandomized: CI sees the same examples on every run (a failure found locally is found
# there too). No example database: nothing is written into the checkout.
settings.register_profile(
    "hostile", deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Every fixture lesson that builds, built."""
    built = World(Path(tmp_path_factory.mktemp("hostile-world")))
    yield built
    built.close()


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Two lessons: quicker to copy and rebuild, for the config and manifest properties."""
    built = World(Path(tmp_path_factory.mktemp("hostile-small")), FEW)
    yield built
    built.close()
