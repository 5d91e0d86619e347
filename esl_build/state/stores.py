"""Where manifests live, behind one ``ManifestStore`` protocol with versions.

``FileManifestStore`` (the default) keeps ``lessons/<id>.manifest.json`` beside each lesson;
``S3ManifestStore`` (``esl_build.state.s3_store``) keeps one object per lesson in a bucket, so
several machines can build one lessons repository.

Every store offers the same few operations:

``read_versioned(id)``   the manifest as stored now, and its version (None: no manifest)
``write(id, m, expect)`` store ``m`` only if the version is still ``expect``; else
                         ``WriteConflict``. Returns the new version.
``update(id, change)``   read, apply ``change``, write if the version held; on a conflict
                         re-read and re-apply. A change touches only its own stage's record
                         (or doit's), so re-applying it *is* the per-stage merge: no writer's
                         record is ever overwritten by another's.
``read(id)``             ``read_versioned`` cached for this run (callers must not mutate it)
``ids()``, ``location(id)``, ``stamp(id)``, ``generation(id)``, ``lease(id)``

A file version is the sha256 of the file's bytes, compared under the lesson's lock; an S3
version is the object's ETag, compared by the server (``If-Match`` / ``If-None-Match``).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISLNK
from typing import TYPE_CHECKING, Any, Protocol

from esl_build.errors import LeaseHeld, ManifestCorrupt, StateError, WriteConflict
from esl_build.files import atomic_write, contains, file_lock, shown
from esl_build.fingerprint import sha256_bytes
from esl_build.state import manifest as mf

if TYPE_CHECKING:
    from esl_build.settings import Settings

Version = str | None  # None: the lesson has no manifest yet
Change = Callable[[mf.Manifest], None]
UPDATE_ATTEMPTS = 50


def owner_id() -> str:
    """Who holds a lease: host, user, process and thread (for messages, never secret)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"{user}@{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


@dataclass
class Lease:
    """The right to run stages of one lesson: who holds it and until when (epoch seconds).

    ``renew`` pushes the expiry out; a store renews a held lease in the background while a
    stage runs. ``lost`` turns True if another worker took it over (it had expired)."""

    lesson_id: str
    owner: str
    expires_at: float
    renew: Callable[[], None] = field(default=lambda: None, repr=False)
    lost: bool = False


class ManifestStore(Protocol):
    """Reads and writes lesson manifests with versions. FileManifestStore, S3ManifestStore."""

    def location(self, lesson_id: str) -> str:
        """Where the lesson's manifest lives, for messages (a path or an ``s3://`` URL)."""
        ...

    def read_versioned(self, lesson_id: str) -> tuple[mf.Manifest | None, Version]:
        """The manifest as stored now (never cached) and its version."""
        ...

    def write(self, lesson_id: str, manifest: mf.Manifest, *, expect: Version) -> Version:
        """Store ``manifest`` if the stored version is still ``expect``, else raise
        ``WriteConflict``; returns the new version."""
        ...

    def read(self, lesson_id: str) -> mf.Manifest | None:
        """The manifest, cached until it changes (do not mutate what you get)."""
        ...

    def update(self, lesson_id: str, change: Change) -> mf.Manifest:
        """Apply ``change`` to the stored manifest, merging with concurrent writers."""
        ...

    def ids(self) -> Iterator[str]:
        """Ids of the lessons that have a manifest."""
        ...

    def stamp(self, lesson_id: str) -> Any:
        """A cheap JSON-able token that changes whenever the manifest does (None: none)."""
        ...

    def generation(self, lesson_id: str) -> int:
        """How many times this store object has written the lesson's manifest."""
        ...

    def new_run(self) -> None:
        """Forget listings and cached reads (each doit run starts with this)."""
        ...

    def invalidate(self, lesson_id: str) -> None:
        """Another process may have written this manifest (a doit worker process ran one
        of its stages): read it afresh next time and bump its ``generation``."""
        ...

    def lease(self, lesson_id: str, timeout: float | None = None
              ) -> contextlib.AbstractContextManager[Lease]:
        """Hold the lesson's lease (waiting up to ``timeout`` s, then ``LeaseHeld``)."""
        ...


