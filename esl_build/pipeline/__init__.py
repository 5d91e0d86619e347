"""``Pipeline``: the stage engine as an object a service, a queue worker or a test embeds.

A pipeline is built once from its parts (``create_pipeline``) and holds no "current" state:
each call resolves its own ``Settings`` from the secrets provider, builds its own ``Project``
(the same object a doit run uses) and runs the same engine (``esl_build.stages``), so the
CLI, ``doit`` and the API can never disagree about what is stale. Two pipelines on two
lessons repositories, or many concurrent calls of one, share nothing but what was injected.

::

    pipeline = create_pipeline(cwd="/srv/lessons", logger=my_logger, metrics=my_metrics)
    result = pipeline.new_assignment({"md": "lessons/unit1.md"}, run_id=job.id)
    result.page_url, result.audio.url, result.steps          # what ran, what it cost
    pipeline.new_assignment({"md": "unit1", "dry_run": True})  # what would run; writes nothing
    pipeline.rerun_assignment({"md": "unit1", "steps": ["upload", "add-audio"]})
    pipeline.get_assignment_status("unit1").up_to_date

Failures raise ``ValidationError``, ``ConfigurationError``, ``InfrastructureError`` or
``ManifestError`` (``esl_build.errors``), naming the lesson and stage and saying whether a
retry can help. For asyncio services, the ``*_async`` methods run the call in a worker
thread (``asyncio.to_thread``), so the event loop never blocks on a stage.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from esl_build import stages
from esl_build.config import Config, load_config
from esl_build.errors import (
    ConfigInvalid,
    ConfigurationError,
    EslBuildError,
    InfrastructureError,
    LeaseHeld,
    LessonInvalid,
    ManifestError,
    PipelineError,
    ServiceError,
    StateError,
    ValidationError,
)
from esl_build.observability import Event, Logger, Metrics, Observer, noop_logger, noop_metrics
from esl_build.pipeline.flags import (
    TTS_OPTIONS,
    AssignmentFlags,
    RerunFlags,
    check_run_id,
    parse_flags,
)
from esl_build.pipeline.paths import lesson_id_for
from esl_build.pipeline.results import (
    AssignmentResult,
    AssignmentStatus,
    Audio,
    StageState,
    Step,
)
from esl_build.pipeline.secrets import (
    EnvironmentSecrets,
    MappingSecrets,
    SecretsProvider,
    secret_values,
    secrets_from,
)
from esl_build.project import Project
from esl_build.services.protocols import Publisher, Storage, Voice
from esl_build.settings import Settings
from esl_build.stages.base import STAGES, UPSTREAM, Cost, ManifestView, record_of

__all__ = ["AssignmentFlags", "AssignmentResult", "AssignmentStatus", "Audio",
           "Callbacks", "ConfigSource", "EnvironmentSecrets", "MappingSecrets", "Pipeline",
           "RerunFlags", "SecretsProvider", "Services", "StageState", "Step",
           "create_pipeline"]


class ConfigSource(Protocol):
    """Supplies the configuration snapshot (presets, students, voices) for each call."""

    def load(self) -> Config: ...


class Callbacks(Protocol):
    """Progress callbacks of one call: ``on_stage`` receives each ``stage.*`` event."""

    def on_stage(self, event: Event) -> None: ...


@dataclass(frozen=True)
class Services:
    """Services to use instead of the ones the settings select (all optional)."""

    publisher: Publisher | None = None
    voice: Voice | None = None
    storage: Storage | None = None


def create_pipeline(cwd: Path | str | None = None, *, manifest_store: Any = None,
                    config_provider: ConfigSource | Config | None = None,
                    secrets: SecretsProvider | Mapping[str, str] | None = None,
                    logger: Logger | None = None, metrics: Metrics | None = None,
                    services: Services | None = None) -> Pipeline:
    """A pipeline over the lessons repository at ``cwd`` (default: the working directory).

    ``manifest_store``  where manifests live (default: files beside the lessons)
    ``config_provider`` a ``Config`` or an object whose ``load()`` returns one (default: the
                        repository's ``configs/`` folder, read for each call)
    ``secrets``         a provider with ``environ()``, or a mapping (default: the process
                        environment over ``<cwd>/.env``; real variables win)
    ``logger``, ``metrics``  observability sinks (default: ``noop_logger``, ``noop_metrics``)
    ``services``        publisher, voice or storage objects to use instead of the selected ones

    The settings are checked now, so a wrong variable fails here (``ConfigurationError``)."""
    root = Path(cwd or Path.cwd()).resolve()
    if not root.is_dir():
        raise ConfigurationError(f"cwd {str(root)!r} is not a folder", field="cwd")
    pipeline = Pipeline(root, manifest_store=manifest_store, config_provider=config_provider,
                        secrets=secrets_from(secrets, root), logger=logger or noop_logger,
                        metrics=metrics or noop_metrics, services=services or Services())
    pipeline.settings()
    return pipeline


class Pipeline:
    """The lessons repository at ``root`` with its injected parts; see ``create_pipeline``."""

    def __init__(self, root: Path, *, manifest_store: Any, config_provider: Any,
                 secrets: SecretsProvider, logger: Logger, metrics: Metrics,
                 services: Services):
        self.root = root
        self.manifest_store = manifest_store
        self.config_provider = config_provider
        self.secrets = secrets
        self.logger = logger
        self.metrics = metrics
        self.services = services

    def __repr__(self) -> str:
        return f"Pipeline({str(self.root)!r})"

    # -- the three calls ---------------------------------------------------------------------
    def new_assignment(self, flags: Mapping[str, Any] | AssignmentFlags,
                       callbacks: Callbacks | Callable[[Event], None] | None = None,
                       run_id: str | None = None) -> AssignmentResult:
        """Build one lesson: every requested stage that is stale (or forced) runs and is
        recorded, in pipeline order. With ``dry_run`` nothing is written or sent: the result
        says what would run and what it would cost."""
        parsed = parse_flags(AssignmentFlags, flags)
        return self._assignment("newAssignment", parsed, callbacks, run_id)

    def rerun_assignment(self, flags: Mapping[str, Any] | RerunFlags,
                         callbacks: Callbacks | Callable[[Event], None] | None = None,
                         run_id: str | None = None) -> AssignmentResult:
        """Run ``steps`` of one lesson again, whether stale or not, without upstream stages
        (each needs its upstream records: a lesson never built fails with ``ManifestError``)."""
        parsed = parse_flags(RerunFlags, flags)
        return self._assignment("rerunAssignment", parsed, callbacks, run_id)

    def get_assignment_status(self, md: str, run_id: str | None = None) -> AssignmentStatus:
        """What the lesson's manifest records and whether each stage is up to date. Reads
        only; calls no service."""
        if not isinstance(md, str):
            raise ValidationError("md must be a string", field="md")
        parse_flags(AssignmentFlags, {"md": md})
        observer = self._observer(self._run_id(run_id), None, {})
        with observer.job("getAssignmentStatus", None, md=md) as outcome:
            project = self._project(observer, RerunFlags(md=md))
            lesson_id = outcome["lesson"] = self._lesson(project, md, observer.run_id)
            manifest = self._read(project, lesson_id, observer.run_id)
            states: dict[str, StageState] = {}
            for stage in STAGES:
                current = self._guard(partial(stages.status, project, stage, lesson_id,
                                              manifest), lesson_id, stage, observer.run_id)
                record = record_of(manifest, stage) or {}
                states[stage] = StageState(
                    "done" if not current.stale else "stale" if record else "missing",
                    current.reason, record.get("backend"), record.get("finishedAt"),
                    record.get("runId"))
            status = AssignmentStatus(
                lesson=lesson_id, md=project.display_path(lesson_id),
                manifest_path=project.store.location(lesson_id),
                has_manifest=bool(manifest), up_to_date=all(
                    s.state == "done" for s in states.values()),
                stages=states, **_identities(manifest))
            outcome.update(lesson=lesson_id, up_to_date=status.up_to_date)
        return status

    def check_request(self, flags: Mapping[str, Any] | AssignmentFlags) -> str:
        """Check ``new_assignment``'s flags and its ``md`` without running anything: the
        lesson id, or the ``ValidationError`` the call would raise (an HTTP 400)."""
        parsed = parse_flags(AssignmentFlags, flags)
        return lesson_id_for(parsed.md, self.settings())

    async def new_assignment_async(self, flags: Mapping[str, Any] | AssignmentFlags,
                                   callbacks: Any = None,
                                   run_id: str | None = None) -> AssignmentResult:
        """``new_assignment`` in a worker thread, for asyncio services."""
        return await asyncio.to_thread(self.new_assignment, flags, callbacks, run_id)

    async def rerun_assignment_async(self, flags: Mapping[str, Any] | RerunFlags,
                                     callbacks: Any = None,
                                     run_id: str | None = None) -> AssignmentResult:
        """``rerun_assignment`` in a worker thread, for asyncio services."""
        return await asyncio.to_thread(self.rerun_assignment, flags, callbacks, run_id)

    async def get_assignment_status_async(self, md: str,
                                          run_id: str | None = None) -> AssignmentStatus:
        """``get_assignment_status`` in a worker thread, for asyncio services."""
        return await asyncio.to_thread(self.get_assignment_status, md, run_id)

    # -- parts -------------------------------------------------------------------------------
    def settings(self, **flags: Any) -> Settings:
        """The settings of one call, resolved from the secrets provider's variables."""
        try:
            return Settings.resolve(self.root, env=self.secrets.environ(), **flags)
        except ConfigInvalid as error:
            raise ConfigurationError(error.args[0]) from error

    def _observer(self, run_id: str, callbacks: Any, environ: Mapping[str, str] | None
                  ) -> Observer:
        callback = getattr(callbacks, "on_stage", callbacks)
        env = self.secrets.environ() if environ is None else environ
        return Observer(run_id, logger=self.logger, metrics=self.metrics,
                        callback=_only_stage_events(callback) if callback else None,
                        secrets=secret_values(env))

    def _project(self, observer: Observer, flags: AssignmentFlags | RerunFlags) -> Project:
        overrides: dict[str, Any] = {"run_id": observer.run_id}
        if flags.upload in ("local", "s3"):
            overrides["storage"] = flags.upload
        settings = self.settings(**overrides)
        if tts := flags.elevenlabs():  # this call's options, over the deployment's
            settings = settings.with_(elevenlabs=replace(settings.elevenlabs, **tts))
        project = Project(settings, publisher=self.services.publisher,
                          voice=self.services.voice, storage=self.services.storage,
                          config=self._config(settings, flags), observer=observer)
        if self.manifest_store is not None:
            project.store = self.manifest_store
        return project

    def _config(self, settings: Settings, flags: AssignmentFlags | RerunFlags) -> Config:
        provider = self.config_provider
        try:
            if provider is None:
                config = load_config(settings.config_dir, settings.root)
            elif isinstance(provider, Config):
                config = provider
            else:
                config = provider.load()
        except ConfigInvalid as error:
            raise ConfigurationError(error.args[0]) from error
        return _chosen(config, flags)

    def _run_id(self, run_id: str | None) -> str:
        return "r-" + uuid.uuid4().hex[:8] if run_id is None else check_run_id(run_id)

    # -- running -----------------------------------------------------------------------------
    def _assignment(self, operation: str, flags: AssignmentFlags | RerunFlags,
                    callbacks: Any, run_id: str | None) -> AssignmentResult:
        observer = self._observer(self._run_id(run_id), callbacks, None)
        detail = {"md": flags.md, "dry_run": flags.dry_run}
        if isinstance(flags, RerunFlags):
            detail["steps"] = list(flags.steps)
        with observer.job(operation, None, **detail) as outcome:
            started, clock = _now(), time.perf_counter()
            project = self._project(observer, flags)
            lesson_id = outcome["lesson"] = self._lesson(project, flags.md, observer.run_id)
            run = self._plan_only if flags.dry_run else self._run
            steps = run(project, lesson_id, flags)
            manifest = ManifestView(None) if flags.dry_run and not project.store.read(
                lesson_id) else self._read(project, lesson_id, observer.run_id)
            total = sum((Cost(**s.cost) for s in steps), Cost())
            estimate = sum((Cost(**s.estimate) for s in steps if s.estimate), Cost()) \
                if flags.dry_run else None
            result = AssignmentResult(
                run_id=observer.run_id, lesson=lesson_id, md=project.display_path(lesson_id),
                dry_run=flags.dry_run, steps=tuple(steps),
                manifest_path=project.store.location(lesson_id), started_at=started,
                finished_at=_now(), duration_ms=_ms(clock), cost=total.to_json(),
                estimate=estimate.to_json() if estimate else None,
                notes=_notes(flags, project, self.services.voice is not None),
                **_identities(manifest))
            outcome.update(lesson=lesson_id, steps=[f"{s.stage}:{s.state}" for s in steps],
                           cost=result.cost)
        return result

    def _run(self, project: Project, lesson_id: str,
             flags: AssignmentFlags | RerunFlags) -> list[Step]:
        skipped, steps = flags.skipped(), []
        for stage in STAGES:
            clock = time.perf_counter()
            reason = skipped.get(stage)
            if not reason and isinstance(flags, AssignmentFlags):  # rerun: a gap is an error
                reason = self._waiting_on_skipped(project, lesson_id, stage, skipped)
            if reason:
                project.observer.stage(stage, lesson_id).skipped(reason)
                steps.append(Step(stage, "skipped", reason))
                continue
            done = self._guard(partial(stages.run, project, stage, lesson_id,
                                       force=flags.forced(stage)), lesson_id, stage,
                               project.settings.run_id, steps)
            steps.append(Step(stage, "ran" if done.ran else "up-to-date",
                              "" if done.ran else "up to date", _ms(clock),
                              done.cost.to_json()))
        return steps

    def _waiting_on_skipped(self, project: Project, lesson_id: str, stage: str,
                            skipped: dict[str, str]) -> str:
        """Why ``stage`` cannot run when a stage it needs was skipped and has no record."""
        gaps = [up for up in UPSTREAM[stage] if up in skipped]
        if not gaps:
            return ""
        manifest = self._read(project, lesson_id, project.settings.run_id)
        missing = [up for up in gaps if not (record_of(manifest, up) or {}).get("outputs")]
        return f"needs {', '.join(missing)} (skipped, never built)" if missing else ""

    def _plan_only(self, project: Project, lesson_id: str,
                   flags: AssignmentFlags | RerunFlags) -> list[Step]:
        """The dry run: each stage's status and estimate. Reads files, writes none, calls
        no service (plans are pure; durability checks are local by contract)."""
        run_id = project.settings.run_id
        manifest = self._read(project, lesson_id, run_id)
        events = project.observer.stage("validate", lesson_id)
        try:
            self._guard(lambda: project.lesson(lesson_id), lesson_id, "validate", run_id)
        except PipelineError as error:
            events.failure(error)
            raise
        skipped, steps, would = flags.skipped(), [], set()
        for stage in STAGES:
            events = project.observer.stage(stage, lesson_id)
            if stage in skipped:
                events.skipped(skipped[stage], dry_run=True)
                steps.append(Step(stage, "skipped", skipped[stage]))
                continue
            current = self._guard(partial(stages.status, project, stage, lesson_id, manifest),
                                  lesson_id, stage, run_id)
            after = [up for up in UPSTREAM[stage] if up in would]
            if current.stale or flags.forced(stage) or after:
                would.add(stage)
                reason = (current.reason if current.plan is not None and current.stale
                          else f"after {', '.join(after)}" if after
                          else current.reason if current.stale else "forced")
                estimate = stages.estimate(project, current) if current.plan else Cost()
                events.skipped("dry run", dry_run=True, would_run=True, why=reason,
                               estimate=estimate.to_json())
                steps.append(Step(stage, "would-run", reason, estimate=estimate.to_json()))
            else:
                events.skipped("dry run", dry_run=True, would_run=False, why="up to date")
                steps.append(Step(stage, "up-to-date", "up to date", estimate={}))
        return steps

    # -- errors ------------------------------------------------------------------------------
    def _lesson(self, project: Project, md: str, run_id: str) -> str:
        try:
            return lesson_id_for(md, project.settings)
        except PipelineError as error:
            error.run_id = run_id
            raise

    def _read(self, project: Project, lesson_id: str, run_id: str) -> ManifestView:
        view: ManifestView = self._guard(
            lambda: ManifestView(project.store.read(lesson_id)), lesson_id, None, run_id)
        return view

    @staticmethod
    def _guard(call: Callable[[], Any], lesson_id: str, stage: str | None, run_id: str,
               steps: list[Step] | None = None) -> Any:
        """``call()``, with our errors (and the OS's) raised as the typed pipeline errors."""
        try:
            return call()
        except PipelineError:
            raise
        except EslBuildError as error:
            typed = typed_error(error, lesson_id, stage, run_id)
            typed.result = tuple(steps or ())
            raise typed from error
        except OSError as error:
            raise InfrastructureError(f"{error.strerror or error}", lesson=lesson_id,
                                      stage=stage, run_id=run_id, retryable=True,
                                      result=tuple(steps or ())) from error


def typed_error(error: EslBuildError, lesson_id: str | None, stage: str | None,
                run_id: str | None) -> PipelineError:
    """The pipeline error an engine error stands for."""
    kind: type[PipelineError]
    retryable: bool | None = None
    if isinstance(error, LessonInvalid):
        kind = ValidationError
    elif isinstance(error, ConfigInvalid):
        kind = ConfigurationError
    elif isinstance(error, ServiceError):
        kind, retryable = InfrastructureError, error.retryable
    elif isinstance(error, StateError):
        kind = ManifestError
        retryable = isinstance(error, LeaseHeld) or type(error).__name__ == "WriteConflict"
    else:  # e.g. a stage run before the stages it needs have records
        kind = ManifestError
    message = str(error)
    prefix = f"{stage}:{lesson_id}: "
    message = message[len(prefix):] if message.startswith(prefix) else message
    return kind(message, lesson=lesson_id, stage=stage, run_id=run_id, retryable=retryable)


def _only_stage_events(callback: Callable[[Event], None]) -> Callable[[Event], None]:
    def on_event(event: Event) -> None:
        if str(event.get("event", "")).startswith("stage."):
            callback(event)
    return on_event


@dataclass(frozen=True)
class _Chosen(Config):
    """A config snapshot with one call's preset, student and voice choices applied."""

    preset: str | None = None
    student: str | None = None

    def preset_for(self, student: str) -> tuple[str | None, dict[str, Any]]:
        if self.preset:
            return self.preset, self.presets[self.preset]
        return super().preset_for(self.student or student)


def _chosen(config: Config, flags: AssignmentFlags | RerunFlags) -> Config:
    preset = getattr(flags, "preset", None)
    student = getattr(flags, "student", None)
    if preset and preset not in config.presets:
        raise ConfigurationError(f"preset {preset!r} is not defined; known presets: "
                                 f"{', '.join(sorted(config.presets)) or '(none)'}",
                                 field="preset")
    voices = {**config.voices, "default": flags.voice_id} if flags.voice_id else config.voices
    students = config.students
    if flags.accent_preference:  # over every profile: the lesson's, or the default one
        students = {name: {**profile, "accentPreference": flags.accent_preference}
                    for name, profile in {"default": {}, **students}.items()}
    if not (preset or student or flags.voice_id or flags.accent_preference):
        return config
    return _Chosen(presets=config.presets, students=students, voices=voices,
                   preset=preset, student=student)


def _notes(flags: AssignmentFlags | RerunFlags, project: Project,
           injected: bool) -> tuple[str, ...]:
    """Which TTS options this call's voice does not read (only ElevenLabs reads them all)."""
    if project.settings.voice == "elevenlabs" and not injected:
        return ()
    unused = [name for name in TTS_OPTIONS if getattr(flags, name) is not None]
    voice = "injected" if injected else project.settings.voice
    return (f"{', '.join(unused)}: not used by the {voice} voice",) if unused else ()


def _identities(manifest: dict[str, Any]) -> dict[str, Any]:
    """Page and audio as the manifest records them."""
    page = (record_of(manifest, "import") or {}).get("outputs", {})
    tts = (record_of(manifest, "tts") or {}).get("outputs", {})
    upload = (record_of(manifest, "upload") or {}).get("outputs", {})
    audio = Audio(path=tts.get("mp3"), url=upload.get("url"), sha256=tts.get("sha256"),
                  voices=dict(tts.get("voices") or {})) if tts or upload else None
    return {"page_id": page.get("pageId"), "page_url": page.get("url"), "audio": audio}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
