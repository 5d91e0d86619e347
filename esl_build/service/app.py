"""The FastAPI application of the HTTP worker (see ``esl_build.service``)."""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import re
import threading
import typing
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException

from esl_build.errors import PipelineError, ValidationError
from esl_build.observability import Metrics, PrometheusMetrics
from esl_build.pipeline import AssignmentFlags, Pipeline
from esl_build.pipeline.flags import RUN_ID, TTS_OPTIONS
from esl_build.queue.payload import camel
from esl_build.settings import Secret

KEEP_JOBS = 1000  # finished jobs remembered for GET /jobs/{id}


def _request_model() -> type[BaseModel]:
    """The body of ``POST /jobs``: the pipeline's flags in the guide's camelCase, plus
    ``jobId`` (snake_case names are accepted too)."""
    hints = typing.get_type_hints(AssignmentFlags)
    fields: dict[str, Any] = {"job_id": (Annotated[str | None, Field(
        None, alias="jobId", pattern=f"^{RUN_ID.pattern}$",
        description="your id for the job; becomes the run id in events and manifests")])}
    specs = dataclasses.fields(AssignmentFlags)  # the lesson's flags first, then TTS options
    for spec in sorted(specs, key=lambda spec: spec.name in TTS_OPTIONS):
        default = ... if spec.default is dataclasses.MISSING else spec.default
        kind = hints[spec.name]
        if spec.name == "md":
            kind = Annotated[str, Field(min_length=1, max_length=1024)]
        fields[spec.name] = (kind | None if default is not ... else kind,
                             Field(default, alias=camel(spec.name)))
    config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)
    model: type[BaseModel] = create_model("JobRequest", __config__=config, **fields)
    return model


JobRequest = _request_model()
_bearer = HTTPBearer(auto_error=False, description="the worker's ESL_BUILD_SERVICE_TOKEN")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer."""

    error: str
    message: str
    field: str | None = None


class JobView(BaseModel):
    """A job as ``POST /jobs`` and ``GET /jobs/{id}`` show it."""

    jobId: str
    state: str
    md: str
    dryRun: bool
    createdAt: str
    startedAt: str | None = None
    finishedAt: str | None = None
    steps: list[dict[str, Any]] = []
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    attempts: int | None = None
    manifestPath: str | None = None


def _queued_view(status: dict[str, Any]) -> dict[str, Any]:
    """A queue job's status (``JobQueue.job_status``) as the HTTP worker shows jobs."""
    error = status.get("error_detail")
    if error is not None:
        error = {**error, "message": status.get("error")}
    return {"jobId": status["job_id"], "state": status["state"], "md": status.get("md") or "",
            "dryRun": bool(status.get("dry_run")), "createdAt": status.get("created_at") or "",
            "startedAt": status.get("started_at"), "finishedAt": status.get("finished_at"),
            "steps": status.get("steps") or [], "result": status.get("result"),
            "error": error, "attempts": status.get("attempts"),
            "manifestPath": status.get("manifest_path")}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class QueueFull(Exception):
    """More live jobs are waiting than the worker accepts."""


