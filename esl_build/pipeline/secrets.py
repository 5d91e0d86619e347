"""Where a pipeline's credentials and settings come from: a secrets provider, not globals.

A provider has one method, ``environ()``: the variables ``Settings.resolve`` reads (tokens,
keys, backend choices). ``EnvironmentSecrets`` (the default) is the process environment over
a ``.env`` file at the lessons repository's root (real variables win; ``os.environ`` is never
changed). ``MappingSecrets`` is a fixed mapping: one per tenant, or a test's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD")


class SecretsProvider(Protocol):
    """Supplies the environment a pipeline resolves its settings from."""

    def environ(self) -> Mapping[str, str]: ...


class MappingSecrets:
    """A fixed mapping of variables (nothing is read from the process)."""

    def __init__(self, values: Mapping[str, str]):
        self._values = dict(values)

    def environ(self) -> Mapping[str, str]:
        return dict(self._values)

    def __repr__(self) -> str:
        return f"MappingSecrets({sorted(self._values)})"  # names only, never values


class EnvironmentSecrets:
    """``os.environ`` over the ``.env`` file in ``root`` (read once, with python-dotenv)."""

    def __init__(self, root: Path | str, environ: Mapping[str, str] | None = None):
        self.dotenv_path = Path(root) / ".env"
        self._environ = os.environ if environ is None else environ
        self._dotenv: dict[str, str] = {}
        if self.dotenv_path.is_file():
            from dotenv import dotenv_values

            self._dotenv = {k: v for k, v in dotenv_values(self.dotenv_path).items()
                            if v is not None}

    def environ(self) -> Mapping[str, str]:
        return {**self._dotenv, **self._environ}

    def __repr__(self) -> str:
        return f"EnvironmentSecrets({str(self.dotenv_path)!r})"


def secrets_from(given: SecretsProvider | Mapping[str, str] | None, root: Path
                 ) -> SecretsProvider:
    """A provider for ``create_pipeline``'s ``secrets`` argument."""
    if given is None:
        return EnvironmentSecrets(root)
    if isinstance(given, Mapping):
        return MappingSecrets(given)
    return given


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of the variables that hold credentials (to redact wherever they'd show):
    those named like one (``TOKEN``, ``KEY``, …) and those ``settings.ENV_VARS`` marks
    secret (a DSN, a broker URL), with the password inside a URL-shaped value on its own."""
    from urllib.parse import urlsplit

    from esl_build.settings import ENV_VARS

    found: list[str] = []
    for name, value in environ.items():
        marked = "(secret" in ENV_VARS.get(name, "")
        if not value or not (marked or any(word in name.upper() for word in SECRET_WORDS)):
            continue
        found.append(value)
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password:
            found.append(password)
    return found
