"""What pipeline calls return: plain frozen data with a ``to_json()`` for queues and HTTP."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

StepState = Literal["ran", "up-to-date", "skipped", "would-run"]


@dataclass(frozen=True)
class Step:
    """One stage of one call: ``ran``, ``up-to-date`` (nothing to do), ``skipped`` (by a
    flag, or waiting for a skipped stage) or, in a dry run, ``would-run``.

    ``cost`` is what it spent; ``estimate`` what a real run would spend (dry runs)."""

    stage: str
    state: StepState
    reason: str = ""
    duration_ms: float = 0.0
    cost: dict[str, int] = field(default_factory=dict)
    estimate: dict[str, int] | None = None


@dataclass(frozen=True)
class Audio:
    """The lesson's audio as recorded: local path, storage URL, sha256, speaker → voice."""

    path: str | None = None
    url: str | None = None
    sha256: str | None = None
    voices: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AssignmentResult:
    """What ``new_assignment`` / ``rerun_assignment`` did (or, dry, would do)."""

    run_id: str
    lesson: str
    md: str
    dry_run: bool
    steps: tuple[Step, ...]
    page_id: str | None
    page_url: str | None
    audio: Audio | None
    manifest_path: str
    started_at: str
    finished_at: str
    duration_ms: float
    cost: dict[str, int]
    estimate: dict[str, int] | None = None
    notes: tuple[str, ...] = ()

    def step(self, stage: str) -> Step:
        """The step of ``stage`` (KeyError when the call had none)."""
        for step in self.steps:
            if step.stage == stage:
                return step
        raise KeyError(stage)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StageState:
    """One stage as recorded: ``done`` (up to date), ``stale`` (with a reason) or
    ``missing`` (never built)."""

    state: Literal["done", "stale", "missing"]
    reason: str
    backend: str | None
    finished_at: str | None
    run_id: str | None


@dataclass(frozen=True)
class AssignmentStatus:
    """What ``get_assignment_status`` found (read only: nothing was written or sent)."""

    lesson: str
    md: str
    manifest_path: str
    has_manifest: bool
    up_to_date: bool
    stages: dict[str, StageState]
    page_id: str | None
    page_url: str | None
    audio: Audio | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