class JobTable:
    """Jobs of one worker: live ones run in a bounded thread pool; the last ``keep``
    finished ones are remembered."""

    def __init__(self, pipeline: Pipeline, *, max_running: int, max_waiting: int | None = None,
                 keep: int = KEEP_JOBS):
        self.pipeline = pipeline
        self.max_running = max_running
        self.max_waiting = max_waiting if max_waiting is not None else 8 * max_running
        self.keep = keep
        self._pool = ThreadPoolExecutor(max_workers=max_running,
                                        thread_name_prefix="esl-build-job")
        self._jobs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._waiting = 0

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return dict(job) if job else None

    def create(self, job_id: str, flags: dict[str, Any]) -> dict[str, Any] | None:
        """A new queued job, or None when the id is taken."""
        with self._lock:
            if job_id in self._jobs:
                return None
            job = {"jobId": job_id, "state": "queued", "md": flags["md"],
                   "dryRun": bool(flags.get("dry_run")), "createdAt": _now(), "steps": []}
            self._jobs[job_id] = job
            while len(self._jobs) > self.keep:
                self._jobs.popitem(last=False)
            return dict(job)

    def run(self, job_id: str, flags: dict[str, Any]) -> dict[str, Any]:
        """Run the job in this thread; its final view."""
        self._set(job_id, state="running", startedAt=_now())
        try:
            result = self.pipeline.new_assignment(flags, run_id=job_id)
        except PipelineError as error:
            steps = [dataclasses.asdict(s) for s in error.result or ()] \
                if isinstance(error.result, tuple) else []
            return self._set(job_id, state="failed", finishedAt=_now(), error=error.to_json(),
                             steps=steps)
        data = result.to_json()
        return self._set(job_id, state="succeeded", finishedAt=_now(), result=data,
                         steps=data["steps"])

    def submit(self, job_id: str, flags: dict[str, Any]) -> None:
        """Queue the job for the pool (``QueueFull`` when too many wait)."""
        with self._lock:
            if self._waiting >= self.max_waiting + self.max_running:
                self._jobs.pop(job_id, None)
                raise QueueFull
            self._waiting += 1

        def work() -> None:
            try:
                self.run(job_id, flags)
            finally:
                with self._lock:
                    self._waiting -= 1

        self._pool.submit(work)

    def _set(self, job_id: str, **changes: Any) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.setdefault(job_id, {"jobId": job_id})
            job.update(changes)
            return dict(job)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


def _error(status: int, error: str, message: str, field: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, "field": field},
                        status_code=status, headers=headers)


def _first_problem(error: RequestValidationError) -> tuple[str, str | None]:
    """A one-line message naming the field of the first problem pydantic found."""
    problems = error.errors()
    if not problems:
        return "the request body is invalid", None
    problem = problems[0]
    where = [str(part) for part in problem.get("loc", ()) if part != "body"]
    field = ".".join(where) or None
    kind = problem.get("type", "")
    if kind == "json_invalid":
        return "the body is not valid JSON", None
    if kind == "missing":
        return f"{field} is required", field
    if kind == "extra_forbidden":
        return f"unknown field {field!r}", field
    if kind in ("model_type", "dict_type") or field is None:
        return "the body must be a JSON object with at least \"md\"", field
    message = re.sub(r"\s+", " ", str(problem.get("msg", "is invalid")))
    return f"{field}: {message}", field


