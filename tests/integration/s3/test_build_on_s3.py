"""Real doit builds whose audio and manifests live in S3 (moto over HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

from esl_build.testing.repo import LessonsRepo, lesson_text


def lessons(count: int) -> dict[str, str]:
    return {f"unit{n}": lesson_text((f"Alex: This is lesson number {n}.",
                                     f"Mara: We practise sentence {n} together today."),
                                    title=f"Lesson {n}") for n in range(count)}


def s3_env(s3) -> dict[str, str]:
    return {**s3.env, "S3_BUCKET": s3.bucket, "ESL_PIPELINE_MANIFEST_STORE": "s3",
            "ESL_PIPELINE_MANIFEST_BUCKET": s3.bucket, "ESL_PIPELINE_MANIFEST_PREFIX": "m",
            "ESL_PIPELINE_LEASE_TTL": "5"}


def manifests(s3) -> dict[str, dict]:
    found = {}
    for key in s3.keys("m/"):
        if key.endswith(".manifest.json"):
            body = s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
            found[key] = json.loads(body)
    return found


def test_a_build_keeps_manifests_and_audio_in_s3_and_a_rebuild_sends_no_put(s3, tmp_path):
    repo = LessonsRepo.create(tmp_path / "repo", lessons(2), env=s3_env(s3))
    first = repo.doit()
    assert first.returncode == 0, first.stdout + first.stderr
    assert not list(repo.path("lessons").rglob("*.manifest.json"))
    found = manifests(s3)
    assert sorted(found) == ["m/lessons/unit0.manifest.json", "m/lessons/unit1.manifest.json"]
    upload = found["m/lessons/unit0.manifest.json"]["stages"]["upload"]
    key = upload["outputs"]["key"]
    assert key.startswith("audio/unit0/") and upload["backend"] == "s3"
    head = s3.client.head_object(Bucket=s3.bucket, Key=key)
    assert head["ContentType"] == "audio/mpeg"
    assert head["Metadata"]["sha256"] == upload["inputs"]["audio"]
    # one write per stage: five stage records (carrying doit's) and doit's last one
    assert [s3.puts(k) for k in found] == [6, 6]

    again = repo.doit()
    assert again.returncode == 0 and again.ran == set(), again.stdout
    assert s3.puts(key) == 1 and [s3.puts(k) for k in found] == [6, 6]


def test_a_changed_line_uploads_new_audio_once(s3, tmp_path):
    repo = LessonsRepo.create(tmp_path / "repo", lessons(1), env=s3_env(s3))
    assert repo.doit().returncode == 0
    repo.edit("unit0", "This is lesson number 0.", "This is lesson zero.")
    run = repo.doit()
    assert {"tts:unit0", "upload:unit0"} <= run.ran
    assert len([k for k in s3.keys("audio/unit0/")]) == 2


def test_with_the_html_publisher_each_machine_writes_its_own_site_and_pays_once(s3, tmp_path):
    """The html publisher's page is a local file: each copy that lacks it publishes it again
    (import, then add-audio: local work, nothing sent). Everything else runs once in total
    (test_two_machines.py has the setup with every output in a service)."""
    env = s3_env(s3)
    copies = [LessonsRepo.create(tmp_path / f"machine{n}", lessons(6), env=env)
              for n in range(3)]
    command = [sys.executable, "-m", "doit", "-n", "2", "-P", "thread"]
    builds = [subprocess.Popen(command, cwd=copy.root, env=copy.process_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for copy in copies[:2]]
    outputs = [b.communicate(timeout=600) for b in builds]
    assert [b.returncode for b in builds] == [0, 0], outputs
    found = manifests(s3)
    assert len(found) == 6
    billed = sum(m["stages"]["tts"]["cost"]["characters"] for m in found.values())
    synthesised = sum(int(out.split("characters synthesised:")[1].split()[0])
                      for out, _ in outputs)
    assert synthesised == billed  # no line was synthesised on both machines
    once, per_machine = ("validate", "tts", "upload"), ("import", "add-audio")
    assert s3.stage_runs("m/lessons/") == Counter(
        {(stage, f"unit{n}"): 1 if stage in once else 2  # import, add-audio: its own site
         for stage in once + per_machine for n in range(6)})
    for manifest in found.values():
        assert s3.puts(manifest["stages"]["upload"]["outputs"]["key"]) == 1
    for copy in copies[:2]:
        assert len(list(copy.path("build/site").glob("unit*.html"))) == 6
    third = copies[2].doit()
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.ran - {"index"} == {f"{stage}:unit{n}" for stage in ("import", "add-audio")
                                     for n in range(6)}
    assert third.characters == 0


def build_in_process(repo: LessonsRepo) -> str:
    """``doit run`` in this process (its project comes from the environment)."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from esl_build import tasks

    out = repo.root / "doit-output.txt"  # doit binds its default stdout at import time
    code = DoitMain(ModuleTaskLoader(tasks), config_filenames=()).run(["run", "-o", str(out)])
    assert code == 0, out.read_text()
    return out.read_text()


def test_a_no_op_on_the_s3_store_is_one_listing_and_urls_are_known_before_upload(
        s3, moto_server, tmp_path, monkeypatch):
    from esl_build.project import Project
    from esl_build.settings import Settings
    from esl_build.stages import status
    from esl_build.stages.upload import planned

    repo = LessonsRepo.create(tmp_path / "repo", lessons(3), env=s3_env(s3))
    monkeypatch.chdir(repo.root)
    for name, value in s3_env(s3).items():
        monkeypatch.setenv(name, value)
    build_in_process(repo)
    dry = Project(Settings.resolve(repo.root))
    for n in range(3):  # the URL a dry run computes is the one the build recorded
        record = dry.store.read(f"unit{n}")["stages"]["upload"]
        plan = status(dry, "upload", f"unit{n}").plan
        assert planned(dry, plan)["url"] == record["outputs"]["url"]
    moto_server.requests.clear()
    out = build_in_process(repo)
    assert ".  " not in out and "[1/" not in out
    assert moto_server.requests == {"GET": 1}  # one ListObjectsV2, no GET of any manifest
