"""Local storage: a folder on this machine acting as the bucket (the embedded default).

Keys map to paths under the folder (``b1/unit1/audio.mp3`` → ``<root>/b1/unit1/audio.mp3``).
Objects are written atomically (temp file in the same folder, fsync, rename), so a reader never
sees half a file. A ``put`` whose object is already there with the same sha256 writes nothing.

The content type cannot be kept on a plain file system, so it is accepted and ignored; the
ETag is computed the way S3 does for a single-part upload (the quoted MD5 of the bytes), so a
manifest reads the same whichever storage wrote it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from esl_build.errors import StorageError
from esl_build.files import atomic_path, atomic_write, file_lock, relative_to

_CHUNK = 1 << 20


def _digests(path: Path) -> tuple[str, str]:
    """(sha256 hex, md5 hex) of a file, read once."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def _check_key(key: str) -> str:
    """Return ``key`` if it names a path inside the bucket; raise ``StorageError`` otherwise."""
    parts = key.split("/")
    if (not key or key.startswith("/") or "\\" in key or "\0" in key
            or any(part in ("", ".", "..") for part in parts)):
        raise StorageError(f"unsafe object key {key!r}: use relative 'a/b.mp3' keys without "
                           "'..', empty parts, a leading '/' or backslashes")
    return key


class LocalStorage:
    """A folder used as the bucket. No credentials, no network.

    ``requests`` counts ``put`` calls and ``calls`` counts the objects actually written, so a
    test can assert that an unchanged rebuild writes nothing.
    """

    name = "local"
    remote = False

    def __init__(self, root: Path, project_root: Path):
        self.root = Path(root)
        self.project_root = Path(project_root)
        self.bucket = self._bucket_name()
        self.settings: dict[str, Any] = {"bucket": self.bucket}
        self.calls = 0
        self.requests = 0

    def _bucket_name(self) -> str:
        # The bucket name goes into fingerprints, so it must not depend on where the project
        # is checked out: a folder inside the project is named by its relative path, one
        # outside by its folder name only.
        relative = self._relative(self.root)
        return relative if relative is not None else self.root.resolve().name

    def _relative(self, path: Path) -> str | None:
        """``path`` relative to the project root (posix), or None when it lies outside."""
        return relative_to(path, self.project_root)

    def _object(self, key: str) -> Path:
        return self.root / _check_key(key)

    def _url(self, stored: Path) -> str:
        relative = self._relative(stored)
        return relative if relative is not None else stored.resolve().as_uri()

    def put(self, file: Path, key: str, *, sha256: str, content_type: str) -> dict[str, Any]:
        """Store ``file`` at ``key``, skipping the copy when the same bytes are already there.

        ``sha256`` must be the file's hex digest (a mismatch raises ``StorageError``, as S3
        rejects a wrong checksum). Returns ``bucket``, ``key``, ``etag`` (quoted MD5) and
        ``url`` (the stored path relative to the project root, or a ``file://`` URL).
        """
        self.requests += 1
        target = self._object(key)
        if not Path(file).is_file():
            raise StorageError(f"cannot store {key}: source file {file} does not exist")
        actual_sha, md5 = _digests(Path(file))
        if actual_sha != sha256:
            raise StorageError(f"cannot store {key}: {file} has sha256 {actual_sha}, "
                               f"expected {sha256}")
        if not (target.is_file() and _digests(target)[0] == sha256):
            self._copy(Path(file), target)
            self.calls += 1
        return {"bucket": self.bucket, "key": key, "etag": f'"{md5}"', "url": self._url(target)}

    def fetch(self, outputs: dict[str, Any], dest: Path) -> None:
        """Copy the object of an earlier ``put`` (its outputs) to ``dest``, atomically."""
        if outputs.get("bucket") != self.bucket:
            raise StorageError(f"object {outputs.get('key')} was stored in bucket "
                               f"{outputs.get('bucket')!r}, this storage is {self.bucket!r}")
        source = self._object(outputs["key"])
        if not source.is_file():
            raise StorageError(f"object {outputs['key']} is missing from {self.bucket}")
        self._copy(source, Path(dest))

    def read_object(self, key: str) -> bytes | None:
        """The bytes stored at ``key``, or None when absent."""
        try:
            return self._object(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {key} from {self.bucket}: {exc.strerror}") from None

    def write_object(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store ``data`` at ``key`` atomically (the content type is not kept)."""
        try:
            atomic_write(self._object(key), data)
        except OSError as exc:
            raise StorageError(f"cannot write {key} to {self.bucket}: {exc.strerror}") from None

    def read_object_version(self, key: str) -> tuple[bytes, str] | None:
        """The bytes at ``key`` and their sha256 as the version, or None when absent."""
        data = self.read_object(key)
        return (data, hashlib.sha256(data).hexdigest()) if data is not None else None

    def write_object_if(self, key: str, data: bytes, *, content_type: str,
                        version: str | None) -> str | None:
        """Write ``data`` if the object is absent (``version`` None) or still ``version``,
        under an ``flock`` per key (``.locks/`` in the bucket folder)."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        with file_lock(self.root / ".locks" / f"{digest[:16]}.lock"):
            current = self.read_object_version(key)
            if (current[1] if current else None) != version:
                return None
            self.write_object(key, data, content_type=content_type)
        return hashlib.sha256(data).hexdigest()

    @staticmethod
    def _copy(source: Path, dest: Path) -> None:
        try:
            with atomic_path(dest) as tmp:
                shutil.copyfile(source, tmp)
        except OSError as exc:
            raise StorageError(f"cannot write {dest}: {exc.strerror}") from None

    def durable(self, outputs: dict[str, Any]) -> bool:
        """True when the stored file of these ``put`` outputs still exists."""
        try:
            return (outputs.get("bucket") == self.bucket
                    and os.path.isfile(os.path.join(self.root, _check_key(outputs["key"]))))
        except (KeyError, StorageError):
            return False

    def watched(self, outputs: dict[str, Any]) -> tuple[str, ...]:
        """The stored file ``durable`` looks for."""
        try:
            return (os.path.join(self.root, _check_key(outputs["key"])),)
        except (KeyError, StorageError):
            return ()
