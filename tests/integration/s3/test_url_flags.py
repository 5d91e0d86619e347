"""``esl-build build --presign SECONDS`` and ``--public-read``: real builds against moto."""

from __future__ import annotations

import json
import urllib.request

from esl_build.testing.repo import LessonsRepo, lesson_text

LESSONS = {f"unit{n}": lesson_text((f"Alex: Lesson {n} starts now.", "Mara: Good, let's go."),
                                   title=f"Lesson {n}") for n in range(2)}


def records(repo: LessonsRepo, stage: str) -> dict[str, dict]:
    return {lesson_id: json.loads(repo.path(f"lessons/{lesson_id}.manifest.json").read_text())
            ["stages"][stage] for lesson_id in LESSONS}


def test_presign_relinks_every_lesson_without_resending_audio_and_a_dry_run_names_the_url(
        s3, moto_server, tmp_path):
    repo = LessonsRepo.create(tmp_path / "repo", LESSONS, env={**s3.env, "S3_BUCKET": s3.bucket})
    assert repo.esl_build("build").returncode == 0
    public = records(repo, "upload")

    moto_server.requests.clear()
    dry = repo.esl_build("build", "--presign", "3600", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "warning: S3_PRESIGN_SECONDS=3600" in dry.stderr and "(Notion)" in dry.stderr
    assert "PUT" not in moto_server.requests  # a dry run changes nothing
    planned = {line.split("→ ")[1] for line in dry.stdout.splitlines() if "→ " in line}
    assert len(planned) == 2 and all("X-Amz-Expires=3600" in url for url in planned)

    run = repo.esl_build("build", "--presign", "3600")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.ran == {f"{stage}:{lesson}" for stage in ("upload", "add-audio")
                       for lesson in LESSONS} | {"index"}
    presigned = records(repo, "upload")
    for lesson_id, record in presigned.items():
        url = record["outputs"]["url"]
        assert record["inputs"]["settings"]["url"] == "presign"
        assert url.split("?")[0] == public[lesson_id]["outputs"]["url"]
        assert any(p.split("?")[0] == url.split("?")[0] for p in planned)
        assert s3.puts(record["outputs"]["key"]) == 1  # re-linked, not re-sent
        with urllib.request.urlopen(url) as answer:  # the signed link works
            assert answer.read()[:3] in (b"ID3", b"\xff\xfb")
        page = repo.path(f"build/site/{lesson_id}.html").read_text()
        assert url.replace("&", "&amp;") in page
    assert repo.esl_build("build", "--presign", "3600").ran == set()


def test_public_read_on_a_bucket_that_forbids_acls_fails_clearly_and_uploads_nothing(
        s3, tmp_path):
    s3.client.put_bucket_ownership_controls(
        Bucket=s3.bucket,
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    repo = LessonsRepo.create(tmp_path / "repo", LESSONS, env={**s3.env, "S3_BUCKET": s3.bucket})
    run = repo.esl_build("build", "--public-read")
    assert run.returncode == 1
    assert "does not allow ACLs" in run.stdout and "Nothing was uploaded privately" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert s3.keys("audio/") == []
    manifests = [json.loads(repo.path(f"lessons/{lesson}.manifest.json").read_text())
                 for lesson in LESSONS]
    assert all("upload" not in m["stages"] and "add-audio" not in m["stages"] for m in manifests)

    s3.client.put_bucket_ownership_controls(  # ACLs allowed: the same flag now works
        Bucket=s3.bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    assert repo.esl_build("build", "--public-read").returncode == 0
    for record in records(repo, "upload").values():
        assert record["inputs"]["settings"]["url"] == "public-read"
        grants = s3.client.get_object_acl(Bucket=s3.bucket, Key=record["outputs"]["key"])
        assert any(g["Grantee"].get("URI", "").endswith("/AllUsers")
                   for g in grants["Grants"])


def test_url_flags_are_checked_before_anything_is_built(s3, tmp_path):
    repo = LessonsRepo.create(tmp_path / "repo", LESSONS, env={**s3.env, "S3_BUCKET": s3.bucket})
    both = repo.esl_build("build", "--public-read", "--presign", "60")
    assert both.returncode == 2 and "exclude each other" in both.stdout + both.stderr
    bad = repo.esl_build("build", "--presign", "soon")
    assert bad.returncode == 2 and "S3_PRESIGN_SECONDS='soon'" in bad.stderr
    local = LessonsRepo.create(tmp_path / "local", LESSONS)
    refused = local.esl_build("build", "--presign=60")
    assert refused.returncode == 2 and "set S3_BUCKET" in refused.stderr
    for checked in (both, bad, refused):
        assert "Traceback" not in checked.stderr
    assert s3.keys() == [] and not list(repo.path("lessons").rglob("*.manifest.json"))
