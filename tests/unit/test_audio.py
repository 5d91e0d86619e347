"""The audio helpers: exact silences and joins, resampling, MP3 encoding, tagging and timing."""

from __future__ import annotations

import hashlib
import math
import struct

import pytest
from mutagen.id3 import ID3
from mutagen.mp3 import MP3

from esl_build.audio import encode_mp3, join, mp3_seconds, resample, silence, write_mp3
from esl_build.services.protocols import Pcm


def tone(seconds: float, rate: int = 22050, hz: float = 220.0) -> Pcm:
    count = round(seconds * rate)
    return Pcm(b"".join(struct.pack("<h", round(8000 * math.sin(2 * math.pi * hz * i / rate)))
                        for i in range(count)), rate)


def constant(value: int, count: int, rate: int) -> Pcm:
    return Pcm(struct.pack("<h", value) * count, rate)


def values(pcm: Pcm) -> list[int]:
    return [sample for (sample,) in struct.iter_unpack("<h", pcm.samples)]


def test_silence_has_exactly_the_samples_asked_for():
    assert silence(0.5, 22050) == Pcm(bytes(2 * 11025), 22050)
    assert silence(1.2, 24000).seconds == 1.2
    assert silence(0, 22050).samples == b""
    with pytest.raises(ValueError, match="negative"):
        silence(-0.1, 22050)


def test_join_puts_exact_silences_between_parts_only():
    a, b, c = constant(100, 3, 1000), constant(200, 2, 1000), constant(300, 1, 1000)
    joined = join([a, b, c], gap_seconds=0.004)
    assert values(joined) == [100] * 3 + [0] * 4 + [200] * 2 + [0] * 4 + [300]
    assert joined.rate == 1000


def test_join_resamples_to_the_highest_rate_or_the_one_given():
    eleven, espeak = constant(1000, 24000, 24000), constant(-1000, 22050, 22050)  # 1 s each
    joined = join([eleven, espeak], gap_seconds=0.5)
    assert joined.rate == 24000
    assert values(joined) == [1000] * 24000 + [0] * 12000 + [-1000] * 24000
    assert join([eleven, espeak], gap_seconds=0.5, rate=22050).seconds == 2.5


def test_join_of_nothing_needs_a_rate():
    assert join([], gap_seconds=1, rate=22050) == Pcm(b"", 22050)
    with pytest.raises(ValueError, match="rate"):
        join([], gap_seconds=1)


def test_resample_keeps_duration_and_interpolates_linearly():
    ramp = Pcm(b"".join(struct.pack("<h", 100 * i) for i in range(11)), 1000)
    doubled = resample(ramp, 2000)
    assert values(doubled)[:21] == [50 * i for i in range(21)]
    assert doubled.seconds == pytest.approx(ramp.seconds)
    voice = tone(1.0)
    assert resample(voice, 24000).seconds == pytest.approx(1.0)
    assert resample(voice, 22050) is voice
    assert resample(Pcm(b"", 22050), 24000) == Pcm(b"", 24000)


def test_resample_stays_in_range_and_is_deterministic():
    loud = Pcm(struct.pack("<4h", 32767, -32768, 32767, -32768), 22050)
    assert all(-32768 <= v <= 32767 for v in values(resample(loud, 24000)))
    voice = tone(0.3)
    assert resample(voice, 24000) == resample(voice, 24000)


def test_encoded_mp3_plays_for_as_long_as_the_pcm(tmp_path):
    pcm = join([tone(1.5), tone(1.0, hz=330)], gap_seconds=0.5)  # 3.0 s
    path = tmp_path / "lesson.mp3"
    write_mp3(path, encode_mp3(pcm), title="Unit 1")
    assert mp3_seconds(path) == pytest.approx(3.0, rel=0.03)
    info = MP3(path).info
    assert (info.sample_rate, info.channels, info.bitrate) == (22050, 1, 64000)


def test_encoding_is_deterministic_and_follows_the_bitrate():
    pcm = tone(2.0)
    assert encode_mp3(pcm) == encode_mp3(pcm)
    assert len(encode_mp3(pcm, bitrate_kbps=32)) < len(encode_mp3(pcm))
    assert len(encode_mp3(pcm)) == pytest.approx(64000 / 8 * 2.0, rel=0.05)


def test_write_mp3_tags_are_id3v23_and_readable(tmp_path):
    path = tmp_path / "audio.mp3"
    write_mp3(path, encode_mp3(tone(0.5)), title="Small Habits, Big Savings — café",
              album="B1 · Priya", artist="esl-build")
    tags = ID3(path)
    assert tags.version[:2] == (2, 3)
    assert str(tags["TIT2"]) == "Small Habits, Big Savings — café"
    assert str(tags["TALB"]) == "B1 · Priya"
    assert str(tags["TPE1"]) == "esl-build"
    assert sorted(tags.keys()) == ["TALB", "TIT2", "TPE1"]  # no dates, no encoder stamp


def test_write_mp3_gives_byte_identical_files_for_the_same_inputs(tmp_path):
    mp3 = encode_mp3(tone(0.5))
    digests = set()
    for name in ("a.mp3", "b.mp3", "a.mp3"):
        write_mp3(tmp_path / name, mp3, title="Unit 1", album="A2")
        digests.add(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert len(digests) == 1


def test_write_mp3_without_tags_writes_the_bytes_as_they_are(tmp_path):
    mp3 = encode_mp3(tone(0.2))
    write_mp3(tmp_path / "plain.mp3", mp3, title=None)
    assert (tmp_path / "plain.mp3").read_bytes() == mp3


def test_write_mp3_replaces_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "audio.mp3"
    path.write_bytes(b"an older, longer file" * 1000)
    write_mp3(path, encode_mp3(tone(0.2)), title="New")
    assert str(ID3(path)["TIT2"]) == "New"
    assert [p.name for p in tmp_path.iterdir()] == ["audio.mp3"]


def test_write_mp3_into_a_missing_folder_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_mp3(tmp_path / "missing" / "audio.mp3", b"", title="x")
    assert list(tmp_path.iterdir()) == []