@contextlib.contextmanager
def kept_alive(lease: Lease, ttl: float, renew: Callable[[], None],
               release: Callable[[], None]) -> Iterator[Lease]:
    """Hold an acquired ``lease``: ``renew`` runs every third of ``ttl`` in a background
    thread until the block ends or the lease is lost (``StateError``s are retried at the next
    tick), then ``release`` runs once (unless the lease was lost; its ``StateError`` is
    ignored: an unreleased lease simply expires)."""
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(ttl / 3) and not lease.lost:
            with contextlib.suppress(StateError):
                renew()

    lease.renew = renew
    keeper = threading.Thread(target=keep, name=f"lease {lease.lesson_id}", daemon=True)
    keeper.start()
    try:
        yield lease
    finally:
        stop.set()
        keeper.join()
        if not lease.lost:
            with contextlib.suppress(StateError):
                release()


class Versioned(Protocol):
    """What ``update_manifest`` needs of a store: versioned reads and conditional writes."""

    def location(self, lesson_id: str) -> str: ...

    def read_versioned(self, lesson_id: str) -> tuple[mf.Manifest | None, Version]: ...

    def write(self, lesson_id: str, manifest: mf.Manifest, *, expect: Version) -> Version: ...


def update_manifest(store: Versioned, lesson_id: str, change: Change,
                    new: Callable[[], mf.Manifest]) -> tuple[mf.Manifest, bool]:
    """Read, change, write-if-unchanged; on a conflict re-read and re-apply ``change``.

    Returns the manifest as written (or as found, when ``change`` changed nothing) and
    whether a write happened."""
    for attempt in range(UPDATE_ATTEMPTS):
        doc, version = store.read_versioned(lesson_id)
        before = mf.dumps(doc) if doc is not None else None
        doc = doc if doc is not None else new()
        change(doc)
        if mf.dumps(doc) == before:
            return doc, False
        try:
            store.write(lesson_id, doc, expect=version)
            return doc, True
        except WriteConflict:
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # let the other writer finish
    raise StateError(f"{store.location(lesson_id)}: gave up after {UPDATE_ATTEMPTS} conflicting "
                     "writes by other workers; run the build again")


def store_from(settings: Settings) -> ManifestStore:
    """The manifest store the settings select (boto3 is imported only for s3)."""
    if settings.manifests.kind == "s3":
        from esl_build.state.s3_store import S3ManifestStore
        return S3ManifestStore.from_settings(settings)
    if settings.manifests.kind == "postgres":
        from esl_build.state.pg_store import PostgresManifestStore
        return PostgresManifestStore.from_settings(settings)
    return FileManifestStore(settings.lessons_dir, settings.build_dir / ".locks",
                             root=settings.root, places=places_of(settings),
                             lease_timeout=settings.manifests.lease_timeout)


def places_of(settings: Settings) -> mf.Places:
    """Where the local paths recorded in this project's manifests may point."""
    return mf.Places(str(settings.root), str(settings.build_dir), str(settings.local_bucket))


