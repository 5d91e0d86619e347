"""Structured events, metrics and (optional) OpenTelemetry spans for pipelines and doit runs.

Two small protocols are all a caller implements:

``Logger.log(event)``                       one structured event (a plain JSON-able dict)
``Metrics.timing(name, ms, tags)`` and ``Metrics.increment(name, value, tags)``

Every stage run by the engine (``esl_build.stages.run``), whether a pipeline job or a doit task
started it, emits ``stage.<name>.start`` then ``stage.<name>.success`` or ``.failure``; a stage
found up to date (or not requested) emits ``stage.<name>.skipped``. Each event carries::

    {"event": "stage.tts.success", "level": "info", "run_id": "job-42", "lesson": "unit1",
     "stage": "tts", "duration_ms": 812.4, "cost": {"characters": 31, "requests": 0},
     "detail": {...}, "time": "2026-12-01T21:00:00.123Z"}

Metric names follow the integration guide: ``esl.pipeline.stage.duration_ms`` (tags
``stage``, ``status``), ``esl.pipeline.stage.success|skipped|failure`` (tag ``stage``),
``esl.pipeline.new_assignment.duration_ms`` (tag ``result``),
``esl.pipeline.new_assignment.success|failure``, and the same for ``rerun_assignment`` and
``get_assignment_status``; ``esl.pipeline.tts.characters`` counts characters synthesised.

Adapters: ``noop_logger`` / ``noop_metrics``; ``JsonLinesLogger`` (stdlib ``logging``, one
JSON object per line); ``JsonLinesFile`` (append to a file, used by ``ESL_BUILD_EVENT_LOG``);
``PrometheusMetrics`` (``prometheus-client``, imported only when built). When
``opentelemetry-api`` is installed, each job and each stage is also a span; otherwise
nothing happens. Known secret values are replaced by ``***`` in every event and span.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

Event = dict[str, Any]
Tags = Mapping[str, str]

__all__ = ["Event", "JsonLinesFile", "JsonLinesLogger", "Logger", "Metrics", "Observer",
           "PrometheusMetrics", "StageEvents", "noop_logger", "noop_metrics"]


class Logger(Protocol):
    """Receives structured events (``event["event"]`` is the name, e.g. ``stage.tts.start``)."""

    def log(self, event: Event) -> None: ...


class Metrics(Protocol):
    """Receives timings (milliseconds) and counters, named as in the integration guide."""

    def timing(self, name: str, ms: float, tags: Tags | None = None) -> None: ...

    def increment(self, name: str, value: float = 1, tags: Tags | None = None) -> None: ...


class _NoopLogger:
    """A logger that drops every event."""

    def log(self, event: Event) -> None:
        return None

    def __repr__(self) -> str:
        return "noop_logger"


class _NoopMetrics:
    """A metrics sink that drops everything."""

    def timing(self, name: str, ms: float, tags: Tags | None = None) -> None:
        return None

    def increment(self, name: str, value: float = 1, tags: Tags | None = None) -> None:
        return None

    def __repr__(self) -> str:
        return "noop_metrics"


noop_logger: Logger = _NoopLogger()
noop_metrics: Metrics = _NoopMetrics()


class JsonLinesLogger:
    """Events to a stdlib ``logging.Logger``, one JSON object per record (the message).

    The record's level follows the event's ``level``; configure handlers as usual."""

    _LEVELS: ClassVar[dict[str, int]] = {
        "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
        "warning": logging.WARNING, "error": logging.ERROR}

    def __init__(self, logger: logging.Logger | str = "esl_build"):
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger

    def log(self, event: Event) -> None:
        level = self._LEVELS.get(str(event.get("level", "info")), logging.INFO)
        if self.logger.isEnabledFor(level):
            self.logger.log(level, "%s", _dumps(event))


class JsonLinesFile:
    """Events appended to a file, one JSON object per line (safe across threads)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()

    def log(self, event: Event) -> None:
        line = _dumps(event) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(line)


