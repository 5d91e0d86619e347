"""What a caller may ask of a pipeline, checked field by field before anything runs.

Flags arrive as a mapping (a queue payload, an HTTP body, keyword arguments) or as the
dataclass itself. Keys are the guide's names in snake_case (``dry_run``); the guide's
camelCase (``dryRun``) is accepted too, so a payload written for the predecessor works as it
is. A wrong key, type or value is a ``ValidationError`` naming the field; nothing has run.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from esl_build.errors import ValidationError
from esl_build.stages.base import STAGES

UPLOADS = ("auto", "local", "s3", "none")
TTS_MODES = ("auto", "dialogue", "monologue")
OUTPUT_FORMATS = ("pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_44100", "pcm_48000")
MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
LANGUAGE = re.compile(r"[A-Za-z]{2}")
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}")


@dataclass(frozen=True, kw_only=True)
class TtsOptions:
    """How one call's audio is voiced, over the deployment's ``ELEVENLABS_*`` settings.

    ``voice_id``            default voice for speakers ``voices.yml`` does not map
    ``accent_preference``   accent that automatic casting prefers (over the student's)
    ``tts_mode``            ``auto``, ``dialogue`` (Text-to-Dialogue) or ``monologue``
    ``model``               model of monologue requests (dialogue always uses eleven_v3)
    ``output_format``       audio asked of ElevenLabs: ``pcm_<rate>``
    ``dialogue_language``   ISO 639-1 code sent with each request
    ``dialogue_stability``  voice stability 0..1
    ``dialogue_seed``       seed 0..4294967295 for best-effort reproducible audio

    An option that is set changes the tts stage's fingerprint, so the audio is made again
    with it. Only the elevenlabs voice reads them (a result's ``notes`` says so otherwise)."""

    voice_id: str | None = None
    accent_preference: str | None = None
    tts_mode: str | None = None
    model: str | None = None
    output_format: str | None = None
    dialogue_language: str | None = None
    dialogue_stability: float | None = None
    dialogue_seed: int | None = None

    def elevenlabs(self) -> dict[str, Any]:
        """The ``ElevenLabsSettings`` fields these options replace (only those set)."""
        fields = {"mode": self.tts_mode, "model": self.model,
                  "output_format": self.output_format, "language": self.dialogue_language,
                  "stability": self.dialogue_stability, "seed": self.dialogue_seed}
        return {name: value for name, value in fields.items() if value is not None}


TTS_OPTIONS = tuple(f.name for f in dataclasses.fields(TtsOptions))


@dataclass(frozen=True)
class AssignmentFlags(TtsOptions):
    """``new_assignment``'s flags (the guide's, in snake_case), with the ``TtsOptions``.

    ``md``            the lesson: ``lessons/<id>.md``, a lesson id, or a path under the
                      lessons folder (nothing outside it is ever opened)
    ``dry_run``       plan only: report what would run and cost; write and send nothing
    ``skip_import``, ``skip_tts``, ``skip_upload``  leave that stage as recorded
                      (``skip_upload`` also leaves add-audio)
    ``with_tts``      False: no tts, upload or add-audio for this call (default True)
    ``upload``        ``auto`` (the configured storage), ``local``, ``s3``, or ``none``
    ``preset``        colour preset to use instead of the student's
    ``student``       whose profile picks the preset (default: the lesson's student)
    ``force``         run every requested stage even when up to date; ``redo_tts``: tts only
    """

    md: str
    dry_run: bool = False
    skip_import: bool = False
    skip_tts: bool = False
    skip_upload: bool = False
    with_tts: bool = True
    upload: str = "auto"
    preset: str | None = None
    student: str | None = None
    redo_tts: bool = False
    force: bool = False

    def skipped(self) -> dict[str, str]:
        """Stage → why this call leaves it alone (stages absent from the result run)."""
        why: dict[str, str] = {}
        if self.skip_import:
            why["import"] = "skip_import flag set"
        if not self.with_tts:
            for stage in ("tts", "upload", "add-audio"):
                why[stage] = "with_tts is false"
        if self.skip_tts:
            why.setdefault("tts", "skip_tts flag set")
        if self.upload == "none":
            for stage in ("upload", "add-audio"):
                why.setdefault(stage, "upload is none")
        if self.skip_upload:
            for stage in ("upload", "add-audio"):
                why.setdefault(stage, "skip_upload flag set")
        return why

    def forced(self, stage: str) -> bool:
        return self.force or (self.redo_tts and stage == "tts")


@dataclass(frozen=True)
class RerunFlags(TtsOptions):
    """``rerun_assignment``'s flags: run ``steps`` (stage names, in pipeline order) again
    whether or not they are stale, without running anything upstream of them; with the
    ``TtsOptions``."""

    md: str
    steps: tuple[str, ...] = ("upload", "add-audio")
    dry_run: bool = False
    upload: str = "auto"

    def skipped(self) -> dict[str, str]:
        return {stage: "not requested" for stage in STAGES if stage not in self.steps}

    def forced(self, stage: str) -> bool:
        return True


Flags = TypeVar("Flags", AssignmentFlags, RerunFlags)


def parse_flags(kind: type[Flags], given: Mapping[str, Any] | Flags) -> Flags:
    """``given`` as ``kind``, every field checked; ``ValidationError`` names the first bad one."""
    if isinstance(given, kind):
        values = dataclasses.asdict(given)
    elif isinstance(given, Mapping):
        values = _snake_keys(kind, given)
    else:
        raise ValidationError(f"flags must be a mapping of flag → value, not "
                              f"{type(given).__name__}")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if value is None and fields[name].default is not dataclasses.MISSING:
            continue
        checked[name] = _check(name, value, fields[name])
    if "md" not in checked:
        raise ValidationError("md is required: a lesson id or lessons/<id>.md", field="md")
    return kind(**checked)


def check_run_id(run_id: object) -> str:
    """A caller's run id as recorded in manifests and events (``ValidationError`` if unsafe)."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise ValidationError("run_id must be 1-128 letters, digits or ._:@+=- "
                              "(starting with a letter or digit)", field="run_id")
    return run_id


def _snake_keys(kind: type[Any], given: Mapping[str, Any]) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(kind)}
    values: dict[str, Any] = {}
    for key, value in given.items():
        name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower() if isinstance(key, str) \
            else key
        if name not in known:
            raise ValidationError(f"unknown flag {key!r}; known flags: "
                                  f"{', '.join(sorted(known))}", field=str(key))
        if name in values:
            raise ValidationError(f"flag {name!r} is given twice ({key!r})", field=name)
        values[name] = value
    return values


def _check(name: str, value: Any, spec: dataclasses.Field[Any]) -> Any:
    kind = str(spec.type)
    if name == "steps":
        return _steps(value)
    if kind.startswith("bool"):
        if not isinstance(value, bool):
            raise ValidationError(f"{name} must be true or false", field=name)
        return value
    if kind.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValidationError(f"{name} must be a number from 0 to 1", field=name)
        return float(value)
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
            raise ValidationError(f"{name} must be a whole number from 0 to 4294967295",
                                  field=name)
        return value
    if not isinstance(value, str) or not value.strip() or len(value) > 1024 or "\0" in value:
        raise ValidationError(f"{name} must be a non-empty string", field=name)
    value = value.strip()
    choices = {"upload": UPLOADS, "tts_mode": TTS_MODES}.get(name)
    if choices and value not in choices:
        raise ValidationError(f"{name} must be one of {', '.join(choices)}, not {value!r}",
                              field=name)
    if name == "output_format" and value.lower() not in OUTPUT_FORMATS:
        raise ValidationError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)} "
                              f"(PCM: the MP3 is encoded locally), not {value!r}", field=name)
    if name == "model" and not MODEL.fullmatch(value):
        raise ValidationError(f"model must be an ElevenLabs model id such as "
                              f"eleven_multilingual_v2, not {value!r}", field=name)
    if name == "dialogue_language" and not LANGUAGE.fullmatch(value):
        raise ValidationError(f"dialogue_language must be a two-letter ISO 639-1 code such "
                              f"as en or de, not {value!r}", field=name)
    return value.lower() if name in ("output_format", "dialogue_language") else value


def _steps(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not value or \
            not all(isinstance(step, str) for step in value):
        raise ValidationError(f"steps must be a non-empty list of stages ({', '.join(STAGES)})",
                              field="steps")
    unknown = [step for step in value if step not in STAGES]
    if unknown:
        raise ValidationError(f"steps: unknown stage(s) {', '.join(map(repr, unknown))}; "
                              f"choose from {', '.join(STAGES)}", field="steps")
    return tuple(stage for stage in STAGES if stage in value)


__all__ = ["TTS_MODES", "TTS_OPTIONS", "UPLOADS", "AssignmentFlags", "RerunFlags",
           "TtsOptions", "check_run_id", "parse_flags"]