class FileManifestStore:
    """Manifests as files beside the lessons; locks and leases under ``<build>/.locks``.

    A lease is an ``flock``: the kernel releases it when its holder dies, so a killed
    worker's lease is free at once (it "expires" with the process)."""

    def __init__(self, lessons_dir: Path, lock_dir: Path, *, root: Path,
                 places: mf.Places | None = None, lease_timeout: float | None = None):
        self.lessons_dir = lessons_dir
        self.lock_dir = lock_dir
        self.root = root
        self.places = places or mf.Places(str(root))
        self.lease_timeout = lease_timeout
        self._cache: dict[str, tuple[object, mf.Manifest]] = {}
        self._generation: dict[str, int] = {}  # bumped by this process's writes
        self._paths: dict[str, str] = {}
        self._guard = threading.Lock()

    def path(self, lesson_id: str) -> Path:
        """The manifest file of a lesson."""
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
        return self._generation.get(lesson_id, 0)

    def new_run(self) -> None:
        """Nothing to forget: every read checks the file's identity."""

    def invalidate(self, lesson_id: str) -> None:
        with self._guard:
            self._cache.pop(lesson_id, None)
            self._generation[lesson_id] = self._generation.get(lesson_id, 0) + 1

    def stamp(self, lesson_id: str) -> Any:
        """(inode, mtime, size) of the manifest file, or None when there is none."""
        try:
            stat = os.lstat(self._path(lesson_id))
        except FileNotFoundError:
            return None
        if S_ISLNK(stat.st_mode):
            stat = os.stat(self._linked(lesson_id))
        return [stat.st_ino, stat.st_mtime_ns, stat.st_size]

    def _linked(self, lesson_id: str) -> str:
        """The file a manifest that is a symbolic link points to, if it lies inside the
        repository. A link to nothing is no "no manifest yet" (that would publish a second
        page), and one to a file outside could feed the build another file's contents."""
        path = self._path(lesson_id)
        where = self.location(lesson_id)
        if not os.path.exists(path):
            raise ManifestCorrupt(f"{where}: is a symbolic link to "
                                  f"{json.dumps(os.readlink(path), ensure_ascii=False)}, which "
                                  "does not exist; fix the link or restore the manifest")
        if not contains(self.root, path):
            raise ManifestCorrupt(f"{where}: is a symbolic link to a file outside the "
                                  "repository; copy the manifest in instead")
        return path

    def read(self, lesson_id: str) -> mf.Manifest | None:
        """The manifest, or None when the lesson has none yet. Cached by the file's identity
        and this process's writes; callers must not mutate what they get."""
        stamp = self.stamp(lesson_id)
        if stamp is None:
            return None
        key = (self._generation.get(lesson_id, 0), *stamp)
        with self._guard:
            hit = self._cache.get(lesson_id)
        if hit and hit[0] == key:
            return hit[1]
        with open(self._path(lesson_id), "rb") as file:
            doc = self._load(lesson_id, file.read())
        with self._guard:
            self._cache[lesson_id] = (key, doc)
        return doc

    def read_versioned(self, lesson_id: str) -> tuple[mf.Manifest | None, Version]:
        if os.path.islink(self._path(lesson_id)):
            self._linked(lesson_id)
        try:
            data = self.path(lesson_id).read_bytes()
        except FileNotFoundError:
            return None, None
        return self._load(lesson_id, data), sha256_bytes(data)

    def write(self, lesson_id: str, manifest: mf.Manifest, *, expect: Version) -> Version:
        """Replace the file atomically if its bytes still hash to ``expect`` (under the lock)."""
        path = self.path(lesson_id)
        data = mf.dumps(manifest)
        with file_lock(self.lock_dir / f"{lesson_id}.manifest.lock"):
            try:
                current: Version = sha256_bytes(path.read_bytes())
            except FileNotFoundError:
                current = None
            if current != expect:
                raise WriteConflict(f"{self.location(lesson_id)} changed since it was read")
            # Under the lock there is one writer, so the temp file can have a fixed name:
            # one a killed build left behind is reused, never piled up beside the lessons.
            atomic_write(path, data, locked=True)
        with self._guard:
            self._cache.pop(lesson_id, None)
            self._generation[lesson_id] = self._generation.get(lesson_id, 0) + 1
        return sha256_bytes(data)

    def update(self, lesson_id: str, change: Change) -> mf.Manifest:
        """Apply ``change`` to the manifest on disk, merging with concurrent writers."""
        doc, _ = update_manifest(self, lesson_id, change,
                                 lambda: mf.new_manifest(lesson_id, self._source(lesson_id)))
        return doc

    @contextlib.contextmanager
    def lease(self, lesson_id: str, timeout: float | None = None) -> Iterator[Lease]:
        """Exclusive right to run stages of this lesson, across threads and processes."""
        file = self.lock_dir / f"{lesson_id}.lease"
        wait = timeout if timeout is not None else self.lease_timeout
        owner = owner_id()
        held = contextlib.ExitStack()
        try:
            held.enter_context(file_lock(file, timeout=wait, what=f"lesson {lesson_id}"))
        except LeaseHeld:
            raise LeaseHeld(f"lesson {lesson_id} is held by {_holder(file)} (lease "
                            f"{self._rel(str(file))}); waited {wait:g} s. Try again when that "
                            "build has finished") from None
        with held:
            with contextlib.suppress(OSError):  # who holds it, for the waiting side's message
                file.write_text(json.dumps({"owner": owner, "since": time.time()}))
            yield Lease(lesson_id, owner, float("inf"))

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


def _holder(file: Path) -> str:
    try:
        return str(json.loads(file.read_text())["owner"])
    except (OSError, ValueError, KeyError, TypeError):
        return "another worker"
