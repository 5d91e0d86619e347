"""What every stage is made of: a pure ``Plan`` and its ``Cost``.

A stage module provides these functions, each given the lesson's manifest as read once:

``plan(project, lesson_id, manifest) -> Plan``       pure: the inputs that shape the output.
``apply(project, plan, manifest) -> Outcome``        the one thin effect: call the service.
``durable(project, lesson_id, record, manifest)``    cheap, local: is the output still there?
``watched(project, lesson_id, record, manifest)``    the local files ``durable`` reads.

The last two are optional: by default the stage's service checks the recorded outputs.
A module may also say ``derived = True``: its output is a pure, cheap function of its
recorded inputs, made locally (validate's ``lesson.json``). When only that output is missing
(a fresh copy of the repository), ``apply`` makes it again and, if the outcome is exactly the
record's outputs at no cost, the record stands: it is not a run (``stages.run``).

``plan`` raises ``Waiting`` when an upstream stage has no record yet (doit runs upstream first,
so inside a build this only happens after an upstream failure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
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
    """What running a stage spends: characters billed by a voice, requests sent to services,
    and (estimates only) Notion blocks it would create, which a free workspace never gets
    back."""

    characters: int = 0
    requests: int = 0
    blocks: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.characters + other.characters, self.requests + other.requests,
                    self.blocks + other.blocks)

    def to_json(self) -> dict[str, int]:
        """The manifest's ``cost`` (characters and requests)."""
        return {"characters": self.characters, "requests": self.requests}


@dataclass(frozen=True)
class Plan:
    """A stage's inputs for one lesson, and their fingerprint."""

    stage: str
    lesson_id: str
    backend: str
    inputs: dict[str, Any]

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.inputs)

    def matches(self, record: dict[str, Any] | None) -> bool:
        """Whether ``record`` was made from exactly these inputs (and not forgotten).

        Records hold their inputs beside the fingerprint, so comparing the inputs avoids
        hashing on every up-to-date check; the fingerprint is what a record is known by."""
        return bool(record and record.get("fingerprint") and record.get("inputs") == self.inputs)


@dataclass(frozen=True)
class Outcome:
    """What ``apply`` got from the service."""

    outputs: dict[str, Any]
    cost: Cost = field(default_factory=Cost)


class Waiting(Exception):
    """A plan can't be made yet: an upstream stage has not produced its record."""


class ManifestView(dict[str, Any]):
    """A lesson's manifest as read for one round of checks, with a memo for values derived
    from it (so the five stages of a lesson share one computation of each)."""

    __slots__ = ("memo",)

    def __init__(self, manifest: dict[str, Any] | None):
        super().__init__(manifest or {})
        self.memo: dict[str, Any] = {}


def record_of(manifest: dict[str, Any], stage: str) -> dict[str, Any] | None:
    """The stage's record in a manifest (``{}`` for a lesson without one), or None."""
    return (manifest.get("stages") or {}).get(stage)


def upstream(manifest: dict[str, Any], stage: str, lesson_id: str) -> dict[str, Any]:
    """The record of an upstream stage, or ``Waiting`` when it has none yet."""
    record = record_of(manifest, stage)
    if not record or "outputs" not in record:
        raise Waiting(f"waiting for {stage}:{lesson_id}")
    return record
