"""The job queue on Amazon SQS: Celery's SQS transport (kombu, boto3, pycurl) against a moto
SQS server on 127.0.0.1, a real ``esl-build worker`` process, job status in a real Redis."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from esl_build.queue import JobQueue
from esl_build.settings import Settings
from esl_build.testing.moto import CountingMotoServer
from esl_build.testing.queue import QueueWorkers, RedisServer
from esl_build.testing.repo import LessonsRepo, lesson_text

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not RedisServer.available(),
                                 reason="redis-server is not installed (job status)")]


def test_jobs_travel_through_sqs_to_a_worker_and_leave_the_queue_empty(tmp_path):
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text(), "broken": lesson_text(
        ("Zed: Nobody knows me.",))})
    moto = CountingMotoServer()
    try:
        with RedisServer() as redis:
            port = moto.url.rsplit(":", 1)[1]
            broker = f"sqs://testing:testing@127.0.0.1:{port}"
            extra = {"ESL_BUILD_QUEUE_STATUS_URL": redis.url, "AWS_REGION": "eu-west-1",
                     "ESL_BUILD_QUEUE_TRANSPORT_OPTIONS": json.dumps({
                         "queue_name_prefix": "test-", "wait_time_seconds": 1,
                         "polling_interval": 0.1})}
            with QueueWorkers(repo, broker, extra=extra) as workers:
                queue = JobQueue.from_settings(Settings.resolve(env=workers.env))
                ids = [queue.enqueue({"jobId": "a", "md": "lessons/unit1.md"}),
                       queue.enqueue({"jobId": "b", "md": "unit1", "dryRun": True}),
                       queue.enqueue({"jobId": "c", "md": "lessons/broken.md"})]
                found = _wait(queue, ids)
            sqs = boto3.client("sqs", endpoint_url=moto.url, region_name="eu-west-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
            [url] = sqs.list_queues(QueueNamePrefix="test-")["QueueUrls"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
                "Attributes"]
    finally:
        moto.stop()
    assert found["a"]["state"] == "succeeded" and found["b"]["state"] == "succeeded"
    assert [s["state"] for s in found["a"]["steps"]] == ["ran"] * 5
    assert found["c"]["state"] == "failed" and found["c"]["attempts"] == 1
    assert "lessons/broken.md:" in found["c"]["error"]
    assert url.endswith("/test-esl-build") and ":eu-west-1:" in attributes["QueueArn"]
    assert attributes["VisibilityTimeout"] == "3600"
    assert attributes["ApproximateNumberOfMessages"] == "0"  # every job acknowledged
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert json.loads(repo.path("lessons/unit1.manifest.json").read_text())["stages"][
        "tts"]["runId"] == "a"


def _wait(queue: JobQueue, ids: list[str], timeout: float = 90) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = {job: queue.job_status(job) or {} for job in ids}
        if all(status.get("state") in ("succeeded", "failed") for status in found.values()):
            return found
        assert time.monotonic() < deadline, {j: s.get("state") for j, s in found.items()}
        time.sleep(0.1)
