"""The queue's payload: the guide's contract in camelCase, checked before anything is enqueued.

::

    {"jobId": "5f9…", "md": "lessons/unit1.md", "withTts": true, "upload": "s3",
     "preset": "b1-default", "student": "Alice"}

Every other ``new_assignment`` flag may be given too, in camelCase (``dryRun``,
``skipImport``, ``voiceId`` …). ``jobId`` is optional (one is made up) and becomes the run id
recorded in manifests and events. A wrong key, type or value is a ``ValidationError`` whose
``field`` and message use the payload's name for it.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from typing import Any

from esl_build.errors import ValidationError
from esl_build.pipeline.flags import AssignmentFlags, check_run_id, parse_flags

__all__ = ["camel", "parse_payload", "wire_payload"]


def camel(name: str) -> str:
    """``with_tts`` → ``withTts``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def parse_payload(payload: object) -> tuple[str, AssignmentFlags]:
    """The job id and the checked flags of ``payload`` (``ValidationError`` naming the field)."""
    if not isinstance(payload, Mapping):
        raise ValidationError('the payload must be a JSON object with at least "md"')
    given = dict(payload)
    job_id = given.pop("jobId", None)
    if job_id is None:
        job_id = "job-" + uuid.uuid4().hex[:12]
    else:
        try:
            job_id = check_run_id(job_id)
        except ValidationError as error:
            raise _on_wire(error, "run_id", "jobId") from None
    try:
        flags = parse_flags(AssignmentFlags, given)
    except ValidationError as error:
        name = error.field or ""
        raise _on_wire(error, name, camel(name)) from None
    return job_id, flags


def wire_payload(job_id: str, flags: AssignmentFlags) -> dict[str, Any]:
    """The message a worker receives: ``jobId`` and the flags that differ from their
    defaults, in camelCase (so it reads like the payload that was sent)."""
    message: dict[str, Any] = {"jobId": job_id}
    for spec in dataclasses.fields(AssignmentFlags):
        value = getattr(flags, spec.name)
        if spec.default is dataclasses.MISSING or value != spec.default:
            message[camel(spec.name)] = value
    return message


def _on_wire(error: ValidationError, name: str, wire: str) -> ValidationError:
    """``error`` with the field called as the payload calls it."""
    message = re.sub(rf"\b{re.escape(name)}\b", wire, error.reason) if name else error.reason
    return ValidationError(message, field=wire or None)
