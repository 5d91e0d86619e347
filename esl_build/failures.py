"""Stages that failed, kept beside the build rather than in the manifests.

A broken lesson changes no manifest, yet the index and ``esl-build status`` must say that it
failed and why. So each failure is kept in ``build/.cache/failures.json``:
``{lesson id: {stage: {"message": ..., "runId": ...}}}``, written atomically under a lock
(builds run stages in threads and processes). A stage's entry is removed when that stage
later succeeds or is found up to date. Deleting the file forgets the failures and nothing
else: the failed stages are still stale and run again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from esl_build.files import atomic_write, file_lock


class FailureLog:
    """The failed stages of every lesson (see the module docstring)."""

    def __init__(self, file: Path, lock: Path):
        self.file = file
        self.lock = lock

    def read(self) -> dict[str, dict[str, dict[str, Any]]]:
        """lesson id → stage → ``{"message", "runId"}``; empty when nothing failed."""
        try:
            data = json.loads(self.file.read_bytes())
        except (OSError, ValueError):
            return {}  # no failures, or a damaged cache: the stages are stale anyway
        return data if isinstance(data, dict) else {}

    def record(self, lesson_id: str, stage: str, message: str, run_id: str) -> None:
        """Remember that ``stage`` of ``lesson_id`` failed with ``message``."""
        self._change(lambda data: data.setdefault(lesson_id, {}).__setitem__(
            stage, {"message": message, "runId": run_id}))

    def clear(self, lesson_id: str, stage: str) -> None:
        """Forget a failure of ``stage`` (it succeeded or is up to date). Costs one ``stat``
        when nothing has failed."""
        if not os.path.exists(self.file):
            return

        def drop(data: dict[str, dict[str, Any]]) -> None:
            stages = data.get(lesson_id) or {}
            stages.pop(stage, None)
            if not stages:
                data.pop(lesson_id, None)

        self._change(drop)

    def _change(self, change: Callable[[dict[str, dict[str, Any]]], None]) -> None:
        with file_lock(self.lock):
            data = self.read()
            before = json.dumps(data, sort_keys=True)
            change(data)
            if json.dumps(data, sort_keys=True) == before:
                return
            if data:
                text = json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False)
                atomic_write(self.file, text.encode() + b"\n")
            else:
                self.file.unlink(missing_ok=True)
