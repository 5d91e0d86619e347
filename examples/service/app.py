"""The integration guide's Step 3 in Python: a dry-run worker over one lessons repository.

    PIPELINE_CWD=/srv/lessons uvicorn examples.service.app:app --port 8080

(``esl-build serve`` is the full worker: auth, live jobs, /jobs/{id}, /metrics.)
"""

import os

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from esl_build import PipelineError, create_pipeline, noop_logger, noop_metrics

pipeline = create_pipeline(
    cwd=os.environ.get("PIPELINE_CWD", os.getcwd()),
    logger=noop_logger,      # replace with JsonLinesLogger(...) or your own log(event)
    metrics=noop_metrics,    # replace with PrometheusMetrics() or your statsd client
)
app = FastAPI()


@app.post("/jobs")
def jobs(body: dict) -> JSONResponse:
    if not isinstance(body.get("md"), str) or not body["md"]:
        return JSONResponse({"error": "md is required"}, status_code=400)
    try:
        result = pipeline.new_assignment(
            {"md": body["md"], "dry_run": True, "skip_import": True, "skip_tts": True,
             "skip_upload": True},
            run_id=body.get("jobId"),
        )
    except PipelineError as error:
        return JSONResponse({"error": str(error), "field": error.field}, status_code=400)
    return JSONResponse({"jobId": body.get("jobId") or body["md"], "result": result.to_json()})
