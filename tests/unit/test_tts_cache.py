"""The audio cache keeps what was paid for, even when the shared bucket refuses it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from esl_build.errors import StorageError
from esl_build.services.protocols import Pcm
from esl_build.tts_cache import FolderCache, TieredCache, obtain


class RefusingBucket:
    """A shared cache whose writes fail (an S3 outage outlasting the client's retries)."""

    def read(self, key: str) -> Pcm | None:
        return None

    def write(self, key: str, pcm: Pcm) -> None:
        raise StorageError("cannot write cache/tts/key.pcm: 503 SlowDown", retryable=True)

    def contains(self, key: str) -> bool:
        return False

    @contextlib.contextmanager
    def claimed(self, key: str) -> Iterator[Pcm | None]:
        yield None  # no other machine


def test_audio_paid_for_survives_a_failed_bucket_write_and_is_not_made_again(
        tmp_path: Path) -> None:
    cache = TieredCache(FolderCache(tmp_path / "cache"), RefusingBucket())
    made: list[str] = []

    def synthesize() -> Pcm:
        made.append("billed")
        return Pcm(b"\x01\x00" * 10, 24_000)

    with pytest.raises(StorageError):
        obtain(cache, "abc123", tmp_path / "locks", synthesize)
    pcm, fresh = obtain(cache, "abc123", tmp_path / "locks", synthesize)
    assert made == ["billed"] and not fresh
    assert pcm == Pcm(b"\x01\x00" * 10, 24_000)
