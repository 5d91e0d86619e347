"""Where manifests live. ``FileManifestStore`` keeps ``lessons/<id>.manifest.json`` next to
each lesson (the seed's convention); an S3 store for many workers plugs in behind the same
``ManifestStore`` protocol.

Every change is a read-modify-write under the lesson's lock: re-read the file, apply the
change, write a temp file, fsync, rename. Concurrent writers (threads of one ``doit -n``,
or several ``doit`` processes) therefore merge instead of overwriting each other, and a kill
at any moment leaves either the old or the new manifest, never a torn one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from esl_build.files import atomic_write, file_lock
from esl_build.state import manifest as mf


class ManifestStore(Protocol):
    def location(self, lesson_id: str) -> str: ...
    def read(self, lesson_id: str) -> mf.Manifest | None: ...
    def update(self, lesson_id: str, change: Callable[[mf.Manifest], None]) -> mf.Manifest: ...
    def lease(self, lesson_id: str, timeout: float | None = None
              ) -> contextlib.AbstractContextManager[None]: ...


class FileManifestStore:
    """Manifests as files beside the lessons; locks under ``<build>/.locks``."""

    def __init__(self, lessons_dir: Path, lock_dir: Path, *, root: Path):
        self.lessons_dir = lessons_dir
        self.lock_dir = lock_dir
        self.root = root
        self._cache: dict[str, tuple[tuple[int, int], mf.Manifest]] = {}
        self._guard = threading.Lock()

    def path(self, lesson_id: str) -> Path:
        return self.lessons_dir / f"{lesson_id}.manifest.json"

    def location(self, lesson_id: str) -> str:
        return self._rel(self.path(lesson_id))

    def read(self, lesson_id: str) -> mf.Manifest | None:
        """The manifest, or None when the lesson has none yet. Cached by (mtime, size);
        callers must not mutate what they get."""
        path = self.path(lesson_id)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        with self._guard:
            hit = self._cache.get(lesson_id)
        if hit and hit[0] == key:
            return hit[1]
        doc = self._load(lesson_id, path.read_bytes())
        with self._guard:
            self._cache[lesson_id] = (key, doc)
        return doc

    def update(self, lesson_id: str, change: Callable[[mf.Manifest], None]) -> mf.Manifest:
        """Apply ``change`` to a fresh copy of the manifest under the lock; write if it changed."""
        path = self.path(lesson_id)
        with file_lock(self.lock_dir / f"{lesson_id}.manifest.lock"):
            before = path.read_bytes() if path.exists() else None
            doc = (self._load(lesson_id, before) if before is not None
                   else mf.new_manifest(lesson_id, self._source(lesson_id)))
            change(doc)
            after = mf.dumps(doc)
            if after != before:
                atomic_write(path, after)
        with self._guard:
            self._cache.pop(lesson_id, None)
        return doc

    def lease(self, lesson_id: str, timeout: float | None = None
              ) -> contextlib.AbstractContextManager[None]:
        """Exclusive right to run stages of this lesson (other workers wait or get LeaseHeld)."""
        return file_lock(self.lock_dir / f"{lesson_id}.lease", timeout=timeout,
                         what=f"lesson {lesson_id}")

    def ids(self) -> Iterator[str]:
        """Lesson ids that have a manifest."""
        for path in sorted(self.lessons_dir.rglob("*.manifest.json")):
            yield path.relative_to(self.lessons_dir).as_posix()[: -len(".manifest.json")]

    def _load(self, lesson_id: str, data: bytes) -> mf.Manifest:
        return mf.loads(data, where=self.location(lesson_id), lesson_id=lesson_id,
                        source=self._source(lesson_id))

    def _source(self, lesson_id: str) -> str:
        return self._rel(self.lessons_dir / f"{lesson_id}.md")

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()
