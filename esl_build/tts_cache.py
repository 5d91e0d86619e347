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

``obtain`` makes a key at most once, however many threads, processes and machines want it:

* on this machine it holds an inter-process lock per key (``build/.locks/tts/``, striped by
  the key's first three hex digits) while it looks the key up and, on a miss, synthesises and
  stores it; threads and processes that want the same key wait and then read it;
* across machines (``StorageCache`` on remote storage: S3) it then takes the key's *claim*,
  an object ``cache/tts/claims/<key>.json`` holding owner and expiry, written with a
  conditional PUT (``If-None-Match: *``) so one machine wins. The winner renews it every
  third of its TTL while it synthesises and stores the audio (the claim is then left: nobody
  reads it once the audio is there), or marks it released if it fails. A loser polls for
  the audio object and reads it when it appears; a claim past its expiry (its holder was
  killed, or failed) is taken over with ``If-Match`` on its ETag, so
  again only one machine wins. The TTL is ``ESL_PIPELINE_LEASE_TTL`` (60 s), the lessons'
  lease TTL. A bucket folder on this machine (local storage) needs no claim: the lock is it.

An entry is ``<rate: uint32 little-endian><mono s16le samples>``.
"""

from __future__ import annotations

import contextlib
import json
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from esl_build.errors import StorageError
from esl_build.files import atomic_write, file_lock
from esl_build.services.protocols import Pcm, Storage
from esl_build.state.stores import Lease, kept_alive, owner_id

PREFIX = "cache/tts/"
CLAIMS = PREFIX + "claims/"


class AudioCache(Protocol):
    """Where synthesised audio is kept, by key."""

    def read(self, key: str) -> Pcm | None: ...

    def write(self, key: str, pcm: Pcm) -> None: ...

    def contains(self, key: str) -> bool: ...

    def claimed(self, key: str) -> AbstractContextManager[Pcm | None]:
        """Hold the right to make ``key`` against other machines for the block. Yields the
        audio instead when another machine made it while this one waited (then make
        nothing); None means: make it now."""
        ...


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

    @contextlib.contextmanager
    def claimed(self, key: str) -> Iterator[Pcm | None]:
        yield None  # one machine: obtain's lock is the claim


class StorageCache:
    """Entries as objects under ``cache/tts/`` in the build's storage, claimed across
    machines while they are made (see the module docstring)."""

    def __init__(self, storage: Storage, *, claim_ttl: float = 60.0, poll: float = 0.25):
        self.storage = storage
        self.claim_ttl = claim_ttl
        self.poll = min(poll, claim_ttl / 4)

    def read(self, key: str) -> Pcm | None:
        data = self.storage.read_object(PREFIX + key + ".pcm")
        return decode(data) if data is not None else None

    def write(self, key: str, pcm: Pcm) -> None:
        self.storage.write_object(PREFIX + key + ".pcm", encode(pcm),
                                  content_type="application/octet-stream")

    def contains(self, key: str) -> bool:
        return self.read(key) is not None

    @contextlib.contextmanager
    def claimed(self, key: str) -> Iterator[Pcm | None]:
        if not self.storage.remote:
            yield None  # a bucket folder on this machine: obtain's lock is the claim
            return
        # The caller has just missed the audio: one conditional PUT is all a key costs when
        # nobody else wants it. The owner is unique per claim, so a PUT whose answer was lost
        # (and whose retry met our own claim) is recognised as ours.
        lease = Lease(key, f"{owner_id()}:{uuid.uuid4().hex[:8]}", 0.0)
        version, taken_over = self._take(key, lease)
        while version is None:
            time.sleep(self.poll)
            hit = self.read(key)
            if hit is not None:
                yield hit
                return
            version, taken_over = self._take(key, lease)
        held = {"version": version}
        made = False

        def renew() -> None:
            try:
                version = self._put_claim(key, lease, held["version"], ttl=self.claim_ttl)
            except StorageError:
                return  # tried again at the next tick, a third of the TTL later
            if version is None:
                lease.lost = True  # it expired and another machine took it over
            else:
                held["version"] = version

        def release() -> None:
            if made:
                return  # the audio is stored: nobody looks at the claim again
            with contextlib.suppress(StorageError):  # unreleased, it simply expires
                self._put_claim(key, lease, held["version"], ttl=0.0)

        with kept_alive(lease, self.claim_ttl, renew, release):
            # A claim taken over may be one its maker released after storing the audio.
            yield self.read(key) if taken_over else None
            made = True

    def _take(self, key: str, lease: Lease) -> tuple[str | None, bool]:
        """(the claim's new version, whether it replaced an earlier claim) if this machine
        now holds it, else (None, False)."""
        version = self._put_claim(key, lease, None, ttl=self.claim_ttl)
        if version is not None:
            return version, False
        found = self.storage.read_object_version(CLAIMS + key + ".json")
        if found is None:
            return None, False  # gone in between: try again
        data, current = found
        try:
            claim = json.loads(data)
            owner, expires = claim.get("owner"), float(claim.get("expires", 0))
        except (ValueError, TypeError, AttributeError):
            owner, expires = None, 0.0  # a torn or foreign claim counts as expired
        if owner == lease.owner:
            return current, True  # ours: the answer to our PUT was lost
        if expires >= time.time():
            return None, False  # held: wait for the audio (or for the claim to expire)
        return self._put_claim(key, lease, current, ttl=self.claim_ttl), True

    def _put_claim(self, key: str, lease: Lease, version: str | None, *, ttl: float
                   ) -> str | None:
        lease.expires_at = time.time() + ttl if ttl else 0.0
        body = json.dumps({"key": key, "owner": lease.owner, "expires": lease.expires_at})
        return self.storage.write_object_if(CLAIMS + key + ".json", body.encode(),
                                            content_type="application/json", version=version)


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

    @contextlib.contextmanager
    def claimed(self, key: str) -> Iterator[Pcm | None]:
        with self.shared.claimed(key) as hit:
            if hit is not None:
                self.local.write(key, hit)
            yield hit


def obtain(cache: AudioCache, key: str, locks: Path, make: Callable[[], Pcm]
           ) -> tuple[Pcm, bool]:
    """The audio of ``key``: from the cache, or made by ``make()`` and stored, at most once
    however many threads, processes and machines ask. Returns (audio, whether made)."""
    with file_lock(locks / f"{key[:3]}.lock"):
        hit = cache.read(key)
        if hit is not None:
            return hit, False
        with cache.claimed(key) as made_elsewhere:
            if made_elsewhere is not None:
                return made_elsewhere, False
            pcm = make()
            cache.write(key, pcm)
            return pcm, True
