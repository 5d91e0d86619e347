"""ElevenLabsVoice in-process: the real SDK over HTTP against the fake server (fast cases:
requests, keys, chunking, throttling, retries, errors)."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from esl_build.config import Config
from esl_build.errors import VoiceError
from esl_build.lesson.model import Frontmatter, Lesson, Segment, StudyText
from esl_build.services.elevenlabs import (
    DIALOGUE_CHUNK_CHARACTERS,
    ElevenLabsVoice,
    chunk_turns,
)
from esl_build.services.protocols import SpeechRequest, Turn
from esl_build.settings import ElevenLabsSettings, Secret
from esl_build.testing.fake_elevenlabs import SENTINEL_KEY, FakeElevenLabs

OWEN, RUTH = "fake-voice-owen-0002", "fake-voice-ruth-0003"


@pytest.fixture
def fake():
    with FakeElevenLabs() as server:
        yield server


def make_voice(fake: FakeElevenLabs, tmp_path: Path, **changes) -> ElevenLabsVoice:
    # A distinct base URL per test gives each its own per-key limiter.
    settings = ElevenLabsSettings(api_key=Secret(SENTINEL_KEY), base_url=fake.url,
                                  timeout=2.0)
    return ElevenLabsVoice(dataclasses.replace(settings, **changes), Config(), tmp_path,
                           tmp_path)


def dialogue(*turns: tuple[str, str]) -> Lesson:
    segments = tuple(Segment(s, t, t, n) for n, (s, t) in enumerate(turns, start=10))
    return Lesson("unit1", "lessons/unit1.md",
                  Frontmatter("T", "Anna", "A2", ("x",), "generate"), (),
                  StudyText(9, None, "dialogue", segments))


def line(text: str, voice: str = OWEN) -> SpeechRequest:
    return SpeechRequest((Turn(voice, text),))


def test_dialogue_requests_send_every_turn_in_order_with_its_voice(fake, tmp_path):  # §8.11
    voice = make_voice(fake, tmp_path, stability=0.7, seed=42, language="en")
    subject = dialogue(("Alex", "Hello there!"), ("Mara", "Hi, how are you?"),
                       ("Alex", "I'm great!"))
    [request] = voice.requests(subject, {"Alex": OWEN, "Mara": RUTH})
    pcm = voice.synthesize(request)
    body = fake.synthesis_requests[-1]["body"]
    assert body["inputs"] == [{"text": "Hello there!", "voice_id": OWEN},
                              {"text": "Hi, how are you?", "voice_id": RUTH},
                              {"text": "I'm great!", "voice_id": OWEN}]
    assert (body["model_id"], body["settings"], body["seed"], body["language_code"]) == (
        "eleven_v3", {"stability": 0.7}, 42, "en")
    assert fake.synthesis_requests[-1]["query"]["output_format"] == "pcm_24000"
    assert pcm.rate == 24000 and pcm.seconds == pytest.approx(
        len("Hello there!Hi, how are you?I'm great!") * 0.05, abs=0.01)


def test_request_keys_change_with_everything_that_shapes_the_audio(fake, tmp_path):  # §8.14
    base = make_voice(fake, tmp_path)
    request = SpeechRequest((Turn(OWEN, "Hello."), Turn(RUTH, "Hi.")), "dialogue")
    keys = {base.request_key(request)}
    for changes in ({"seed": 1}, {"stability": 0.5}, {"language": "de"},
                    {"output_format": "pcm_16000"}):
        keys.add(make_voice(fake, tmp_path, **changes).request_key(request))
    keys.add(base.request_key(SpeechRequest((Turn(OWEN, "Hello!"), Turn(RUTH, "Hi.")),
                                            "dialogue")))
    keys.add(base.request_key(SpeechRequest((Turn(RUTH, "Hello."), Turn(OWEN, "Hi.")),
                                            "dialogue")))
    keys.add(base.request_key(SpeechRequest((Turn(OWEN, "Hello."),), "monologue")))
    keys.add(make_voice(fake, tmp_path, model="eleven_flash_v2_5").request_key(
        SpeechRequest((Turn(OWEN, "Hello."),), "monologue")))
    assert len(keys) == 9 and all(len(k) == 64 for k in keys)
    context = SpeechRequest((Turn(OWEN, "Hello."),), "monologue", "Before.", "After.")
    assert base.request_key(context) == base.request_key(
        SpeechRequest((Turn(OWEN, "Hello."),), "monologue"))  # neighbours are not in the key


def test_chunks_respect_the_limits_and_an_edit_moves_no_other_boundary():  # §8.13
    assert chunk_turns([], 2000) == []
    turns = [Turn(f"v{n % 3}", f"Turn number {n} says something fairly ordinary.")
             for n in range(120)]
    chunks = chunk_turns(turns, DIALOGUE_CHUNK_CHARACTERS)
    assert [t for c in chunks for t in c] == turns and len(chunks) > 5
    assert all(sum(len(t.text) for t in c) <= DIALOGUE_CHUNK_CHARACTERS for c in chunks)
    many = [Turn(f"v{n}", "Hi.") for n in range(25)]
    assert all(len({t.voice_id for t in c}) <= 10 for c in chunk_turns(many, 2000))
    for index in (0, 37, 119):
        edited = [*turns]
        edited[index] = Turn(turns[index].voice_id, "An edited turn, quite different.")
        after = chunk_turns(edited, DIALOGUE_CHUNK_CHARACTERS)
        assert len(set(chunks) - set(after)) <= 2  # its chunk, and at most the next one


def test_a_line_too_long_for_the_model_is_refused_naming_its_line(fake, tmp_path):
    voice = make_voice(fake, tmp_path)
    with pytest.raises(VoiceError, match=r"lessons/unit1.md:11: this line has 3001 characters; "
                       "eleven_v3 takes at most 3000"):
        voice.requests(dialogue(("Alex", "Hi."), ("Mara", "x" * 3001)),
                       {"Alex": OWEN, "Mara": RUTH})
    assert fake.requests == []


def test_too_many_concurrent_requests_lowers_the_concurrency_and_queues(fake, tmp_path):
    fake.max_concurrency, fake.latency = 2, 0.05
    voice = make_voice(fake, tmp_path, concurrency=6)
    results = []
    threads = [threading.Thread(target=lambda n=n: results.append(
        voice.synthesize(line(f"Line number {n}.")))) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 12 and fake.characters_billed == sum(
        len(f"Line number {n}.") for n in range(12))
    assert len(fake.synthesis_requests) > 12  # some were refused with 429 and queued again
    assert voice.limiter.limit <= 3 and fake.peak_concurrency <= 2


def test_busy_and_server_errors_back_off_and_retry_then_give_up(fake, tmp_path):
    voice = make_voice(fake, tmp_path)
    fake.fail_next(429, "system_busy", times=1, retry_after=0.01)
    fake.fail_next(500, "internal_error", times=1, retry_after=0.01)
    assert voice.synthesize(line("Hello.")).samples
    assert len(fake.synthesis_requests) == 3 and fake.characters_billed == len("Hello.")
    fake.fail_next(503, "service_unavailable", times=10, retry_after=0.01)
    with pytest.raises(VoiceError, match=r"injected service_unavailable \(HTTP 503 "
                       r"service_unavailable\) after 5 tries") as failure:
        voice.synthesize(line("Again."))
    assert failure.value.retryable


def test_a_validation_error_fails_at_once_with_elevenlabs_message(fake, tmp_path):
    voice = make_voice(fake, tmp_path)
    with pytest.raises(VoiceError, match="A voice with the voice_id nobody was not found") \
            as failure:
        voice.synthesize(line("Hello.", voice="nobody"))
    assert not failure.value.retryable and len(fake.synthesis_requests) == 1
    assert SENTINEL_KEY not in str(failure.value)


def test_a_slow_answer_times_out_and_is_retried(fake, tmp_path):
    voice = make_voice(fake, tmp_path, timeout=0.3)
    fake.latency = 0.6
    timer = threading.Timer(0.5, lambda: setattr(fake, "latency", 0.0))
    timer.start()
    try:
        assert voice.synthesize(line("Slow.")).samples
    finally:
        timer.cancel()
    assert len(fake.synthesis_requests) >= 2


def test_a_wrong_key_is_refused_without_showing_it(fake, tmp_path):
    voice = make_voice(fake, tmp_path, api_key=Secret("sk-wrong-key-000"))
    with pytest.raises(VoiceError, match=r"Invalid API key \(HTTP 401 invalid_api_key\)") \
            as failure:
        voice.synthesize(line("Hello."))
    assert "sk-wrong" not in str(failure.value) and fake.characters_billed == 0


def test_the_subscription_is_checked_before_billing(fake, tmp_path):
    voice = make_voice(fake, tmp_path)
    fake.character_limit = 100
    voice.check_budget(100)
    with pytest.raises(VoiceError, match="would bill 101 characters but the ElevenLabs "
                       "subscription has 100 left"):
        voice.check_budget(101)
    assert fake.synthesis_requests == []
