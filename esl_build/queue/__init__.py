"""The job queue: Celery workers run pipeline jobs; Redis (or SQS) carries them.

::

    from esl_build.queue import JobQueue

    queue = JobQueue.from_environment()            # ESL_BUILD_QUEUE_URL, … (docs/queue.md)
    job_id = queue.enqueue({"jobId": "5f9", "md": "lessons/unit1.md", "withTts": True})
    queue.job_status(job_id)
    # {"job_id": "5f9", "state": "queued" | "running" | "succeeded" | "failed", "attempts": 1,
    #  "steps": [...], "error": None, "manifest_path": "lessons/unit1.manifest.json",
    #  "created_at": …, "started_at": …, "finished_at": …, "result": {...}}

    esl-build worker --concurrency 2        # or: celery -A esl_build.queue worker

``enqueue`` checks the payload first (``esl_build.queue.payload``): a bad one raises a
``ValidationError`` naming the field and nothing is enqueued. A worker calls
``Pipeline.new_assignment`` with the job id as run id, on the pipeline it builds once per
process over ``ESL_BUILD_ROOT`` (default: its working folder).

Delivery is at least once: a job's message is acknowledged only after the job has ended
(``acks_late``; a worker process that dies mid-job gets its job redelivered), and a worker
takes one job at a time. Redoing a job redoes nothing completed: each stage's record is
written as the stage ends, and the engine runs only stale stages, under the lesson's lease
(two jobs for one lesson serialise; the second finds the work done). Errors whose
``retryable`` is true (an unreachable or throttling service, an OS error, a held lease) are
retried with exponential backoff and jitter, up to ``ESL_BUILD_QUEUE_MAX_ATTEMPTS``
attempts; validation and configuration errors fail the job at once.

This package imports Celery (``pip install 'esl-build[queue]'``); nothing else in
esl-build does, except ``esl-build worker`` and the HTTP service in queue mode.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import socket
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esl_build.errors import InfrastructureError, PipelineError, ValidationError
from esl_build.observability import Event, JsonLinesFile, JsonLinesLogger, Logger, secret_values
from esl_build.pipeline.flags import check_run_id
from esl_build.queue.broker import broker_settings
from esl_build.queue.payload import camel, parse_payload, wire_payload
from esl_build.queue.status import STATES, TERMINAL, JobStore, now
from esl_build.settings import QueueSettings, Settings

if TYPE_CHECKING:
    from celery import Celery, Task

    from esl_build.pipeline import Pipeline

TASK = "esl_build.run_job"
POOLS = ("prefork", "threads", "solo")

__all__ = ["POOLS", "STATES", "TASK", "JobQueue", "camel", "enqueue", "job_status",
           "parse_payload"]

_log = logging.getLogger("esl_build.queue")


class JobQueue:
    """A Celery app for pipeline jobs and the Redis that keeps their status.

    ``settings`` come from ``Settings.resolve(...).queue``; ``root`` is the lessons
    repository a worker builds (default: ``settings.root``, else the working folder)."""

    def __init__(self, settings: QueueSettings, *, root: Path | str | None = None,
                 region: str | None = None, lease_timeout: float = 600.0):
        self.settings = settings
        self.root = Path(root or settings.root or Path.cwd()).resolve()
        self.celery = _celery(self, broker_settings(settings, region=region,
                                                    lease_timeout=lease_timeout))
        self._store: JobStore | None = None
        self._pipeline: tuple[int, Pipeline] | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None, *,
                         root: Path | str | None = None) -> JobQueue:
        """The queue the ``ESL_BUILD_QUEUE_*`` variables describe."""
        return cls.from_settings(Settings.resolve(env=env), root=root)

    @classmethod
    def from_settings(cls, settings: Settings, *, root: Path | str | None = None) -> JobQueue:
        """The queue of ``settings.queue``, with the SQS region (``AWS_REGION``) and the
        longest lease wait (``ESL_PIPELINE_LEASE_TIMEOUT``; see ``esl_build.queue.broker``)."""
        return cls(settings.queue, root=root, region=settings.s3.region,
                   lease_timeout=settings.manifests.lease_timeout)

    def __repr__(self) -> str:
        return f"JobQueue({self.settings.name!r}, root={str(self.root)!r})"

    @property
    def store(self) -> JobStore:
        """Where job status lives (``ESL_BUILD_QUEUE_STATUS_URL``)."""
        if self._store is None:
            url = self.settings.status_url
            if url is None:
                from esl_build.errors import ConfigurationError
                raise ConfigurationError("ESL_BUILD_QUEUE_STATUS_URL is required when the "
                                         "broker is not Redis: job status is kept in Redis",
                                         field="ESL_BUILD_QUEUE_STATUS_URL")
            self._store = JobStore(url.reveal(), self.settings.name)
        return self._store

    # -- producers ---------------------------------------------------------------------------
    def enqueue(self, payload: Mapping[str, Any], *, pipeline: Pipeline | None = None) -> str:
        """Check ``payload`` (the guide's contract, camelCase) and queue it; the job id.

        With ``pipeline``, ``md`` is checked too (it must name a lesson of that repository).
        A ``ValidationError`` (naming the field; ``field == "jobId"`` when the id is taken)
        means nothing was queued; ``InfrastructureError``: the broker or the status store
        cannot be reached."""
        job_id, flags = parse_payload(payload)
        lesson = pipeline.check_request(flags) if pipeline is not None else None
        created = self.store.create(job_id, {
            "state": "queued", "md": flags.md, "lesson": lesson, "dry_run": flags.dry_run,
            "created_at": now(), "steps": [], "error": None})
        if not created:
            raise ValidationError(f"jobId {job_id!r} is taken: a job with this id exists",
                                  field="jobId")
        try:
            self.celery.send_task(TASK, args=[wire_payload(job_id, flags)], task_id=job_id,
                                  queue=self.settings.name)
        except Exception as error:  # kombu's connection errors vary by transport
            self.store.delete(job_id)
            raise InfrastructureError(f"queue: cannot send the job to the broker "
                                      f"({type(error).__name__})", retryable=True) from None
        return job_id

    def job_status(self, job_id: str) -> dict[str, Any] | None:
        """The job's state (``queued``, ``running``, ``succeeded``, ``failed``), ``attempts``,
        ``steps``, ``error`` (the message, naming the lesson file), ``error_detail`` (type,
        stage, field, retryable), timestamps, ``manifest_path`` and, once succeeded,
        ``result`` (``AssignmentResult.to_json()``); None for an unknown job."""
        try:
            check_run_id(job_id)
        except ValidationError:
            raise ValidationError("jobId must be 1-128 letters, digits or ._:@+=-",
                                  field="jobId") from None
        found = self.store.get(job_id)
        if found is None:
            return None
        status: dict[str, Any] = {
            "job_id": job_id, "state": "queued", "md": None, "lesson": None, "dry_run": False,
            "attempts": 0, "steps": [], "error": None, "error_detail": None,
            "manifest_path": None, "created_at": None, "started_at": None,
            "finished_at": None, "updated_at": None, "next_attempt_at": None, "result": None,
            "worker": None}
        status.update(found)
        return status

    # -- workers -----------------------------------------------------------------------------
    def pipeline(self) -> Pipeline:
        """This process's pipeline over ``root`` (built on first use, again after a fork)."""
        if self._pipeline is None or self._pipeline[0] != os.getpid():
            from esl_build.pipeline import create_pipeline

            settings = Settings.resolve(self.root)
            logger: Logger = (JsonLinesFile(settings.event_log) if settings.event_log
                              else JsonLinesLogger("esl_build.events"))
            self._pipeline = (os.getpid(), create_pipeline(self.root, logger=logger))
        return self._pipeline[1]

    def run_worker(self, *, concurrency: int = 1, pool: str = "prefork",
                   loglevel: str = "INFO") -> None:
        """Consume jobs until stopped (``esl-build worker``). ``pool``: prefork (a process
        per concurrent job), threads, or solo (the worker process itself)."""
        self.pipeline()  # a wrong setting stops the worker now, not at its first job
        self.celery.worker_main([
            "worker", f"--concurrency={concurrency}", f"--pool={pool}",
            f"--loglevel={loglevel}", f"--hostname=esl-build.{os.getpid()}@%h",
            f"--queues={self.settings.name}", "--without-gossip", "--without-mingle"])

    def run_job(self, task: Task[Any, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
        """One delivery of one job: the Celery task's body."""
        job_id = str(task.request.id)
        found = self.store.get(job_id)
        if found and found.get("state") in TERMINAL:
            # a redelivered copy of a job that has ended: nothing left to do
            self._event("queue.job.duplicate", job_id, state=found["state"])
            return {"state": found["state"]}
        attempt = self.store.start(job_id, worker=f"{socket.gethostname()}:{os.getpid()}")
        self._event("queue.job.start", job_id, attempt=attempt)
        try:
            _, flags = parse_payload({**payload, "jobId": job_id})
            result = self.pipeline().new_assignment(flags, run_id=job_id)
        except PipelineError as error:
            return self._failed(task, job_id, attempt, payload, error)
        except Exception as error:  # a bug: the worker log has the traceback
            _log.exception("job %s: internal error", job_id)
            self.store.update(job_id, state="failed", finished_at=now(),
                              error=f"internal error ({type(error).__name__}); see the "
                              "worker's log", error_detail={"type": "InternalError"})
            return {"state": "failed"}
        data = result.to_json()
        self.store.update(job_id, state="succeeded", finished_at=now(), lesson=result.lesson,
                          steps=data["steps"], manifest_path=result.manifest_path,
                          error=None, error_detail=None, result=data)
        self._event("queue.job.success", job_id, attempt=attempt)
        return {"state": "succeeded"}

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``: exponential, capped, with jitter
        (between half and all of the capped delay, so retries of many jobs spread out)."""
        cap = min(self.settings.backoff_max, self.settings.backoff * 2.0 ** (attempt - 1))
        return float(cap * random.uniform(0.5, 1.0))

    def _failed(self, task: Task[Any, Any], job_id: str, attempt: int,
                payload: Mapping[str, Any], error: PipelineError) -> dict[str, Any]:
        steps = [dataclasses.asdict(step) for step in error.result or ()] \
            if isinstance(error.result, tuple) else []
        fields: dict[str, Any] = {"error": self._message(error, payload),
                                  "error_detail": error.to_json(), "steps": steps}
        if error.lesson:
            fields["lesson"] = error.lesson
        if error.retryable and attempt < self.settings.max_attempts:
            delay = self.backoff(attempt)
            at = datetime.now(UTC) + timedelta(seconds=delay)
            self.store.update(job_id, state="queued", **fields,
                              next_attempt_at=at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
            self._event("queue.job.retry", job_id, attempt=attempt, delay_s=round(delay, 3),
                        error=fields["error"])
            raise task.retry(countdown=delay)
        self.store.update(job_id, state="failed", finished_at=now(), **fields)
        self._event("queue.job.failure", job_id, attempt=attempt, error=fields["error"])
        return {"state": "failed"}

    def _message(self, error: PipelineError, payload: Mapping[str, Any]) -> str:
        """The error's message, naming the lesson file, with every known secret masked."""
        settings = self.pipeline().settings()
        text = str(error)
        where = (settings.relative(settings.lessons_dir / f"{error.lesson}.md")
                 if error.lesson else str(payload.get("md", "")))
        if where and where not in text:
            text = f"{where}: {text}"
        for secret in secret_values(settings):
            text = text.replace(secret, "***")
        return text

    def _event(self, name: str, job_id: str, **detail: Any) -> None:
        event: Event = {"event": name, "level": "warn" if "retry" in name else "info",
                        "run_id": job_id, "time": now(), **detail}
        self.pipeline().logger.log(event)


def _celery(queue: JobQueue, broker: dict[str, Any]) -> Celery:
    """The Celery app of ``queue``, with the one task that runs jobs."""
    from celery import Celery

    settings = queue.settings
    app = Celery("esl_build", set_as_current=False)
    app.conf.update(
        **broker,
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.name,
        task_acks_late=True,                   # acknowledged when the job has ended …
        task_reject_on_worker_lost=True,       # … and redelivered if its process died
        task_acks_on_failure_or_timeout=True,  # a failed job has its status: done with it
        worker_prefetch_multiplier=1,          # a worker holds only the job it runs
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_ignore_result=True,               # status lives in the job store
        result_backend=None,
        task_serializer="json", accept_content=["json"],
        worker_hijack_root_logger=True,
    )

    @app.task(bind=True, name=TASK, max_retries=None)  # type: ignore[untyped-decorator]
    def run_job(task: Task[Any, Any], payload: dict[str, Any]) -> dict[str, Any]:
        return queue.run_job(task, payload)

    return app


_default: JobQueue | None = None


def _queue() -> JobQueue:
    global _default
    if _default is None:
        _default = JobQueue.from_environment()
    return _default


def enqueue(payload: Mapping[str, Any], *, queue: JobQueue | None = None) -> str:
    """``JobQueue.enqueue`` on ``queue`` (default: the queue the environment describes)."""
    return (queue or _queue()).enqueue(payload)


def job_status(job_id: str, *, queue: JobQueue | None = None) -> dict[str, Any] | None:
    """``JobQueue.job_status`` on ``queue`` (default: the queue the environment describes)."""
    return (queue or _queue()).job_status(job_id)


def __getattr__(name: str) -> Any:
    """``app``: the environment's Celery app, for ``celery -A esl_build.queue worker``."""
    if name in ("app", "celery"):
        return _queue().celery
    raise AttributeError(name)

