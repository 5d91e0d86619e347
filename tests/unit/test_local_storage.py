"""Local storage: a folder as the bucket, written atomically, idempotent, S3-shaped outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from esl_build.errors import StorageError
from esl_build.files import atomic_write as write_atomic
from esl_build.services.local import LocalStorage

MP3 = b"ID3\x03\x00fake mp3 bytes"
SHA = hashlib.sha256(MP3).hexdigest()
ETAG = f'"{hashlib.md5(MP3).hexdigest()}"'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    return tmp_path / "project"


@pytest.fixture
def storage(project: Path) -> LocalStorage:
    return LocalStorage(project / "build" / "bucket", project)


@pytest.fixture
def mp3(tmp_path: Path) -> Path:
    path = tmp_path / "audio.mp3"
    path.write_bytes(MP3)
    return path


def put(storage: LocalStorage, file: Path, key: str = "b1/unit1/audio.mp3", sha: str = SHA):
    return storage.put(file, key, sha256=sha, content_type="audio/mpeg")


def test_put_stores_the_file_and_returns_s3_shaped_outputs(storage, project, mp3):
    outputs = put(storage, mp3)
    assert outputs == {"bucket": "build/bucket", "key": "b1/unit1/audio.mp3", "etag": ETAG,
                       "url": "build/bucket/b1/unit1/audio.mp3"}
    assert (project / outputs["url"]).read_bytes() == MP3
    assert storage.durable(outputs)
    assert (storage.name, storage.remote, storage.settings) == ("local", False,
                                                               {"bucket": "build/bucket"})


def test_putting_the_same_bytes_again_writes_nothing(storage, mp3):
    first = put(storage, mp3)
    assert put(storage, mp3) == first
    assert (storage.requests, storage.calls) == (2, 1)


def test_changed_bytes_replace_the_object(storage, project, mp3):
    put(storage, mp3)
    mp3.write_bytes(b"new take")
    outputs = put(storage, mp3, sha=hashlib.sha256(b"new take").hexdigest())
    assert (project / outputs["url"]).read_bytes() == b"new take"
    assert storage.calls == 2
    assert [p.name for p in (project / "build/bucket/b1/unit1").iterdir()] == ["audio.mp3"]


def test_a_wrong_checksum_is_refused(storage, mp3):
    with pytest.raises(StorageError, match="sha256"):
        put(storage, mp3, sha="0" * 64)
    assert storage.calls == 0


def test_a_missing_source_is_refused(storage, tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        put(storage, tmp_path / "nope.mp3")


@pytest.mark.parametrize("key", ["../escape.mp3", "a/../../b.mp3", "/abs.mp3", "a\\b.mp3",
                                 "a//b.mp3", "", "./a.mp3"])
def test_unsafe_keys_are_refused(storage, mp3, key):
    with pytest.raises(StorageError, match="unsafe object key"):
        put(storage, mp3, key=key)
    assert not storage.durable({"bucket": "build/bucket", "key": key})


def test_fetch_copies_the_object_back(storage, mp3, tmp_path):
    outputs = put(storage, mp3)
    dest = tmp_path / "restored" / "audio.mp3"
    storage.fetch(outputs, dest)
    assert dest.read_bytes() == MP3


def test_fetch_and_durable_notice_a_lost_object(storage, project, mp3, tmp_path):
    outputs = put(storage, mp3)
    (project / outputs["url"]).unlink()
    assert not storage.durable(outputs)
    with pytest.raises(StorageError, match="missing"):
        storage.fetch(outputs, tmp_path / "out.mp3")


def test_objects_of_another_bucket_are_not_ours(storage, project, mp3, tmp_path):
    outputs = put(storage, mp3)
    other = LocalStorage(project / "elsewhere", project)
    assert not other.durable(outputs)
    with pytest.raises(StorageError, match="bucket"):
        other.fetch(outputs, tmp_path / "out.mp3")


def test_a_bucket_outside_the_project_uses_its_folder_name_and_file_urls(tmp_path, project, mp3):
    storage = LocalStorage(tmp_path / "shared-bucket", project)
    assert storage.settings == {"bucket": "shared-bucket"}
    outputs = put(storage, mp3)
    assert outputs["url"] == (tmp_path / "shared-bucket/b1/unit1/audio.mp3").resolve().as_uri()


def test_write_atomic_leaves_no_temp_files_and_keeps_the_old_file_on_error(tmp_path):
    target = tmp_path / "dir" / "page.html"
    write_atomic(target, b"one")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"one"
    assert [p.name for p in target.parent.iterdir()] == ["page.html"]


def test_small_objects_round_trip_and_absent_keys_read_as_none(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "bucket", tmp_path)
    assert storage.read_object("cache/tts/ab.pcm") is None
    storage.write_object("cache/tts/ab.pcm", b"\x01\x02", content_type="audio/L16")
    assert storage.read_object("cache/tts/ab.pcm") == b"\x01\x02"
    with pytest.raises(StorageError):
        storage.write_object("../outside", b"x", content_type="text/plain")
    assert not (tmp_path / "outside").exists()
