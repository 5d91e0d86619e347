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
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from esl_build.files import atomic_write, file_lock, shown
from esl_build.state import manifest as mf


class ManifestStore(Protocol):
    def location(self, lesson_id: str) -> str: ...
    def read(self, lesson_id: str) -> mf.Manifest | None: ...
    def update(self, lesson_id: str, change: Callable[[mf.Manifest], None]) -> mf.Manifest: ...
    def lease(self, lesson_id: str, timeout: float | None = None
              ) -> contextlib.AbstractContextManager[None]: ...


class FileManifestStore:
    """Manifests as files beside the lessons; locks under ``<build>/.locks``."""

    def __init__(self, lessons_dir: Path, lock_dir: Path, *, root: Path,
                 places: mf.Places | None = None):
        self.lessons_dir = lessons_dir
        self.lock_dir = lock_dir
        self.root = root
        self.places = places or mf.Places(str(root))
        self._cache: dict[str, tuple[object, mf.Manifest]] = {}
        self._generation: dict[str, int] = {}  # bumped by this process's writes
        self._paths: dict[str, str] = {}
        self._guard = threading.Lock()

    def path(self, lesson_id: str) -> Path:
        return Path(self._path(lesson_id))

    def _path(self, lesson_id: str) -> str:
        path = self._paths.get(lesson_id)
        if path is None:
            path = self._paths[lesson_id] = os.path.join(self.lessons_dir,
                                                         lesson_id + ".manifest.json")
        return path

    def location(self, lesson_id: str) -> str:
        return self._rel(self._path(lesson_id))

    def generation(self, lesson_id: str) -> int:
        """How many times this store has written the lesson's manifest."""
        return self._generation.get(lesson_id, 0)

    def stamp(self, lesson_id: str) -> tuple[int, ...]:
        """Changes whenever the manifest does: its (inode, mtime, size) and our own writes."""
        try:
            stat = os.stat(self._path(lesson_id))
        except FileNotFoundError:
            return (self._generation.get(lesson_id, 0),)
        return (self._generation.get(lesson_id, 0), stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def read(self, lesson_id: str) -> mf.Manifest | None:
        """The manifest, or None when the lesson has none yet. Cached by ``stamp``;
        callers must not mutate what they get."""
        key = self.stamp(lesson_id)
        if len(key) == 1:
            return None
        with self._guard:
            hit = self._cache.get(lesson_id)
        if hit and hit[0] == key:
            return hit[1]
        with open(self._path(lesson_id), "rb") as file:
            doc = self._load(lesson_id, file.read())
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
                # Under the lock there is one writer, so the temp file can have a fixed name:
                # one a killed build left behind is reused, never piled up beside the lessons.
                atomic_write(path, after, locked=True)
        with self._guard:
            self._cache.pop(lesson_id, None)
            self._generation[lesson_id] = self._generation.get(lesson_id, 0) + 1
        return doc

    def lease(self, lesson_id: str, timeout: float | None = None
              ) -> contextlib.AbstractContextManager[None]:
        """Exclusive right to run stages of this lesson (other workers wait or get LeaseHeld)."""
        return file_lock(self.lock_dir / f"{lesson_id}.lease", timeout=timeout,
                         what=f"lesson {lesson_id}")

    def ids(self) -> Iterator[str]:
        """Lesson ids that have a manifest (names that can't be a lesson id are left out)."""
        from esl_build.lesson.discovery import lesson_id_problem

        for path in sorted(self.lessons_dir.rglob("*.manifest.json")):
            lesson_id = path.relative_to(self.lessons_dir).as_posix()[: -len(".manifest.json")]
            if lesson_id_problem(lesson_id) is None:
                yield lesson_id

    def _load(self, lesson_id: str, data: bytes) -> mf.Manifest:
        return mf.loads(data, where=self.location(lesson_id), lesson_id=lesson_id,
                        source=self._source(lesson_id), places=self.places)

    def _source(self, lesson_id: str) -> str:
        return self._rel(os.path.join(self.lessons_dir, lesson_id + ".md"))

    def _rel(self, path: str) -> str:
        return shown(path, self.root)
