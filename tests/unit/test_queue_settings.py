"""Queue settings from the environment, the payload contract, and who imports Celery."""

from __future__ import annotations

import subprocess
import sys

import pytest

from esl_build.errors import ConfigInvalid, ValidationError
from esl_build.settings import Settings


def test_queue_variables_resolve_and_bad_ones_name_the_variable(tmp_path):
    queue = Settings.resolve(tmp_path, env={
        "ESL_BUILD_QUEUE_URL": "redis://:hunter2@cache:6379/1",
        "ESL_BUILD_QUEUE_MAX_ATTEMPTS": "3", "ESL_BUILD_QUEUE_BACKOFF": "0.5",
        "ESL_BUILD_QUEUE_TRANSPORT_OPTIONS": '{"region": "eu-west-1"}',
        "ESL_BUILD_ROOT": "repo"}).queue
    assert queue.url.reveal().endswith("@cache:6379/1") and "hunter2" not in repr(queue)
    assert queue.status_url == queue.url and queue.max_attempts == 3 and queue.backoff == 0.5
    assert queue.transport_options == {"region": "eu-west-1"}
    assert queue.root == (tmp_path / "repo").resolve()
    sqs = Settings.resolve(tmp_path, env={"ESL_BUILD_QUEUE_URL": "sqs://"})
    assert sqs.queue.status_url is None and sqs.service.mode == "queue"
    assert Settings.resolve(tmp_path, env={}).service.mode == "inline"
    for name, value in [("ESL_BUILD_QUEUE_MAX_ATTEMPTS", "0"),
                        ("ESL_BUILD_QUEUE_BACKOFF", "soon"),
                        ("ESL_BUILD_QUEUE_TRANSPORT_OPTIONS", "[1]"),
                        ("ESL_BUILD_QUEUE_TRANSPORT_OPTIONS", "{oops"),
                        ("ESL_BUILD_SERVICE_MODE", "batch")]:
        with pytest.raises(ConfigInvalid, match=name):
            Settings.resolve(tmp_path, env={name: value})


def test_the_payload_is_camel_case_on_the_wire():
    from esl_build.queue.payload import parse_payload, wire_payload

    job_id, flags = parse_payload({"jobId": "5f9", "md": "lessons/unit1.md", "withTts": False,
                                   "upload": "s3", "preset": "b1-default",
                                   "student": "Alice"})
    assert (job_id, flags.with_tts, flags.upload, flags.student) == ("5f9", False, "s3",
                                                                     "Alice")
    assert wire_payload(job_id, flags) == {"jobId": "5f9", "md": "lessons/unit1.md",
                                           "withTts": False, "upload": "s3",
                                           "preset": "b1-default", "student": "Alice"}
    with pytest.raises(ValidationError, match=r"^dryRun must be true or false$"):
        parse_payload({"md": "unit1", "dryRun": 1})
    with pytest.raises(ValidationError, match="JSON object"):
        parse_payload(["unit1"])


def test_importing_the_package_or_a_noop_build_loads_no_celery():
    code = ("import sys, esl_build, esl_build.tasks, esl_build.pipeline, esl_build.cli; "
            "print([m for m in ('celery', 'kombu', 'redis') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_esl_build_env_does_not_show_the_queue_urls(tmp_path):
    import os

    env = {**os.environ, "ESL_BUILD_QUEUE_URL": "redis://:hunter2@cache:6379/0",
           "ESL_BUILD_QUEUE_STATUS_URL": "redis://:hunter3@cache:6379/1"}
    out = subprocess.run([sys.executable, "-m", "esl_build.cli", "env"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, check=True).stdout
    assert "hunter2" not in out and "hunter3" not in out
    assert "ESL_BUILD_QUEUE_URL" in out
