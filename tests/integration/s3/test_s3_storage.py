"""S3 storage against moto over HTTP: content type, metadata, URLs, idempotence, errors."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import pytest

from esl_build.errors import ConfigInvalid, StorageError
from esl_build.services.s3 import CACHE_CONTROL, S3Storage
from esl_build.settings import Settings


def mp3(tmp_path: Path, data: bytes = b"ID3 fake mp3 bytes " * 100) -> tuple[Path, str]:
    path = tmp_path / "audio.mp3"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def storage(s3, **env: str) -> S3Storage:
    settings = Settings.resolve(env={**s3.env, "S3_BUCKET": s3.bucket, **env}).s3
    return S3Storage.from_settings(settings, s3.counting_client())


def test_upload_sets_type_cache_and_sha256_and_records_a_working_url(s3, tmp_path):
    file, sha = mp3(tmp_path)
    s3.client.put_bucket_policy(Bucket=s3.bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{s3.bucket}/*"}]}))
    store = storage(s3)
    key = store.key_for("b1/unit1", sha)
    assert key == f"audio/b1/unit1/{sha[:16]}.mp3"
    out = store.put(file, key, sha256=sha, content_type="audio/mpeg")
    head = s3.client.head_object(Bucket=s3.bucket, Key=key)
    assert head["ContentType"] == "audio/mpeg"
    assert head["CacheControl"] == CACHE_CONTROL
    assert head["Metadata"] == {"sha256": sha}
    assert out["url"] == f"{s3.env['AWS_ENDPOINT_URL_S3']}/{s3.bucket}/{key}"
    assert out["url"] == store.url_for(key)  # what a dry run computes
    with urllib.request.urlopen(out["url"]) as answer:
        assert answer.read() == file.read_bytes()
    assert out["etag"] == head["ETag"] and out["sent"] is True


def test_the_same_audio_is_not_sent_again(s3, tmp_path):
    file, sha = mp3(tmp_path)
    store = storage(s3)
    key = store.key_for("unit1", sha)
    store.put(file, key, sha256=sha, content_type="audio/mpeg")
    s3.requests.clear()
    again = store.put(file, key, sha256=sha, content_type="audio/mpeg")
    assert again["sent"] is False
    assert s3.requests == {"HeadObject": 1}
    assert s3.puts(key) == 1


def test_keys_are_url_encoded_and_a_cdn_base_is_used(s3, tmp_path):
    file, sha = mp3(tmp_path)
    store = storage(s3, S3_PUBLIC_BASE_URL="https://cdn.example.com/media/",
                    S3_PREFIX="/lessons audio/", S3_KEY_TEMPLATE="{prefix}/{lesson}/{sha16}.mp3")
    key = store.key_for("a2/café day", sha)
    assert key == f"lessons audio/a2/café day/{sha[:16]}.mp3"
    out = store.put(file, key, sha256=sha, content_type="audio/mpeg")
    assert out["url"] == (f"https://cdn.example.com/media/lessons%20audio/a2/caf%C3%A9%20day/"
                          f"{sha[:16]}.mp3")
    assert s3.keys("lessons audio/") == [key]


def test_presigned_links_expire_and_work_until_then(s3, tmp_path):
    file, sha = mp3(tmp_path)
    store = storage(s3, S3_PRESIGN_SECONDS="900")
    key = store.key_for("unit1", sha)
    url = store.put(file, key, sha256=sha, content_type="audio/mpeg")["url"]
    assert "X-Amz-Expires=900" in url and "X-Amz-Signature=" in url
    assert "test-secret-never-shown" not in url
    with urllib.request.urlopen(url) as answer:
        assert answer.read() == file.read_bytes()
    assert store.settings["url"] == "presign"


def test_public_read_and_presign_exclude_each_other(s3):
    with pytest.raises(ConfigInvalid, match="exclude each other"):
        storage(s3, S3_PUBLIC_READ="1", S3_PRESIGN_SECONDS="60")


def test_public_read_sends_the_acl(s3, tmp_path):
    file, sha = mp3(tmp_path)
    store = storage(s3, S3_PUBLIC_READ="true")
    key = store.key_for("unit1", sha)
    store.put(file, key, sha256=sha, content_type="audio/mpeg")
    grants = s3.client.get_object_acl(Bucket=s3.bucket, Key=key)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") and g["Permission"] == "READ"
               for g in grants)


def forbid_acls(s3) -> None:
    """The default of new AWS buckets: object ownership BucketOwnerEnforced (ACLs refused)."""
    s3.client.put_bucket_ownership_controls(
        Bucket=s3.bucket,
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})


def test_a_bucket_that_forbids_acls_is_an_error_never_a_private_upload(s3, tmp_path):
    file, sha = mp3(tmp_path)
    forbid_acls(s3)
    store = storage(s3, S3_PUBLIC_READ="1")
    key = store.key_for("unit1", sha)
    with pytest.raises(StorageError, match=r"does not allow ACLs.*Nothing was uploaded "
                                           r"privately.*--presign") as refused:
        store.put(file, key, sha256=sha, content_type="audio/mpeg")
    assert "BucketOwnerEnforced" in str(refused.value)
    assert s3.keys() == []
    # The server's refusal, not ours: without the ACL the same object goes up.
    assert storage(s3).put(file, key, sha256=sha, content_type="audio/mpeg")["sent"]


def test_public_read_makes_audio_stored_in_another_mode_public_or_says_why(s3, tmp_path):
    file, sha = mp3(tmp_path)
    key = storage(s3).key_for("unit1", sha)
    storage(s3).put(file, key, sha256=sha, content_type="audio/mpeg")  # private, no ACL
    store = storage(s3, S3_PUBLIC_READ="1")
    s3.requests.clear()
    assert store.put(file, key, sha256=sha, content_type="audio/mpeg")["sent"] is False
    assert s3.requests == {"HeadObject": 1, "PutObjectAcl": 1}
    grants = s3.client.get_object_acl(Bucket=s3.bucket, Key=key)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)
    assert s3.puts(key) == 1  # the bytes were not sent again

    other, other_sha = mp3(tmp_path, b"other audio " * 50)
    other_key = storage(s3).key_for("unit2", other_sha)
    storage(s3).put(other, other_key, sha256=other_sha, content_type="audio/mpeg")
    forbid_acls(s3)
    with pytest.raises(StorageError, match=r"cannot make .*unit2.* public-read.*does not "
                                           r"allow ACLs.*left as it was"):
        store.put(other, other_key, sha256=other_sha, content_type="audio/mpeg")


def test_large_audio_goes_up_in_parts(s3, tmp_path):
    file, sha = mp3(tmp_path, b"\x01" * (6 * 1024 * 1024))
    store = storage(s3)
    store.multipart_threshold = 5 * 1024 * 1024
    key = store.key_for("long", sha)
    out = store.put(file, key, sha256=sha, content_type="audio/mpeg")
    assert out["etag"].strip('"').endswith("-2")
    assert s3.requests["CreateMultipartUpload"] == 1
    assert s3.client.head_object(Bucket=s3.bucket, Key=key)["Metadata"] == {"sha256": sha}
    back = tmp_path / "back.mp3"
    store.fetch(out, back)
    assert back.read_bytes() == file.read_bytes()


def test_small_objects_round_trip(s3):
    store = storage(s3)
    assert store.read_object("cache/tts/none.pcm") is None
    store.write_object("cache/tts/a.pcm", b"\x00\x01", content_type="application/octet-stream")
    assert store.read_object("cache/tts/a.pcm") == b"\x00\x01"


def test_errors_name_bucket_and_key_and_never_the_credentials(s3, tmp_path):
    file, sha = mp3(tmp_path)
    store = storage(s3, S3_BUCKET="no-such-bucket-here")
    with pytest.raises(StorageError) as caught:
        store.put(file, "audio/x.mp3", sha256=sha, content_type="audio/mpeg")
    text = str(caught.value)
    assert "s3://no-such-bucket-here/audio/x.mp3" in text
    assert "test-secret-never-shown" not in text and "AKIATESTKEY" not in text


def test_a_wrong_checksum_is_refused_before_sending(s3, tmp_path):
    file, _ = mp3(tmp_path)
    with pytest.raises(StorageError, match="expected"):
        storage(s3).put(file, "audio/x.mp3", sha256="0" * 64, content_type="audio/mpeg")
    assert s3.requests == {}
