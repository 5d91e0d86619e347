"""The HTTP worker: a ``Pipeline`` behind FastAPI, started by ``esl-build serve``.

::

    POST /jobs        the guide's payload (``md``, ``jobId``, ``dryRun``, ``withTts`` …)
    GET  /jobs/{id}   state (queued, running, succeeded, failed), steps, result, error
    GET  /status?md=  what the lesson's manifest records, stage by stage (read only)
    GET  /healthz     {"status": "ok"}
    GET  /metrics     Prometheus text (the pipeline's and the worker's metrics)
    GET  /openapi.json

A job is a dry run unless the deployment enables live runs (``ESL_BUILD_SERVICE_LIVE``);
dry runs answer at once (200), live jobs are queued (202) and run in a pool of
``ESL_BUILD_SERVICE_MAX_JOBS`` threads, off the request thread; a full queue answers 503. A
bad or incomplete body is a 400 naming the field. ``md`` is confined to the lessons folder.
With ``ESL_BUILD_SERVICE_TOKEN`` set, ``/jobs`` needs ``Authorization: Bearer <token>``.

This package imports FastAPI; nothing else in esl-build does.
"""

from __future__ import annotations

from esl_build.service.app import JobTable, create_app, serve
from esl_build.service.server import BackgroundServer

__all__ = ["BackgroundServer", "JobTable", "create_app", "serve"]
