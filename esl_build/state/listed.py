"""``ListedStore``: the half of a remote manifest store that reads through one listing.

The S3 and PostgreSQL stores share it. A run starts with one listing of every manifest's
stamp (an ETag, a version number); a read answers from the copy cached with that stamp and
fetches only when the stamp differs. So a no-op build whose lessons were verified before
costs one listing, not one request per lesson. A manifest another process may have written
(``invalidate``) is fetched afresh, alone, the next time it is read.

A subclass provides ``_list()`` (lesson id → stamp), ``read_versioned``, ``write`` and the
lease; it calls ``_remember`` with what it has just read or written, and ``_forget`` for a
manifest it found missing or deleted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from esl_build.state import manifest as mf
from esl_build.state.stores import Change, Version, update_manifest


class ListedStore:
    """Listing, cache, generations and ``update`` for a store with stamped manifests."""

    def __init__(self, sources: str) -> None:
        self.sources = sources  # the lessons folder relative to the project, for "source"
        self._listed: dict[str, Any] | None = None  # lesson id → stamp, one listing per run
        self._cache: dict[str, tuple[Any, mf.Manifest]] = {}  # lesson id → (stamp, manifest)
        self._generation: dict[str, int] = {}
        self._stale: set[str] = set()  # written by another process during this run
        self._guard = threading.RLock()

    # -- what a subclass provides -------------------------------------------------------------
    def _list(self) -> dict[str, Any]:
        """Every lesson's stamp, in one request where the store allows."""
        raise NotImplementedError

    def location(self, lesson_id: str) -> str:
        raise NotImplementedError

    def read_versioned(self, lesson_id: str) -> tuple[mf.Manifest | None, Version]:
        raise NotImplementedError

    def write(self, lesson_id: str, manifest: mf.Manifest, *, expect: Version) -> Version:
        raise NotImplementedError

    # -- the listing ----------------------------------------------------------------------------
    def new_run(self) -> None:
        """Forget the listing (the next read lists again) and what was marked stale."""
        with self._guard:
            self._listed = None
            self._stale.clear()

    def _listing(self) -> dict[str, Any]:
        with self._guard:
            if self._listed is None:
                self._listed = self._list()
            return self._listed

    def ids(self) -> Iterator[str]:
        yield from sorted(self._listing())

    def stamp(self, lesson_id: str) -> Any:
        """The manifest's stamp as listed at the start of this run (or as we last read or
        wrote it); None when it has none."""
        if lesson_id in self._stale:
            self.read_versioned(lesson_id)
        return self._listing().get(lesson_id)

    def generation(self, lesson_id: str) -> int:
        return self._generation.get(lesson_id, 0)

    def invalidate(self, lesson_id: str) -> None:
        """Another process may have written this manifest: fetch it afresh when read."""
        with self._guard:
            self._stale.add(lesson_id)
            self._cache.pop(lesson_id, None)
            self._generation[lesson_id] = self._generation.get(lesson_id, 0) + 1

    # -- reads and writes -----------------------------------------------------------------------
    def read(self, lesson_id: str) -> mf.Manifest | None:
        """The manifest, from this run's listing and cache: fetched only when the listed
        stamp differs from the cached copy's (do not mutate what you get)."""
        if lesson_id in self._stale:
            return self.read_versioned(lesson_id)[0]
        stamp = self.stamp(lesson_id)
        if stamp is None:
            return None
        with self._guard:
            hit = self._cache.get(lesson_id)
        if hit and hit[0] == stamp:
            return hit[1]
        return self.read_versioned(lesson_id)[0]

    def update(self, lesson_id: str, change: Change) -> mf.Manifest:
        """Apply ``change``; a concurrent write makes it re-read and re-apply (merge)."""
        doc, _ = update_manifest(self, lesson_id, change,
                                 lambda: mf.new_manifest(lesson_id, self._source(lesson_id)))
        return doc

    def _remember(self, lesson_id: str, stamp: Any, doc: mf.Manifest, *,
                  wrote: bool = False) -> None:
        """``doc`` is the manifest stored now, with ``stamp`` (``wrote``: we stored it)."""
        with self._guard:
            if wrote:
                self._generation[lesson_id] = self._generation.get(lesson_id, 0) + 1
            self._cache[lesson_id] = (stamp, doc)
            self._stale.discard(lesson_id)
            if self._listed is not None:
                self._listed[lesson_id] = stamp

    def _forget(self, lesson_id: str) -> None:
        """The lesson has no manifest (found missing, or deleted)."""
        with self._guard:
            self._cache.pop(lesson_id, None)
            self._stale.discard(lesson_id)
            if self._listed is not None:
                self._listed.pop(lesson_id, None)

    def _source(self, lesson_id: str) -> str:
        return f"{self.sources}/{lesson_id}.md"
