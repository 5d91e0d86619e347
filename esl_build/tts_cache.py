"""The content-addressed audio cache: every request's PCM under the sha256 of what shaped it.

Keys come from ``Voice.request_key`` (text, voice ids, model, format, voice settings, seed;
for a dialogue chunk, all its turns), so lessons share entries and nothing is ever keyed on a
lesson. Entries are never deleted after assembly: they are what was paid for.

Two places, behind one small interface (``AudioCache``):

``FolderCache``   ``build/cache/tts/<key>.pcm`` on this machine.
``StorageCache``  ``cache/tts/<key>.pcm`` in the bucket (``Storage.read_object`` /
                  ``write_object``), so CI machines and workers share what was paid for.
``TieredCache``   the folder in front of the bucket: reads fill the folder, writes go to both
                  (the folder first).

``obtain`` makes a key at most once on this machine: it holds an inter-process lock per key
(``build/.locks/tts/``, striped by the key's first three hex digits) while it looks the key up
and, on a miss, synthesises and stores it; threads and processes that want the same key wait
and then read it. Across machines two builds may still pay for the same key once each
(object stores have no lock); the second write is idempotent.

An entry is ``<rate: uint32 little-endian><mono s16le samples>``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from esl_build.files import atomic_write, file_lock
from esl_build.services.protocols import Pcm, Storage

PREFIX = "cache/tts/"


class AudioCache(Protocol):
    """Where synthesised audio is kept, by key."""

    def read(self, key: str) -> Pcm | None: ...

    def write(self, key: str, pcm: Pcm) -> None: ...

    def contains(self, key: str) -> bool: ...


def encode(pcm: Pcm) -> bytes:
    return struct.pack("<I", pcm.rate) + pcm.samples


def decode(data: bytes) -> Pcm | None:
    """The entry's audio, or None for a truncated or foreign file (then it is re-made)."""
    if len(data) < 4 or len(data) % 2:
        return None
    (rate,) = struct.unpack("<I", data[:4])
    return Pcm(data[4:], rate) if 1000 <= rate <= 384_000 else None


class FolderCache:
    """Entries as files in a local folder."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.pcm"

    def read(self, key: str) -> Pcm | None:
        try:
            return decode(self._path(key).read_bytes())
        except FileNotFoundError:
            return None

    def write(self, key: str, pcm: Pcm) -> None:
        atomic_write(self._path(key), encode(pcm))

    def contains(self, key: str) -> bool:
        return self._path(key).is_file()


class StorageCache:
    """Entries as objects under ``cache/tts/`` in the build's storage."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def read(self, key: str) -> Pcm | None:
        data = self.storage.read_object(PREFIX + key + ".pcm")
        return decode(data) if data is not None else None

    def write(self, key: str, pcm: Pcm) -> None:
        self.storage.write_object(PREFIX + key + ".pcm", encode(pcm),
                                  content_type="application/octet-stream")

    def contains(self, key: str) -> bool:
        return self.read(key) is not None


class TieredCache:
    """A local cache in front of a shared one."""

    def __init__(self, local: AudioCache, shared: AudioCache):
        self.local, self.shared = local, shared

    def read(self, key: str) -> Pcm | None:
        hit = self.local.read(key)
        if hit is None:
            hit = self.shared.read(key)
            if hit is not None:
                self.local.write(key, hit)
        return hit

    def write(self, key: str, pcm: Pcm) -> None:
        # Local first: if the bucket refuses the entry (its retries spent), the stage fails,
        # but what was paid for is still on this machine and the next build bills nothing.
        self.local.write(key, pcm)
        self.shared.write(key, pcm)

    def contains(self, key: str) -> bool:
        return self.local.contains(key) or self.read(key) is not None


def obtain(cache: AudioCache, key: str, locks: Path, make: Callable[[], Pcm]
           ) -> tuple[Pcm, bool]:
    """The audio of ``key``: from the cache, or made by ``make()`` and stored, at most once
    per machine however many threads and processes ask. Returns (audio, whether made)."""
    with file_lock(locks / f"{key[:3]}.lock"):
        hit = cache.read(key)
        if hit is not None:
            return hit, False
        pcm = make()
        cache.write(key, pcm)
        return pcm, True
