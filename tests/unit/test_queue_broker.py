"""The broker settings of the queue: Redis and SQS, as Celery and kombu's SQS transport take
them. No network: kombu's SQS channel is opened over predefined queues, which it never lists."""

from __future__ import annotations

import json

import pytest

from esl_build.errors import ConfigInvalid
from esl_build.queue import JobQueue
from esl_build.settings import Settings

SQS_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/prod-esl-build"


def queue_of(tmp_path, **env: str) -> JobQueue:
    return JobQueue.from_settings(Settings.resolve(tmp_path, env=env))


def test_sqs_takes_the_region_the_prefix_and_the_visibility_timeout(tmp_path):
    queue = queue_of(tmp_path, ESL_BUILD_QUEUE_URL="sqs://AKIAEXAMPLE:s%2Fcret@",
                     ESL_BUILD_QUEUE_STATUS_URL="redis://127.0.0.1:1/0",
                     AWS_REGION="eu-west-1", ESL_BUILD_QUEUE_VISIBILITY_TIMEOUT="7200",
                     ESL_BUILD_QUEUE_TRANSPORT_OPTIONS=json.dumps({
                         "queue_name_prefix": "prod-", "wait_time_seconds": 20,
                         "predefined_queues": {"prod-esl-build": {"url": SQS_URL}}}))
    conf = queue.celery.conf
    assert conf.broker_transport_options["region"] == "eu-west-1"
    with queue.celery.connection_for_write() as connection:
        channel = connection.default_channel  # kombu's SQS transport, as a worker opens it
        assert type(channel).__module__ == "kombu.transport.SQS"
        assert (channel.region, channel.visibility_timeout, channel.wait_time_seconds) == (
            "eu-west-1", 7200, 20)
        assert channel.canonical_queue_name(conf.task_default_queue) == "prod-esl-build"
        assert channel._resolve_queue_url("esl-build") == SQS_URL
        assert (connection.userid, connection.password) == ("AKIAEXAMPLE", "s/cret")
    assert "s/cret" not in repr(queue) and "AKIAEXAMPLE" not in repr(queue.settings)


def test_options_given_as_json_win_over_the_variables(tmp_path):
    queue = queue_of(tmp_path, ESL_BUILD_QUEUE_URL="sqs://", AWS_REGION="eu-west-1",
                     ESL_BUILD_QUEUE_TRANSPORT_OPTIONS='{"region": "us-west-2", '
                     '"visibility_timeout": 5400}')
    options = queue.celery.conf.broker_transport_options
    assert (options["region"], options["visibility_timeout"]) == ("us-west-2", 5400)


def test_an_sqs_compatible_endpoint_is_the_urls_host(tmp_path):
    queue = queue_of(tmp_path, ESL_BUILD_QUEUE_URL="sqs://key:secret@127.0.0.1:4566",
                     ESL_BUILD_QUEUE_TRANSPORT_OPTIONS=json.dumps({"predefined_queues": {
                         "esl-build": {"url": "http://127.0.0.1:4566/000000000000/esl-build"}}}))
    with queue.celery.connection_for_write() as connection:
        assert connection.default_channel.endpoint_url == "http://127.0.0.1:4566"


def test_redis_keeps_its_visibility_timeout(tmp_path):
    conf = queue_of(tmp_path, ESL_BUILD_QUEUE_URL="redis://127.0.0.1:1/0").celery.conf
    assert conf.broker_url == "redis://127.0.0.1:1/0"
    assert conf.broker_transport_options == {"visibility_timeout": 3600}


@pytest.mark.parametrize(("env", "says"), [
    ({"ESL_BUILD_QUEUE_VISIBILITY_TIMEOUT": "300"}, "longer than ESL_PIPELINE_LEASE_TIMEOUT"),
    ({"ESL_BUILD_QUEUE_VISIBILITY_TIMEOUT": "900", "ESL_PIPELINE_LEASE_TIMEOUT": "1200"},
     "ESL_PIPELINE_LEASE_TIMEOUT=1200"),
    ({"ESL_BUILD_QUEUE_URL": "sqs://", "ESL_BUILD_QUEUE_VISIBILITY_TIMEOUT": "50000"},
     "at most 43200"),
    ({"ESL_BUILD_QUEUE_URL": "sqs://", "ESL_BUILD_QUEUE_NAME": "esl.build"}, "'esl.build'"),
    ({"ESL_BUILD_QUEUE_URL": "sqs://", "ESL_BUILD_QUEUE_TRANSPORT_OPTIONS":
      '{"queue_name_prefix": "prod-", "predefined_queues": {"esl-build": {"url": "x"}}}'},
     "'prod-esl-build'"),
    ({"ESL_BUILD_QUEUE_TRANSPORT_OPTIONS": '{"visibility_timeout": "soon"}'},
     "visibility_timeout must be a number"),
])
def test_a_broker_setting_that_would_deliver_a_job_twice_or_nowhere_is_refused(
        tmp_path, env, says):
    with pytest.raises(ConfigInvalid, match=says):
        queue_of(tmp_path, **env)
