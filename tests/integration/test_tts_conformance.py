"""The predecessor's TTS conformance cases (tts.md §8) that no other test pins, through real
builds: the real doit and the real elevenlabs SDK against the fake on 127.0.0.1.

Where each case lives (flaws fixed and noted there); "here" is this file:

- 1 preview, 4 and 18 default voice: unit/test_voice_casting.py::
  test_without_auto_or_catalog_the_default_voice_is_used; a dry run sends nothing:
  test_elevenlabs.py::test_plan_states_exactly_what_the_build_then_bills
- 2 accent passthrough: unit/test_voice_casting.py::
  test_an_unprofiled_narrator_follows_the_accent_preference
- 3 mapped speakers: unit/test_voice_casting.py::
  test_explicit_maps_win_in_order_profile_student_config; forced monologue: here (§8.10, §8.20)
- 5 unmapped speaker: here (deviation: a speaker missing from speaker_labels is refused at
  its line)
- 6 letter with continuation lines: here
- 7 auto distinct voices, 19 gender fallthrough: unit/test_voice_casting.py
- 8 Markdown stripping: here (deviation: ``_`` is never emphasis, docs/lesson-format.md)
- 9 final-file reuse: test_elevenlabs.py::test_a_dialogue_built_twice_bills_once
- 10 mode selection: here
- 11 dialogue inputs, 13 chunking, 14 hash: test_elevenlabs_voice.py
- 12 dialogue with a default: here
- 15 dialogue request: the key here; body (stability, seed, language) test_elevenlabs_voice.py
  §8.11; a 400's message ::test_a_validation_error_fails_at_once_with_elevenlabs_message;
  timeout ::test_a_slow_answer_times_out_and_is_retried
- 16 a 500 leaves no MP3: here
- 17 no frontmatter: unit/lesson/test_envelope.py::test_no_frontmatter_is_one_error
  (deviation: refused); nothing is sent: here
- 20 line count: here
- 21 extractor: the lesson parser's tests (unit/lesson/)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esl_build.testing.fake_elevenlabs import VOICES, FakeElevenLabs
from esl_build.testing.repo import LessonsRepo, lesson_text
from esl_build.voices.catalog import catalog_bytes

OWEN, RUTH, HUGH = "fake-voice-owen-0002", "fake-voice-ruth-0003", "fake-voice-hugh-0004"


@pytest.fixture
def fake():
    with FakeElevenLabs() as server:
        yield server


def make_repo(root: Path, fake: FakeElevenLabs, text: str, voices: str = "auto: true\n",
              **env: str) -> LessonsRepo:
    repo = LessonsRepo.create(root, {"unit1": text}, env={**fake.env, **env})
    repo.path("configs/elevenlabs.voices.json").write_bytes(catalog_bytes(list(VOICES)))
    repo.path("configs/voices.yml").write_text(voices)
    return repo


def tts_outputs(repo: LessonsRepo) -> dict:
    manifest = json.loads(repo.path("lessons/unit1.manifest.json").read_text("utf-8"))
    return manifest["stages"]["tts"]["outputs"]


def built(repo: LessonsRepo, *args: str) -> None:
    run = repo.doit(*args)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_speaker_missing_from_the_labels_is_refused_at_its_line_and_nothing_is_sent(  # §8.5
        tmp_path, fake):
    text = lesson_text(("Alex: Hello there, Mara.", "Observer: I am only watching."),
                       labels=("Alex", "Mara"))
    repo = make_repo(tmp_path / "repo", fake, text, f"Alex: {OWEN}\ndefault: {RUTH}\n")
    run = repo.doit()
    output = run.stdout + run.stderr
    assert run.returncode != 0 and 'unknown speaker "Observer"' in output
    line = text.splitlines().index("Observer: I am only watching.") + 1
    assert f"lessons/unit1.md:{line}" in output and "Traceback" not in output
    assert fake.requests == []


def test_a_letter_with_continuation_paragraphs_has_one_speaker(tmp_path, fake):  # §8.6
    text = lesson_text(("Alex: Hey there,", "", "I hope this letter finds you well.", "",
                        "Write back soon, and tell me about your week."),
                       labels=("Narrator", "Alex"))
    repo = make_repo(tmp_path / "repo", fake, text, f"Alex: {OWEN}\n")
    built(repo)
    voices = tts_outputs(repo)["voices"]
    assert list(voices) == ["Alex"]  # the Narrator label never speaks: no voice
    assert (voices["Alex"]["id"], voices["Alex"]["source"]) == (OWEN, "config")
    assert {r["body"].get("text") for r in fake.synthesis_requests} == {
        "Hey there,", "I hope this letter finds you well.",
        "Write back soon, and tell me about your week."}
    assert tts_outputs(repo)["mode"] == "monologue"


def test_inline_markdown_is_not_spoken(tmp_path, fake):  # §8.8
    text = lesson_text(("Alex: I **really** *love* `code`!", "Mara: My_file and a_b_c stay."),
                       labels=("Alex", "Mara"))
    repo = make_repo(tmp_path / "repo", fake, text, ELEVENLABS_TTS_MODE="monologue")
    built(repo)
    sent = sorted(r["body"]["text"] for r in fake.synthesis_requests)
    assert sent == ["I really love code!", "My_file and a_b_c stay."]


@pytest.mark.slow
def test_the_mode_follows_the_content_the_variable_and_the_flag(tmp_path, fake):  # §8.10
    monologue = lesson_text(("Alex: I wake up at seven every day.",
                             "Alex: Then I have breakfast."), labels=("Alex",))
    dialogue = lesson_text(("Alex: Good morning!", "Mara: Good morning, Alex."))

    def kinds(text: str, *flags: str, **env: str) -> set[str]:
        repo = make_repo(tmp_path / f"repo{len(list(tmp_path.iterdir()))}", fake, text, **env)
        before = len(fake.synthesis_requests)
        run = repo.esl_build("build", *flags)
        assert run.returncode == 0, run.stdout + run.stderr
        return {r["kind"] for r in fake.synthesis_requests[before:]}

    assert kinds(monologue) == {"tts"}  # auto + monologue content
    assert kinds(dialogue) == {"dialogue"}  # auto + two speakers
    assert kinds(monologue, ELEVENLABS_TTS_MODE="dialogue") == {"dialogue"}
    assert kinds(dialogue, ELEVENLABS_TTS_MODE="monologue") == {"tts"}
    assert kinds(dialogue, "--tts-mode", "dialogue", ELEVENLABS_TTS_MODE="monologue") == {
        "dialogue"}  # the flag beats the variable


def test_a_dialogue_with_one_speaker_unmapped_gives_it_the_default(tmp_path, fake):  # §8.12
    text = lesson_text(("Alex: Shall we start?", "Mara: Yes, please.", "Alex: Page ten."))
    repo = make_repo(tmp_path / "repo", fake, text,
                     f"auto: false\nAlex: {OWEN}\ndefault: {HUGH}\n")
    built(repo)
    voices = tts_outputs(repo)["voices"]
    assert {s: (c["id"], c["source"]) for s, c in voices.items()} == {
        "Alex": (OWEN, "config"), "Mara": (HUGH, "default")}
    [request] = fake.synthesis_requests
    assert request["kind"] == "dialogue"
    assert [i["voice_id"] for i in request["body"]["inputs"]] == [OWEN, HUGH, OWEN]


def test_without_a_key_the_elevenlabs_voice_is_refused_before_anything_is_sent(  # §8.15
        tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, lesson_text(), ESL_BUILD_VOICE="elevenlabs",
                     ELEVENLABS_API_KEY="")
    run = repo.doit()
    output = run.stdout + run.stderr
    assert run.returncode == 2 and "needs ELEVENLABS_API_KEY" in output
    assert "Traceback" not in output and fake.requests == []


@pytest.mark.slow
def test_a_server_error_that_persists_fails_the_stage_and_leaves_no_mp3(tmp_path, fake):  # §8.16
    repo = make_repo(tmp_path / "repo", fake, lesson_text(), ELEVENLABS_TIMEOUT_SECONDS="5")
    fake.fail_next(500, "internal_error", times=100)
    run = repo.doit("tts")
    output = run.stdout + run.stderr
    assert run.returncode != 0 and "internal_error" in output and "after 5 tries" in output
    assert not list(repo.root.rglob("*.mp3")) and fake.characters_billed == 0
    assert not repo.path("lessons/unit1.manifest.json").is_file() or \
        "tts" not in json.loads(repo.path("lessons/unit1.manifest.json").read_text())["stages"]


def test_a_seven_line_dialogue_forced_to_monologue_sends_seven_requests(tmp_path, fake):  # §8.20
    lines = tuple(f"{('Waiter', 'Customer')[n % 2]}: This is line {n} of the order."
                  for n in range(7))
    repo = make_repo(tmp_path / "repo", fake, lesson_text(lines, labels=("Waiter", "Customer")),
                     ELEVENLABS_TTS_MODE="monologue")
    built(repo)
    assert [r["kind"] for r in fake.synthesis_requests] == ["tts"] * 7
    outputs = tts_outputs(repo)
    assert outputs["requests"] == outputs["lines"] == 7 and outputs["seconds"] > 0


def test_a_lesson_without_frontmatter_is_refused_and_nothing_is_sent(tmp_path, fake):  # §8.17
    text = "# Lesson\n\n:::study-text\nNarrator: Hello.\n:::\n"
    repo = make_repo(tmp_path / "repo", fake, text)
    run = repo.doit()
    assert run.returncode != 0 and "the lesson has no frontmatter" in run.stdout + run.stderr
    assert fake.requests == []
