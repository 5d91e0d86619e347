"""The pipeline API's TTS options reach the ElevenLabs voice: the real elevenlabs SDK, over
HTTP, against the fake ElevenLabs server on 127.0.0.1. Assertions are on the requests the fake
received, its billing counter and the manifests; nothing of ours is stood in for."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from esl_build import ValidationError, create_pipeline
from esl_build.testing.fake_elevenlabs import VOICES, FakeElevenLabs
from esl_build.testing.repo import LessonsRepo, lesson_text
from esl_build.voices.catalog import catalog_bytes

CAFE = ("Alex: Hi Mara, how are you today?", "Mara: I'm fine, thanks. And you?",
        "Alex: Great. Let's order a coffee.")
STATION = ("Alex: Where is the station, please?", "Mara: It is next to the old bank.",
           "Alex: Thank you very much.")


@pytest.fixture
def fake():
    with FakeElevenLabs() as server:
        yield server


@pytest.fixture
def repo(tmp_path: Path) -> LessonsRepo:
    repo = LessonsRepo.create(tmp_path / "repo", {
        "cafe": lesson_text(CAFE, title="Cafe"),
        "station": lesson_text(STATION, title="Station")})
    repo.path("configs/elevenlabs.voices.json").write_bytes(catalog_bytes(list(VOICES)))
    return repo


def pipeline_for(repo: LessonsRepo, fake: FakeElevenLabs, **env: str) -> Any:
    """The deployment speaks monologue by default: a call's options must override it."""
    return create_pipeline(cwd=repo.root, secrets={
        **fake.env, "ESL_BUILD_LOCAL_BUCKET": "bucket", "ELEVENLABS_TTS_MODE": "monologue",
        **env})


def texts(request: dict[str, Any]) -> list[str]:
    body = request["body"]
    return [turn["text"] for turn in body["inputs"]] if request["kind"] == "dialogue" \
        else [body["text"]]


def tts_inputs(repo: LessonsRepo, lesson_id: str) -> dict[str, Any]:
    manifest = json.loads(repo.path(f"lessons/{lesson_id}.manifest.json").read_text())
    inputs: dict[str, Any] = manifest["stages"]["tts"]["inputs"]
    return inputs


def test_tts_mode_dialogue_uses_text_to_dialogue(repo, fake):
    result = pipeline_for(repo, fake).new_assignment({"md": "cafe", "tts_mode": "dialogue",
                                                      "dialogue_language": "EN",
                                                      "dialogue_seed": 7})
    assert result.step("tts").state == "ran" and not result.notes
    requests = fake.synthesis_requests
    assert {r["kind"] for r in requests} == {"dialogue"}
    assert [t for r in requests for t in texts(r)] == [line.split(": ", 1)[1] for line in CAFE]
    assert {(r["body"]["model_id"], r["body"]["language_code"], r["body"]["seed"])
            for r in requests} == {("eleven_v3", "en", 7)}
    settings = tts_inputs(repo, "cafe")["settings"]
    assert (settings["mode"], settings["language"], settings["seed"]) == ("dialogue", "en", 7)


def test_model_and_output_format_reach_each_request_and_the_fingerprint(repo, fake):
    pipeline = pipeline_for(repo, fake)
    flags = {"md": "cafe", "model": "eleven_flash_v2_5", "output_format": "pcm_16000"}
    pipeline.new_assignment(flags)
    requests = fake.synthesis_requests
    assert len(requests) == len(CAFE) and {r["kind"] for r in requests} == {"tts"}
    assert {(r["body"]["model_id"], r["query"]["output_format"]) for r in requests} == {
        ("eleven_flash_v2_5", "pcm_16000")}

    billed = fake.characters_billed
    again = pipeline.new_assignment(flags)  # the same options: nothing to do, nothing billed
    assert again.step("tts").state == "up-to-date" and fake.characters_billed == billed
    plan = pipeline.new_assignment({**flags, "model": "eleven_turbo_v2_5", "dry_run": True})
    assert plan.step("tts").state == "would-run"  # another model is other audio
    default = pipeline.new_assignment({"md": "cafe", "dry_run": True})
    assert default.step("tts").state == "would-run"  # the deployment's model, again
    assert fake.characters_billed == billed


