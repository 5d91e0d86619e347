"""What every stage is made of: a pure ``Plan`` and its ``Cost``.

A stage module provides three functions:

``plan(project, lesson_id) -> Plan``       pure: the inputs that shape the output, hashed.
``apply(project, plan) -> Outcome``        the one thin effect: call the service, return outputs.
``durable(project, record) -> bool``       cheap, local: does the recorded output still exist?

``plan`` raises ``Waiting`` when an upstream stage has no record yet (doit runs upstream first,
so inside a build this only happens after an upstream failure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from esl_build.fingerprint import fingerprint

STAGES = ("validate", "import", "tts", "upload", "add-audio")
# The data each stage consumes. tts does not need the page, so import and tts can run at once.
UPSTREAM: dict[str, tuple[str, ...]] = {
    "validate": (), "import": ("validate",), "tts": ("validate",), "upload": ("tts",),
    "add-audio": ("import", "upload"),
}


@dataclass(frozen=True)
class Cost:
    """What running a stage spends: characters billed by a voice, requests sent to services."""

    characters: int = 0
    requests: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.characters + other.characters, self.requests + other.requests)

    def to_json(self) -> dict[str, int]:
        return {"characters": self.characters, "requests": self.requests}


@dataclass(frozen=True)
class Plan:
    """A stage's inputs for one lesson, and their fingerprint."""

    stage: str
    lesson_id: str
    backend: str
    inputs: dict[str, Any]
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprint", fingerprint(self.inputs))


@dataclass(frozen=True)
class Outcome:
    """What ``apply`` got from the service."""

    outputs: dict[str, Any]
    cost: Cost = field(default_factory=Cost)


class Waiting(Exception):
    """A plan can't be made yet: an upstream stage has not produced its record."""
