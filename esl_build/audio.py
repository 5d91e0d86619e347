"""Pure audio helpers over ``Pcm`` (mono, signed 16-bit little-endian).

A lesson's audio is built as PCM: each segment is voiced, the parts are joined with exactly sized
silences (resampled to one rate when voices differ, e.g. ElevenLabs' 24 kHz and espeak's
22.05 kHz), and the whole is encoded to MP3 *once*. Joining MP3 files instead would add each
encoder's delay and padding (~60 ms) at every join.

Everything here is deterministic: the same PCM and tags give a byte-identical file, so the
sha256 recorded in a manifest changes only when what is heard (or its tags) changes.
"""

from __future__ import annotations

import io
import os
import sys
import uuid
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import lameenc
from mutagen.id3 import ID3, TALB, TIT2, TPE1
from mutagen.mp3 import MP3

from esl_build.services.protocols import Pcm

_UTF8 = 3  # ID3 text encoding; mutagen rewrites it to UTF-16 when saving v2.3


def silence(seconds: float, rate: int) -> Pcm:
    """``seconds`` of digital silence at ``rate`` Hz, rounded to the nearest whole sample."""
    if seconds < 0:
        raise ValueError(f"silence cannot be negative: {seconds} s")
    return Pcm(bytes(2 * round(seconds * rate)), rate)


def resample(pcm: Pcm, rate: int) -> Pcm:
    """``pcm`` at ``rate`` Hz by linear interpolation (integer arithmetic, so deterministic).

    The result holds ``round(len * rate / pcm.rate)`` samples: the duration is kept. There is no
    low-pass filter, which is inaudible for speech between 22.05 and 24 kHz, the case we have.
    """
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, not {rate}")
    if rate == pcm.rate:
        return pcm
    source = _samples(pcm)
    count = (len(source) * rate + pcm.rate // 2) // pcm.rate
    if not source or not count:
        return Pcm(b"", rate)
    source.append(source[-1])  # the last output sample may read one past the end
    return _pcm(array("h", _interpolate(source, pcm.rate, rate, count)), rate)


def join(parts: Sequence[Pcm], gap_seconds: float, rate: int | None = None) -> Pcm:
    """The parts in order, ``gap_seconds`` of silence between each two (none before or after).

    Parts are resampled to ``rate``; by default to the highest rate among them, so no part loses
    detail.
    """
    if rate is None:
        if not parts:
            raise ValueError("join() needs a rate when there are no parts")
        rate = max(part.rate for part in parts)
    gap = silence(gap_seconds, rate).samples
    return Pcm(gap.join(resample(part, rate).samples for part in parts), rate)


def encode_mp3(pcm: Pcm, *, bitrate_kbps: int = 64) -> bytes:
    """``pcm`` as a mono constant-bitrate MP3 at ``pcm.rate``; the same PCM gives the same bytes."""
    stream = Mp3Stream(pcm.rate, bitrate_kbps=bitrate_kbps)
    stream.add(pcm)
    return stream.finish()


class Mp3Stream:
    """An MP3 encoded as its PCM arrives, so a track is ready moments after its last part.

    The same samples give the same bytes however they are split between ``add`` calls (LAME
    buffers whole frames), so ``encode_mp3(join(parts, gap))`` and adding the parts and gaps
    one by one agree byte for byte. Parts at another rate are resampled to ``rate``. LAME
    releases the GIL while it encodes: other threads' requests go on meanwhile."""

    def __init__(self, rate: int, *, bitrate_kbps: int = 64):
        self.rate = rate
        self.samples = 0
        self._encoder = lameenc.Encoder()
        self._encoder.set_in_sample_rate(rate)
        self._encoder.set_channels(1)
        self._encoder.set_bit_rate(bitrate_kbps)
        self._encoder.set_quality(2)  # LAME's "high quality" preset: slower, same determinism
        self._chunks: list[bytes] = []

    @property
    def seconds(self) -> float:
        return self.samples / self.rate

    def add(self, pcm: Pcm) -> None:
        """Append ``pcm`` (resampled to the stream's rate)."""
        samples = resample(pcm, self.rate).samples
        self.samples += len(samples) // 2
        self._chunks.append(bytes(self._encoder.encode(samples)))

    def pause(self, seconds: float) -> None:
        """Append ``seconds`` of silence."""
        self.add(silence(seconds, self.rate))

    def finish(self) -> bytes:
        """The whole MP3; the stream takes nothing more."""
        self._chunks.append(bytes(self._encoder.flush()))
        return b"".join(self._chunks)


def write_mp3(path: str | os.PathLike[str], mp3_bytes: bytes, *, title: str | None,
              album: str | None = None, artist: str | None = None) -> None:
    """Write ``mp3_bytes`` to ``path`` with ID3v2.3 tags, atomically.

    The file appears complete or not at all: it is written to a temporary file in the same
    directory, fsynced and renamed over ``path``. Tags that are None are left out; with none at
    all the file is ``mp3_bytes`` as they are.
    """
    path = Path(path)
    data = _tagged(mp3_bytes, {TIT2: title, TALB: album, TPE1: artist})
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "xb") as file:  # "x": a new file, permissions from the umask
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def mp3_seconds(path: str | os.PathLike[str]) -> float:
    """The playing time of the MP3 at ``path``, as mutagen reads it."""
    return float(MP3(path).info.length)  # type: ignore[no-untyped-call, attr-defined]


def _tagged(mp3_bytes: bytes, texts: dict[type, str | None]) -> bytes:
    """``mp3_bytes`` with an ID3v2.3 tag holding the given text frames (mutagen adds nothing else:
    no dates, no encoder name, so the bytes depend on the inputs only)."""
    frames = [frame(encoding=_UTF8, text=[text]) for frame, text in texts.items() if text]
    if not frames:
        return mp3_bytes
    tags = ID3()  # type: ignore[no-untyped-call]
    for frame in frames:
        tags.add(frame)  # type: ignore[no-untyped-call]
    buffer = io.BytesIO(mp3_bytes)
    tags.save(buffer, v2_version=3)
    return buffer.getvalue()


def _samples(pcm: Pcm) -> array[int]:
    samples = array("h", pcm.samples)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _pcm(samples: array[int], rate: int) -> Pcm:
    if sys.byteorder == "big":
        samples.byteswap()
    return Pcm(samples.tobytes(), rate)


def _interpolate(source: array[int], rate_in: int, rate_out: int, count: int) -> Iterator[int]:
    # Output sample i sits at input position i * rate_in / rate_out = j + frac / rate_out.
    for position in range(0, count * rate_in, rate_in):
        j, frac = divmod(position, rate_out)
        left = source[j]
        yield left + (source[j + 1] - left) * frac // rate_out