def create_app(pipeline: Pipeline, *, live: bool = False, token: Secret | str | None = None,
               max_jobs: int = 2, max_waiting: int | None = None,
               metrics: Metrics | None = None, queue: Any = None) -> FastAPI:
    """The worker's FastAPI app over ``pipeline``.

    ``live``: run jobs for real (default: every job is a dry run). ``token``: require
    ``Authorization: Bearer <token>`` on ``/jobs`` and ``/status``. ``max_jobs``: live jobs at
    once; ``max_waiting``: live jobs queued behind them before a 503 (default 8 × max_jobs).
    ``metrics``: a ``PrometheusMetrics`` to serve on ``/metrics`` (default: the pipeline's
    when it is one, else a new registry with the worker's own counters). ``queue``: a
    ``JobQueue`` (``esl_build.queue``): live jobs are enqueued for its workers instead of
    run here, and ``GET /jobs/{id}`` reads their status from it."""
    secret = token if isinstance(token, Secret) or token is None else Secret(token)
    prometheus = metrics if isinstance(metrics, PrometheusMetrics) else (
        pipeline.metrics if isinstance(pipeline.metrics, PrometheusMetrics)
        else PrometheusMetrics())
    jobs = JobTable(pipeline, max_running=max_jobs, max_waiting=max_waiting)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()  # let running jobs finish (and record their stages)

    app = FastAPI(title="esl-build worker", version="1", lifespan=lifespan,
                  description="Publish ESL lessons: dry-run or live jobs over one lessons "
                  "repository.", responses={
                      400: {"model": ErrorBody, "description": "bad request"}})
    app.state.jobs = jobs
    app.state.pipeline = pipeline

    def token_ok(given: str) -> bool:
        return secret is None or hmac.compare_digest(given.encode(), secret.reveal().encode())

    def stranger(request: Request) -> JSONResponse | None:
        """The 401 for a request to a guarded path without the token. A body FastAPI
        cannot parse is refused before any dependency runs: without this, a stranger would
        learn what a valid body looks like."""
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        guarded = request.url.path.startswith(("/jobs", "/status"))
        if guarded and not (scheme.lower() == "bearer" and token_ok(given.strip())):
            return _error(401, "unauthorized", "a valid bearer token is required",
                          headers={"WWW-Authenticate": "Bearer"})
        return None

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError) -> JSONResponse:
        message, field = _first_problem(error)
        return stranger(request) or _error(400, "invalid_request", message, field)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, error: HTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body it cannot parse, an unknown path, a wrong method),
        # in the shape of every other answer.
        kind = "invalid_request" if error.status_code == 400 else "http_error"
        return stranger(request) or _error(error.status_code, kind, str(error.detail),
                                           headers=dict(error.headers or {}))

    def authorized(credentials: Credentials) -> None:
        if not token_ok(credentials.credentials if credentials else ""):
            raise _Unauthorized

    @app.exception_handler(_Unauthorized)
    async def unauthorized(request: Request, error: _Unauthorized) -> JSONResponse:
        return _error(401, "unauthorized", "a valid bearer token is required",
                      headers={"WWW-Authenticate": "Bearer"})

    answers: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorBody, "description": "the body is invalid (the field is named)"},
        401: {"model": ErrorBody, "description": "missing or wrong bearer token"},
        403: {"model": ErrorBody, "description": "live runs are disabled on this worker"},
        409: {"model": ErrorBody, "description": "a job with this jobId exists"},
        503: {"model": ErrorBody, "description": "too many live jobs are waiting"},
    }

    @app.post("/jobs", response_model=JobView, status_code=200, responses={
        **answers, 202: {"model": JobView, "description": "live job queued"}},
        dependencies=[Depends(authorized)], summary="Start a job (dry run unless live)")
    def post_job(body: JobRequest) -> Any:  # type: ignore[valid-type]
        given = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
        job_id = given.pop("job_id", None) or "job-" + uuid.uuid4().hex[:12]
        dry = given.get("dry_run", not live)
        if not dry and not live:
            prometheus.increment("esl.service.jobs.refused", 1, {"why": "live disabled"})
            return _error(403, "live_disabled", "live runs are disabled on this worker "
                          "(ESL_BUILD_SERVICE_LIVE); send dryRun: true", "dryRun")
        flags = {**given, "dry_run": dry}
        try:  # a bad flag or md is the request's fault: 400 before a job exists
            pipeline.check_request(flags)
        except ValidationError as error:
            return _error(400, "invalid_request", str(error), error.field)
        if queue is not None and not dry:
            return enqueued(job_id, flags)
        if jobs.create(job_id, flags) is None:
            return _error(409, "duplicate_job", f"job {job_id!r} exists", "jobId")
        if dry:
            view = jobs.run(job_id, flags)
            prometheus.increment("esl.service.jobs", 1, {"mode": "dry", "state": view["state"]})
            return JSONResponse(JobView(**view).model_dump(), status_code=200)
        try:
            jobs.submit(job_id, flags)
        except QueueFull:
            prometheus.increment("esl.service.jobs.refused", 1, {"why": "queue full"})
            return _error(503, "busy", "too many live jobs are waiting; retry later",
                          headers={"Retry-After": "5"})
        prometheus.increment("esl.service.jobs", 1, {"mode": "live", "state": "queued"})
        return JSONResponse(JobView(**(jobs.get(job_id) or {})).model_dump(), status_code=202)

    def enqueued(job_id: str, flags: dict[str, Any]) -> JSONResponse:
        try:
            queue.enqueue({**flags, "jobId": job_id}, pipeline=pipeline)
        except ValidationError as error:
            if error.field == "jobId":
                return _error(409, "duplicate_job", f"job {job_id!r} exists", "jobId")
            return _error(400, "invalid_request", str(error), error.field)
        except PipelineError as error:  # the broker or the status store is unreachable
            prometheus.increment("esl.service.jobs.refused", 1, {"why": "queue down"})
            return _error(503, "queue_unavailable", str(error), headers={"Retry-After": "5"})
        prometheus.increment("esl.service.jobs", 1, {"mode": "queue", "state": "queued"})
        status = queue.job_status(job_id) or {"job_id": job_id, "state": "queued"}
        return JSONResponse(JobView(**_queued_view(status)).model_dump(), status_code=202)

    @app.get("/jobs/{job_id}", response_model=JobView, responses={
        401: answers[401], 404: {"model": ErrorBody, "description": "no such job"},
        503: {"model": ErrorBody, "description": "the queue's status store is unreachable"}},
        dependencies=[Depends(authorized)], summary="A job's state, steps and errors")
    def get_job(job_id: str) -> Any:
        job = jobs.get(job_id)
        if job is None and queue is not None and RUN_ID.fullmatch(job_id):
            try:
                status = queue.job_status(job_id)
            except PipelineError as error:  # the status store is unreachable
                return _error(503, "queue_unavailable", str(error),
                              headers={"Retry-After": "5"})
            job = _queued_view(status) if status else None
        if job is None:
            return _error(404, "not_found", "no such job", "jobId")
        return JobView(**job)

    @app.get("/status", responses={400: answers[400], 401: answers[401],
                                   409: {"description": "the manifest cannot be read"}},
             dependencies=[Depends(authorized)], summary="What a lesson's manifest records")
    def get_status(md: Annotated[str, Query(min_length=1, max_length=1024)]) -> Any:
        try:
            return pipeline.get_assignment_status(md).to_json()
        except ValidationError as error:
            return _error(400, "invalid_request", str(error), error.field)
        except PipelineError as error:
            return JSONResponse({"error": "unreadable", **error.to_json()}, status_code=409)

    @app.get("/healthz", summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    def get_metrics() -> Response:
        return Response(prometheus.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


class _Unauthorized(Exception):
    pass


def serve(host: str = "127.0.0.1", port: int = 8080, cwd: Path | str | None = None) -> None:
    """``esl-build serve``: a pipeline over ``cwd`` with JSON-lines logging (logger
    ``esl_build.events``) and Prometheus metrics, behind the worker app on uvicorn."""
    import logging

    import uvicorn

    from esl_build.observability import JsonLinesLogger
    from esl_build.pipeline import create_pipeline

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pipeline = create_pipeline(cwd, logger=JsonLinesLogger("esl_build.events"),
                               metrics=PrometheusMetrics())
    settings = pipeline.settings()
    service = settings.service
    queue = None
    if service.mode == "queue":
        try:
            from esl_build.queue import JobQueue
        except ImportError as error:
            from esl_build.errors import ConfigInvalid
            raise ConfigInvalid(f"ESL_BUILD_SERVICE_MODE=queue needs {error.name}: pip "
                                "install 'esl-build[queue]'") from None
        queue = JobQueue.from_settings(settings, root=pipeline.root)
    app = create_app(pipeline, live=service.live, token=service.token,
                     max_jobs=service.max_jobs, queue=queue)
    uvicorn.run(app, host=host, port=port, log_level="info")