class PrometheusMetrics:
    """Timings and counters as Prometheus histograms and counters in ``registry``.

    ``esl.pipeline.stage.duration_ms`` becomes the histogram ``esl_pipeline_stage_duration_ms``
    and ``esl.pipeline.stage.success`` the counter ``esl_pipeline_stage_success_total``; tags
    become labels (a metric keeps the label names of its first use)."""

    BUCKETS_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
                  300000)

    def __init__(self, registry: Any = None):
        import prometheus_client

        self._client = prometheus_client
        self.registry = registry if registry is not None else prometheus_client.CollectorRegistry()
        self._metrics: dict[str, tuple[Any, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def timing(self, name: str, ms: float, tags: Tags | None = None) -> None:
        self._child("histogram", name, tags).observe(ms)

    def increment(self, name: str, value: float = 1, tags: Tags | None = None) -> None:
        self._child("counter", name, tags).inc(value)

    def render(self) -> bytes:
        """The registry in Prometheus' text exposition format."""
        data: bytes = self._client.generate_latest(self.registry)
        return data

    def _child(self, kind: str, name: str, tags: Tags | None) -> Any:
        tags = dict(tags or {})
        key = f"{kind}:{name}"
        with self._lock:
            found = self._metrics.get(key)
            if found is None:
                labels = tuple(sorted(tags))
                metric_name = "".join(c if c.isalnum() or c in "_:" else "_" for c in name)
                metric: Any
                if kind == "histogram":
                    metric = self._client.Histogram(metric_name, f"{name} (milliseconds)",
                                                    labels, registry=self.registry,
                                                    buckets=self.BUCKETS_MS)
                else:
                    metric = self._client.Counter(metric_name, name, labels,
                                                  registry=self.registry)
                found = self._metrics[key] = (metric, labels)
        metric, labels = found
        return metric.labels(**{label: str(tags.get(label, "")) for label in labels}) \
            if labels else metric


def _dumps(event: Event) -> str:
    return json.dumps(event, ensure_ascii=False, sort_keys=True, default=str)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _tracer() -> Any:
    """OpenTelemetry's tracer for esl-build, or None when ``opentelemetry-api`` is absent."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace.get_tracer("esl_build")


class Observer:
    """Where one run's events go: a logger, metrics, an optional per-event callback, and
    spans. Built per pipeline job (or per doit run) with that run's id.

    ``secrets`` are values (tokens, keys) replaced by ``***`` wherever they appear in an
    event or span attribute."""

    def __init__(self, run_id: str, *, logger: Logger | None = None,
                 metrics: Metrics | None = None,
                 callback: Callable[[Event], None] | None = None,
                 secrets: Iterable[str] = ()):
        self.run_id = run_id
        self.logger = logger or noop_logger
        self.metrics = metrics or noop_metrics
        self.callback = callback
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))
        self._tracer_found = False  # looked up on the first span: a no-op run imports nothing
        self._tracer_value: Any = None
        self._job_context: Any = None

    @property
    def _tracer(self) -> Any:
        if not self._tracer_found:
            self._tracer_value, self._tracer_found = _tracer(), True
        return self._tracer_value

    # -- events ------------------------------------------------------------------------------
    def emit(self, name: str, *, level: str = "info", **fields: Any) -> None:
        """Send one event (with this run's id) to the logger and the callback; with neither
        listening, nothing is built (a no-op build of 1,000 lessons skips 5,000 events)."""
        if self.logger is noop_logger and self.callback is None:
            return
        event: Event = {"event": name, "level": level, "run_id": self.run_id,
                        "time": _now(), **{k: v for k, v in fields.items() if v is not None}}
        event = self.redact(event)
        self.logger.log(event)
        if self.callback is not None:
            self.callback(event)

    def redact(self, value: Any) -> Any:
        """``value`` with every known secret replaced by ``***`` (dicts and lists too)."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, "***")
            return value
        if isinstance(value, dict):
            return {k: self.redact(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact(v) for v in value]
        return value

    def stage(self, stage: str, lesson_id: str) -> StageEvents:
        """The events of one stage of one lesson (nothing is sent until one is called)."""
        return StageEvents(self, stage, lesson_id)

    # -- jobs --------------------------------------------------------------------------------
    @contextmanager
    def job(self, operation: str, lesson_id: str | None, **detail: Any) -> Iterator[Event]:
        """One pipeline call (``new_assignment`` …): start/success/failure events, the
        ``esl.pipeline.<operation>.*`` metrics and a span that parents the stages' spans.

        The caller may add to the yielded dict: it becomes the success event's detail."""
        started = time.perf_counter()
        name = "".join("_" + c.lower() if c.isupper() else c for c in operation)
        span = self._start_span(f"esl.{name}", lesson_id, None)
        previous, self._job_context = self._job_context, self._context_of(span)
        self.emit(f"pipeline.{operation}.start", stage="pipeline", lesson=lesson_id,
                  detail=detail or None)
        outcome: Event = {}
        try:
            yield outcome
        except BaseException as error:
            ms = _ms(started)
            self.emit(f"pipeline.{operation}.failure", level="error", stage="pipeline",
                      lesson=outcome.get("lesson", lesson_id), duration_ms=ms,
                      detail=_error_detail(error))
            self.metrics.timing(f"esl.pipeline.{name}.duration_ms", ms, {"result": "failure"})
            self.metrics.increment(f"esl.pipeline.{name}.failure", 1, {})
            self._end_span(span, error)
            raise
        finally:
            self._job_context = previous
        ms = _ms(started)
        self.emit(f"pipeline.{operation}.success", stage="pipeline",
                  lesson=outcome.pop("lesson", lesson_id), duration_ms=ms,
                  detail=outcome or None)
        self.metrics.timing(f"esl.pipeline.{name}.duration_ms", ms, {"result": "success"})
        self.metrics.increment(f"esl.pipeline.{name}.success", 1, {})
        self._end_span(span, None)

    # -- spans -------------------------------------------------------------------------------
    def _start_span(self, name: str, lesson_id: str | None, stage: str | None) -> Any:
        if self._tracer is None:
            return None
        attributes = {"esl.run_id": self.run_id, "esl.lesson": lesson_id or "",
                      **({"esl.stage": stage} if stage else {})}
        return self._tracer.start_span(name, context=self._job_context,
                                       attributes=self.redact(attributes))

    @staticmethod
    def _context_of(span: Any) -> Any:
        if span is None:
            return None
        from opentelemetry import trace
        return trace.set_span_in_context(span)

    def _end_span(self, span: Any, error: BaseException | None,
                  attributes: Mapping[str, Any] | None = None) -> None:
        if span is None:
            return
        for key, value in (attributes or {}).items():
            span.set_attribute(key, self.redact(value))
        if error is not None:
            from opentelemetry.trace import Status, StatusCode
            span.set_attribute("esl.error", type(error).__name__)
            span.set_status(Status(StatusCode.ERROR, self.redact(str(error))[:500]))
        span.end()


class StageEvents:
    """The events of one stage of one lesson, as the engine reports them."""

    def __init__(self, observer: Observer, stage: str, lesson_id: str):
        self.observer, self.stage, self.lesson_id = observer, stage, lesson_id
        self._started = time.perf_counter()
        self._span: Any = None
        self._seen_start = False

    def start(self, **detail: Any) -> None:
        self._started = time.perf_counter()
        self._seen_start = True
        self._span = self.observer._start_span(f"esl.stage.{self.stage}", self.lesson_id,
                                                self.stage)
        self.observer.emit(f"stage.{self.stage}.start", stage=self.stage, lesson=self.lesson_id,
                           detail=detail or None)

    def skipped(self, reason: str, **detail: Any) -> None:
        self.observer.emit(f"stage.{self.stage}.skipped", stage=self.stage,
                           lesson=self.lesson_id, detail={"reason": reason, **detail})
        self.observer.metrics.increment("esl.pipeline.stage.skipped", 1, {"stage": self.stage})

    def success(self, cost: Mapping[str, int], detail: Mapping[str, Any] | None = None) -> None:
        ms = _ms(self._started)
        self.observer.emit(f"stage.{self.stage}.success", stage=self.stage,
                           lesson=self.lesson_id, duration_ms=ms, cost=dict(cost),
                           detail=dict(detail) if detail else None)
        metrics = self.observer.metrics
        metrics.timing("esl.pipeline.stage.duration_ms", ms,
                       {"stage": self.stage, "status": "success"})
        metrics.increment("esl.pipeline.stage.success", 1, {"stage": self.stage})
        if cost.get("characters"):
            metrics.increment("esl.pipeline.tts.characters", cost["characters"],
                              {"stage": self.stage})
        self.observer._end_span(self._span, None, {f"esl.cost.{k}": v for k, v in cost.items()})

    def failure(self, error: BaseException) -> None:
        ms = _ms(self._started)
        self.observer.emit(f"stage.{self.stage}.failure", level="error", stage=self.stage,
                           lesson=self.lesson_id, duration_ms=ms, detail=_error_detail(error))
        metrics = self.observer.metrics
        metrics.timing("esl.pipeline.stage.duration_ms", ms,
                       {"stage": self.stage, "status": "failure"})
        metrics.increment("esl.pipeline.stage.failure", 1, {"stage": self.stage})
        span = self._span or self.observer._start_span(f"esl.stage.{self.stage}",
                                                       self.lesson_id, self.stage)
        self.observer._end_span(span, error)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _error_detail(error: BaseException) -> dict[str, Any]:
    detail: dict[str, Any] = {"error": type(error).__name__, "message": str(error)}
    retryable = getattr(error, "retryable", None)
    if retryable is not None:
        detail["retryable"] = bool(retryable)
    return detail


def observer_for(settings: Any) -> Observer:
    """The observer of a doit or CLI run: events to ``ESL_BUILD_EVENT_LOG`` when it is set."""
    path = getattr(settings, "event_log", None)
    return Observer(settings.run_id, logger=JsonLinesFile(path) if path else None,
                    secrets=secret_values(settings))


def secret_values(value: Any) -> list[str]:
    """The revealed value of every ``Secret`` inside ``value`` (a Settings, nested dataclasses,
    dicts): what an observer must never let out."""
    from dataclasses import fields, is_dataclass

    from esl_build.settings import Secret

    if isinstance(value, Secret):
        return [value.reveal()]
    if is_dataclass(value) and not isinstance(value, type):
        return [s for f in fields(value) for s in secret_values(getattr(value, f.name))]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in secret_values(v)]
    return []