def test_two_concurrent_jobs_with_different_options_do_not_mix(repo, fake):
    pipeline = pipeline_for(repo, fake)
    jobs = {"cafe": {"tts_mode": "dialogue", "output_format": "pcm_22050"},
            "station": {"model": "eleven_flash_v2_5", "output_format": "pcm_16000",
                        "dialogue_stability": 0.25}}
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def job(lesson_id: str) -> None:
        try:
            results[lesson_id] = pipeline.new_assignment({"md": lesson_id, **jobs[lesson_id]},
                                                         run_id=f"job-{lesson_id}")
        except BaseException as error:  # reported below
            errors.append(error)

    fake.hold()  # both jobs' first requests are in flight before either is answered
    threads = [threading.Thread(target=job, args=(lesson_id,)) for lesson_id in jobs]
    for thread in threads:
        thread.start()
    try:
        for _ in range(400):
            if {texts(r)[0] for r in fake.synthesis_requests} >= {
                    "Hi Mara, how are you today?", "Where is the station, please?"}:
                break
            threading.Event().wait(0.025)
        else:
            pytest.fail("the two jobs' requests were not in flight together")
    finally:
        fake.release()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and set(results) == set(jobs)

    cafe_lines = {line.split(": ", 1)[1] for line in CAFE}
    for request in fake.synthesis_requests:
        if set(texts(request)) <= cafe_lines:
            assert request["kind"] == "dialogue"
            assert request["query"]["output_format"] == "pcm_22050"
            assert request["body"]["model_id"] == "eleven_v3"
        else:
            assert request["kind"] == "tts"
            assert request["query"]["output_format"] == "pcm_16000"
            assert request["body"]["model_id"] == "eleven_flash_v2_5"
            assert request["body"]["voice_settings"]["stability"] == 0.25
    assert tts_inputs(repo, "cafe")["settings"]["format"] == "pcm_22050"
    assert tts_inputs(repo, "station")["settings"]["stability"] == 0.25
    assert tts_inputs(repo, "station")["settings"]["mode"] == "monologue"


def test_a_rerun_takes_the_same_options(repo, fake):
    pipeline = pipeline_for(repo, fake)
    pipeline.new_assignment({"md": "station"})
    fake.reset_counters()
    pipeline.rerun_assignment({"md": "station", "steps": ["tts"], "tts_mode": "dialogue"})
    assert {r["kind"] for r in fake.synthesis_requests} == {"dialogue"}
    assert tts_inputs(repo, "station")["settings"]["mode"] == "dialogue"


def test_the_accent_preference_reaches_automatic_casting(repo, fake):
    pipeline = pipeline_for(repo, fake)
    plain = pipeline.new_assignment({"md": "cafe", "dry_run": True})
    assert plain.step("tts").state == "would-run"
    pipeline.new_assignment({"md": "cafe"})
    same = pipeline.new_assignment({"md": "cafe", "dry_run": True})
    assert same.step("tts").state == "up-to-date"
    accent = pipeline.new_assignment({"md": "cafe", "dry_run": True,
                                      "accent_preference": "british"})
    assert accent.step("tts").state == "would-run"  # another accent may cast other voices


def test_bad_tts_options_name_the_field_and_send_nothing(repo, fake):
    pipeline = pipeline_for(repo, fake)
    for flags, field in (({"output_format": "mp3_44100_128"}, "output_format"),
                         ({"model": "../x"}, "model"), ({"dialogue_language": "eng"},
                                                        "dialogue_language"),
                         ({"tts_mode": "duet"}, "tts_mode")):
        with pytest.raises(ValidationError) as raised:
            pipeline.new_assignment({"md": "cafe", **flags})
        assert raised.value.field == field
    assert fake.requests == [] and not repo.path("lessons/cafe.manifest.json").exists()


def test_the_espeak_voice_says_it_does_not_read_the_options(tmp_path):
    repo = LessonsRepo.create(tmp_path / "offline", {"cafe": lesson_text(CAFE)})
    result = create_pipeline(cwd=repo.root).new_assignment(
        {"md": "cafe", "dry_run": True, "tts_mode": "dialogue", "model": "eleven_v3"})
    assert result.notes == ("tts_mode, model: not used by the espeak voice",)
