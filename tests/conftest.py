"""Shared fixtures: our environment variables are cleared for every test."""

from __future__ import annotations

import pytest

from esl_build.settings import ENV_VARS


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield
