"""A real S3 over HTTP on 127.0.0.1: one moto server per test session, a bucket per test."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from esl_build.services.s3 import s3_client
from esl_build.settings import Settings
from esl_build.testing.moto import CountingMotoServer


@pytest.fixture(scope="session")
def moto_server():
    server = CountingMotoServer()
    yield server
    server.stop()


@pytest.fixture
def moto_url(moto_server):
    return moto_server.url


@dataclass
class S3World:
    """The environment of a build against moto, a client, and counted requests."""

    env: dict[str, str]
    bucket: str
    client: Any
    requests: Counter[str] = field(default_factory=Counter)

    def counting_client(self) -> Any:
        """A new client whose requests are counted in ``requests`` by operation name."""
        client = s3_client(Settings.resolve(env=self.env).s3)
        client.meta.events.register(
            "before-call.s3.*", lambda model, **_: self.requests.update([model.name]))
        return client

    def puts(self, key: str) -> int:
        """How many times ``key`` was written (the bucket keeps every version)."""
        versions = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        return sum(1 for v in versions.get("Versions", ()) if v["Key"] == key)

    def versions(self, prefix: str) -> list[dict[str, Any]]:
        """Every version ever written under ``prefix`` (the bucket keeps them all)."""
        listed = self.client.list_object_versions(Bucket=self.bucket, Prefix=prefix)
        return list(listed.get("Versions", ()))

    def stage_runs(self, prefix: str) -> Counter[tuple[str, str]]:
        """(stage, lesson) → how many distinct runs recorded it, over every version of every
        manifest under ``prefix``: a record replaced later is still counted."""
        runs: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for version in self.versions(prefix):
            body = self.client.get_object(Bucket=self.bucket, Key=version["Key"],
                                          VersionId=version["VersionId"])["Body"].read()
            manifest = json.loads(body)
            for stage, record in manifest["stages"].items():
                if "runId" in record:
                    runs.setdefault((stage, manifest["lesson"]), set()).add(
                        (record["runId"], record["finishedAt"]))
        return Counter({key: len(found) for key, found in runs.items()})

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", ()))


@pytest.fixture
def s3(moto_url, tmp_path, monkeypatch) -> S3World:
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    env = {"AWS_ENDPOINT_URL_S3": moto_url, "AWS_ACCESS_KEY_ID": "AKIATESTKEY",
           "AWS_SECRET_ACCESS_KEY": "test-secret-never-shown", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "S3_ADDRESSING_STYLE": "path",
           "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
           "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
           "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = s3_client(Settings.resolve(env=env).s3)
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return S3World(env, bucket, client)


@pytest.fixture(scope="session")
def postgres_dsn():
    """A real PostgreSQL server for the session (skipped, saying why, when none is installed:
    .ci/run installs one)."""
    from esl_build.testing.postgres import PostgresServer

    why = PostgresServer.available()
    if why:
        pytest.skip(why)
    with PostgresServer.start() as server:
        yield server.dsn
