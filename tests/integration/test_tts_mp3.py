"""The lesson MP3 decodes in full, by an independent decoder (miniaudio, a wheel), to the
duration its parts add up to: the lead, every request's audio, the measured silences between
them and the tail; and it carries the ID3 title, artist (student) and album. For both voices:
ElevenLabs (through the SDK, against the fake) and the embedded espeak."""

from __future__ import annotations

import json
import math
from array import array

import miniaudio
import pytest
from mutagen.id3 import ID3

from esl_build.stages.tts import ASSEMBLY
from esl_build.testing.fake_elevenlabs import SECONDS_PER_CHARACTER, VOICES, FakeElevenLabs
from esl_build.testing.repo import LessonsRepo, lesson_text
from esl_build.tts_cache import decode
from esl_build.voices.catalog import catalog_bytes

LINES = ("Alex: Hi Mara, how are you today?", "Mara: I'm fine, thanks. And you?",
         "Alex: Great. Let's practise our English.", "Mara: Good idea. Where shall we start?",
         "Alex: Let's order a coffee first.", "Mara: Two cappuccinos, please.")
LEAD, GAP = ASSEMBLY["lead"], ASSEMBLY["gap"]


def decoded(repo: LessonsRepo) -> miniaudio.DecodedSoundFile:
    return miniaudio.mp3_read_s16(repo.path("build/unit1/audio.mp3").read_bytes())


def loudness(sound: miniaudio.DecodedSoundFile, start: float, end: float) -> float:
    """RMS of the samples between ``start`` and ``end`` seconds (mono)."""
    samples: array[int] = sound.samples
    part = samples[int(start * sound.sample_rate):int(end * sound.sample_rate)]
    return math.sqrt(sum(s * s for s in part) / max(1, len(part)))


def tts_outputs(repo: LessonsRepo) -> dict:
    manifest = json.loads(repo.path("lessons/unit1.manifest.json").read_text("utf-8"))
    return manifest["stages"]["tts"]["outputs"]


def assert_tags(repo: LessonsRepo) -> None:
    tags = ID3(repo.path("build/unit1/audio.mp3"))
    assert (str(tags["TIT2"]), str(tags["TPE1"]), str(tags["TALB"])) == (
        "Café", "Anna", "esl-build A2")


@pytest.mark.parametrize("mode", ["monologue", "dialogue"])
def test_an_elevenlabs_mp3_decodes_to_its_lines_silences_and_tail(tmp_path, mode):
    with FakeElevenLabs() as fake:
        repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text(LINES, title="Café")},
                                  env={**fake.env, "ELEVENLABS_TTS_MODE": mode,
                                       "ELEVENLABS_SILENCE_TAIL_SECONDS": "1.5"})
        repo.path("configs/elevenlabs.voices.json").write_bytes(catalog_bytes(list(VOICES)))
        run = repo.doit()
        assert run.returncode == 0, run.stdout + run.stderr
    requests = tts_outputs(repo)["requests"]
    assert requests == (len(LINES) if mode == "monologue" else len(fake.synthesis_requests))
    line_audio = sum(len(line.split(": ", 1)[1]) for line in LINES) * SECONDS_PER_CHARACTER
    expected = LEAD + line_audio + GAP * (requests - 1) + 1.5
    sound = decoded(repo)
    assert (sound.nchannels, sound.sample_rate) == (1, 24_000)
    assert sound.num_frames / sound.sample_rate == pytest.approx(expected, rel=0.05)
    assert loudness(sound, 0.0, LEAD - 0.05) < 50  # the lead is silent...
    assert loudness(sound, LEAD + 0.1, LEAD + 0.6) > 1000  # ...then the first line is heard
    assert loudness(sound, expected - 1.4, expected - 0.1) < 50  # and the tail is silent
    assert_tags(repo)


def test_an_espeak_mp3_decodes_to_its_lines_silences_and_tail(tmp_path):
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text(LINES, title="Café")})
    run = repo.doit()
    assert run.returncode == 0, run.stdout + run.stderr
    entries = [decode(p.read_bytes()) for p in sorted(repo.path("build/cache/tts").iterdir())]
    assert len(entries) == tts_outputs(repo)["requests"] == len(LINES)  # one entry per line
    line_audio = sum(entry.seconds for entry in entries if entry is not None)
    expected = LEAD + line_audio + GAP * (len(entries) - 1) + ASSEMBLY["tail"]
    sound = decoded(repo)
    assert (sound.nchannels, sound.sample_rate) == (1, entries[0].rate if entries[0] else 0)
    assert sound.num_frames / sound.sample_rate == pytest.approx(expected, rel=0.05)
    assert tts_outputs(repo)["seconds"] == pytest.approx(expected, rel=0.01)
    assert loudness(sound, 0.0, LEAD - 0.05) < 50
    assert loudness(sound, 0.0, expected) > 100
    assert_tags(repo)
