"""The error tree. Every error a user can cause is an ``EslBuildError``; anything else is a bug.

::

    EslBuildError                 exit_code 1 unless noted
    ├── LessonInvalid             a lesson has errors (carries every Problem, each file:line)
    ├── ConfigInvalid             a config file, variable or flag is wrong (file:line if known)
    ├── ServiceError              a service failed; ``retryable`` says whether to try again
    │   ├── PublishError          Notion / HTML publisher
    │   ├── VoiceError            ElevenLabs / espeak
    │   └── StorageError          S3 / local storage
    └── StateError                the recorded state cannot be used
        ├── ManifestCorrupt       a manifest is unreadable or fails its schema
        ├── WriteConflict         a manifest changed since it was read (re-read and merge)
        └── LeaseHeld             another worker holds this lesson's lease

    PipelineError                 what a pipeline call raises: names lesson, stage, run id,
    ├── ValidationError           and says whether a retry can help (``retryable``); the
    ├── ConfigurationError        error it stands for is its ``__cause__``
    ├── InfrastructureError       (``PipelineError`` is an ``EslBuildError`` too)
    └── ManifestError

``cli.py`` prints ``str(error)`` and exits with ``error.exit_code``; no traceback is shown.
Messages never contain secrets: services raise with the request id, never the token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One finding about a file, located at a line of the *original* file (1-based)."""

    path: str
    line: int
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "line": self.line, "severity": self.severity,
                "message": self.message}


class EslBuildError(Exception):
    """Base of every error a user can cause. ``str()`` is the message shown to the user."""

    exit_code = 1


class LessonInvalid(EslBuildError):
    """A lesson has errors. ``problems`` holds all of them (and the warnings), in line order."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems)
        errors = [p for p in self.problems if p.is_error]
        shown = errors or self.problems
        super().__init__("\n".join(str(p) for p in shown))


class ConfigInvalid(EslBuildError):
    """A configuration file, environment variable or flag is wrong."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path, self.line = path, line
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        super().__init__(f"{where}{message}")


class ServiceError(EslBuildError):
    """A service failed. ``retryable`` is True for throttling, timeouts and 5xx."""

    service = "service"

    def __init__(self, message: str, *, retryable: bool = False, request_id: str | None = None):
        self.retryable = retryable
        self.request_id = request_id
        suffix = f" (request {request_id})" if request_id else ""
        super().__init__(f"{self.service}: {message}{suffix}")


class PublishError(ServiceError):
    service = "publish"


class VoiceError(ServiceError):
    service = "voice"


class StorageError(ServiceError):
    service = "storage"


class StateError(EslBuildError):
    """Recorded state (manifests, leases) cannot be used as it is."""


class ManifestCorrupt(StateError):
    """A manifest cannot be read; the message names the file and what is wrong."""


class WriteConflict(StateError):
    """A conditional manifest write found another version than the one it read.

    ``ManifestStore.update`` handles it by re-reading and re-applying its change."""


class LeaseHeld(StateError):
    """Another worker holds the lease on this lesson."""


class PipelineError(EslBuildError):
    """A pipeline call failed. ``lesson``, ``stage`` (None: before any stage), ``run_id`` and
    ``retryable`` (whether the same call can succeed later without a change) say what and
    where; ``field`` names the request field at fault, if one is; ``result`` holds the
    steps that completed before the failure (a tuple of pipeline ``Step``)."""

    retryable_default = False

    def __init__(self, message: str, *, lesson: str | None = None, stage: str | None = None,
                 run_id: str | None = None, retryable: bool | None = None,
                 field: str | None = None, result: object = None):
        self.lesson, self.stage, self.run_id, self.field = lesson, stage, run_id, field
        self.retryable = self.retryable_default if retryable is None else retryable
        self.result = result
        where = ":".join(part for part in (stage, lesson) if part)
        self.reason = message
        super().__init__(f"{where}: {message}" if where else message)

    def to_json(self) -> dict[str, object]:
        """The error as an HTTP answer or job status shows it."""
        return {"type": type(self).__name__, "message": str(self), "lesson": self.lesson,
                "stage": self.stage, "field": self.field, "retryable": self.retryable,
                "runId": self.run_id}


class ValidationError(PipelineError):
    """The lesson or the request is invalid: fix it, a retry cannot help."""


class ConfigurationError(PipelineError):
    """A setting, config file or credential is wrong or missing: a retry cannot help."""

    exit_code = 2


class InfrastructureError(PipelineError):
    """A service (publisher, voice, storage) failed; ``retryable`` comes from that service."""


class ManifestError(PipelineError):
    """The recorded state cannot be used (corrupt manifest: no retry; lease held or write
    conflict: retry)."""
