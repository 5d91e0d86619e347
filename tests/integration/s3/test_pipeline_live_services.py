"""The pipeline API over live services (the real SDKs against fake Notion, fake ElevenLabs and
moto on 127.0.0.1): a dry run sends them nothing, and two pipelines in one process, each
with its own repository, manifest store and credentials, build at the same time."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
from botocore.config import Config

from esl_build import S3ManifestStore, create_pipeline
from esl_build.services.s3 import s3_client
from esl_build.settings import Settings
from esl_build.testing.fake_elevenlabs import VOICES, FakeElevenLabs
from esl_build.testing.fake_notion import FakeNotion
from esl_build.testing.repo import LessonsRepo, lesson_text
from esl_build.voices.catalog import catalog_bytes


def test_a_dry_run_sends_nothing_to_notion_elevenlabs_or_s3_and_writes_nothing(
        tmp_path, s3, moto_server):
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text()})
    repo.path("configs/elevenlabs.voices.json").write_bytes(catalog_bytes(list(VOICES)))
    before = {p: p.read_bytes() for p in sorted(repo.root.rglob("*")) if p.is_file()}
    with FakeNotion() as notion, FakeElevenLabs() as eleven:
        pipeline = create_pipeline(cwd=repo.root, secrets={
            **s3.env, **notion.env, **eleven.env, "S3_BUCKET": s3.bucket,
            "ESL_PIPELINE_MANIFEST_STORE": "s3", "ESL_PIPELINE_MANIFEST_BUCKET": s3.bucket})
        writes = sum(n for method, n in moto_server.requests.items() if method != "GET")
        plan = pipeline.new_assignment({"md": "unit1", "dry_run": True})
        assert [s.state for s in plan.steps] == ["would-run"] * 5
        assert plan.estimate and plan.estimate["characters"] > 0
        assert notion.requests == [] and eleven.requests == []
    assert sum(n for method, n in moto_server.requests.items() if method != "GET") == writes
    assert s3.keys() == []
    assert {p: p.read_bytes() for p in sorted(repo.root.rglob("*")) if p.is_file()} == before


def test_two_pipelines_with_their_own_stores_and_credentials_build_concurrently(
        tmp_path, moto_url):
    client = boto3.session.Session(
        aws_access_key_id="AKIA-PIPELINE-A", aws_secret_access_key="secret-a",
        region_name="us-east-1").client("s3", endpoint_url=moto_url, config=Config(
            s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
            response_checksum_validation="when_required"))
    client.create_bucket(Bucket="manifests-a")
    fakes = [FakeElevenLabs(api_key="sk-account-a").start(),
             FakeElevenLabs(api_key="sk-account-b").start()]
    try:
        repos = [LessonsRepo.create(tmp_path / name, {f"{name}{n}": lesson_text(
            (f"Alex: This is lesson {name}{n}.", f"Mara: Lesson {name}{n}, yes."))
            for n in range(2)}) for name in "ab"]
        for repo in repos:
            repo.path("configs/elevenlabs.voices.json").write_bytes(catalog_bytes(list(VOICES)))
        stores: list[Any] = [S3ManifestStore.from_settings(Settings.resolve(repos[0].root, env={
            "ESL_PIPELINE_MANIFEST_STORE": "s3", "ESL_PIPELINE_MANIFEST_BUCKET": "manifests-a",
            "ESL_BUILD_LOCAL_BUCKET": "bucket"}), client=client), None]
        pipelines = [create_pipeline(cwd=repo.root, manifest_store=store, secrets={
            **fake.env, "ESL_BUILD_LOCAL_BUCKET": "bucket"})
            for repo, store, fake in zip(repos, stores, fakes, strict=True)]
        results: dict[str, Any] = {}
        errors: list[BaseException] = []

        def job(which: int, lesson_id: str) -> None:
            try:
                results[lesson_id] = pipelines[which].new_assignment(
                    {"md": lesson_id}, run_id=f"run-{lesson_id}")
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=job, args=(w, f"{'ab'[w]}{n}"))
                   for n in range(2) for w in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        for which, fake in enumerate(fakes):  # each account billed for its own lessons only
            name = "ab"[which]
            spoken = {turn["text"] for request in fake.synthesis_requests
                      for turn in request["body"].get("inputs", [])}
            assert spoken == {f"This is lesson {name}{n}." for n in range(2)} | {
                f"Lesson {name}{n}, yes." for n in range(2)}
    finally:
        for fake in fakes:
            fake.stop()
    keys = sorted(item["Key"] for item in client.list_objects_v2(
        Bucket="manifests-a").get("Contents", ()) if item["Key"].endswith(".manifest.json"))
    assert keys == ["lessons/a0.manifest.json", "lessons/a1.manifest.json"]
    assert not list(repos[0].path("lessons").glob("*.manifest.json"))  # none on disk for a
    for n in range(2):
        manifest = json.loads(repos[1].path(f"lessons/b{n}.manifest.json").read_text())
        assert {r["runId"] for r in manifest["stages"].values()} == {f"run-b{n}"}
        remote = json.loads(client.get_object(Bucket="manifests-a",
                                              Key=f"lessons/a{n}.manifest.json")["Body"].read())
        assert {r["runId"] for r in remote["stages"].values()} == {f"run-a{n}"}
        assert results[f"a{n}"].manifest_path.startswith("s3://manifests-a/")
        assert results[f"b{n}"].audio and results[f"b{n}"].audio.voices


def test_each_pipelines_aws_credentials_come_from_its_own_secrets_not_the_process(
        tmp_path, moto_server, moto_url, monkeypatch):
    """Two pipelines in one process, each given its own AWS key pair by its secrets provider,
    sign their S3 requests with their own key, whatever the process environment holds."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPROCESSWIDE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "process-secret")
    seen: dict[str, set[str]] = {}
    for name in ("AKIATENANTONE", "AKIATENANTTWO"):
        before = set(moto_server.access_keys)
        settings = Settings.resolve(tmp_path, env={
            "S3_BUCKET": f"audio-{name.lower()}", "AWS_ENDPOINT_URL_S3": moto_url,
            "S3_ADDRESSING_STYLE": "path", "AWS_ACCESS_KEY_ID": name,
            "AWS_SECRET_ACCESS_KEY": f"secret-of-{name}"})
        assert "secret-of" not in repr(settings)
        client = s3_client(settings.s3)
        client.create_bucket(Bucket=f"audio-{name.lower()}")
        client.list_objects_v2(Bucket=f"audio-{name.lower()}")
        seen[name] = set(moto_server.access_keys) - before
    assert seen == {"AKIATENANTONE": {"AKIATENANTONE"}, "AKIATENANTTWO": {"AKIATENANTTWO"}}
