"""The tts stage with the ElevenLabs voice: the real doit and the real elevenlabs SDK, over
HTTP, against the fake ElevenLabs server on 127.0.0.1. Assertions are on the fake's billing
counters (what ElevenLabs would charge), the manifests and the MP3s."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from esl_build.audio import mp3_seconds
from esl_build.testing.fake_elevenlabs import (
    SECONDS_PER_CHARACTER,
    SENTINEL_KEY,
    VOICES,
    FakeElevenLabs,
)
from esl_build.testing.repo import LessonsRepo, lesson_text
from esl_build.voices.catalog import catalog_bytes

CAFE = ("Alex: Hi Mara, how are you today?", "Mara: I'm fine, thanks. And you?",
        "Alex: Great. Let's practise our English.", "Mara: Good idea. Where shall we start?",
        "Alex: Let's order a coffee first.", "Mara: Two cappuccinos, please.")
TRIO = ("Alex: Good morning, everyone.", "Mara: Good morning, Alex.",
        "Sam: Hello, both of you.", "Alex: Shall we begin the lesson?",
        "Mara: Yes, let's start with page ten.", "Sam: I forgot my book at home.")
MONOLOGUE = {"ELEVENLABS_TTS_MODE": "monologue"}


def spoken(lines: tuple[str, ...]) -> list[str]:
    return [line.split(": ", 1)[1] for line in lines]


@pytest.fixture
def fake():
    with FakeElevenLabs() as server:
        yield server


def make_repo(root: Path, fake: FakeElevenLabs, lessons: dict[str, str],
              **env: str) -> LessonsRepo:
    repo = LessonsRepo.create(root, lessons, env={**fake.env, "ESL_BUILD_LOCAL_BUCKET": "bucket",
                                                  **env})
    repo.path("configs/elevenlabs.voices.json").write_bytes(catalog_bytes(list(VOICES)))
    return repo


def build(repo: LessonsRepo, *args: str, env: dict[str, str] | None = None):
    run = repo.doit(*args, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def tts_record(repo: LessonsRepo, lesson_id: str) -> dict:
    manifest = json.loads(repo.path(f"lessons/{lesson_id}.manifest.json").read_text())
    return manifest["stages"]["tts"]


def test_a_dialogue_built_twice_bills_once(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE)})
    first = build(repo)
    assert fake.characters_billed == sum(map(len, spoken(CAFE)))
    assert {r["kind"] for r in fake.synthesis_requests} == {"dialogue"}
    assert first.characters == fake.characters_billed  # the run summary says what was billed
    record = tts_record(repo, "unit1")
    assert record["cost"]["characters"] == fake.characters_billed
    assert record["outputs"]["mode"] == "dialogue"
    voices = record["outputs"]["voices"]
    assert set(voices) == {"Alex", "Mara"} and voices["Alex"]["id"] != voices["Mara"]["id"]
    assert {v["source"] for v in voices.values()} == {"catalog"}
    assert record["inputs"]["voices"] == {s: v["id"] for s, v in voices.items()}

    second = build(repo)
    assert second.ran == set() and fake.characters_billed == sum(map(len, spoken(CAFE)))
    repo.path("build").rename(tmp_path / "old-build")  # a fresh CI checkout: the bucket has it
    build(repo, "tts")
    assert fake.characters_billed == sum(map(len, spoken(CAFE)))


def test_editing_one_line_bills_that_line_in_monologue_mode(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE)}, **MONOLOGUE)
    build(repo)
    before = fake.characters_billed
    repo.edit("unit1", "Mara: Two cappuccinos, please.", "Mara: Two large cappuccinos, please.")
    run = build(repo)
    assert fake.characters_billed - before == len("Two large cappuccinos, please.")
    assert run.characters == len("Two large cappuccinos, please.")
    bodies = [r["body"] for r in fake.synthesis_requests]
    assert bodies[-1]["previous_text"] == "Let's order a coffee first."  # context is sent
    assert bodies[-1]["model_id"] == "eleven_multilingual_v2"


def test_editing_one_line_in_dialogue_mode_bills_its_chunk_only(tmp_path, fake):
    lines = tuple(f"{'Alex' if n % 2 else 'Mara'}: This is sentence number {n} of our long talk."
                  for n in range(1, 41))
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(lines)})
    build(repo)
    chunks = [[turn["text"] for turn in r["body"]["inputs"]] for r in fake.synthesis_requests]
    assert len(chunks) > 2
    edited = "This is sentence number 20 of our long talk."
    chunk = next(c for c in chunks if edited in c)
    before = fake.characters_billed
    repo.edit("unit1", edited, "This is sentence twenty of our long talk.")
    build(repo)
    billed = fake.characters_billed - before
    assert billed < sum(map(len, spoken(lines))) / 2
    assert billed in {sum(map(len, chunk)) - len(edited) + len("This is sentence twenty of our "
                                                                "long talk.") + extra
                      for extra in [0, *(sum(map(len, c)) for c in chunks)]}


def test_swapping_two_speakers_voices_rebills_only_their_lines(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(TRIO, labels=(
        "Alex", "Mara", "Sam"))}, **MONOLOGUE)
    voices_yml = repo.path("configs/voices.yml")
    voices_yml.write_text("auto: true\nAlex: Owen\nMara: fake-voice-ruth-0003\n")
    build(repo)
    sources = {s: v["source"] for s, v in tts_record(repo, "unit1")["outputs"]["voices"].items()}
    assert sources == {"Alex": "config", "Mara": "config", "Sam": "catalog"}
    sam_voice = tts_record(repo, "unit1")["outputs"]["voices"]["Sam"]
    before = fake.characters_billed
    voices_yml.write_text("auto: true\nAlex: Ruth\nMara: fake-voice-owen-0002\n")
    build(repo)
    swapped = [text for line, text in zip(TRIO, spoken(TRIO), strict=True)
               if not line.startswith("Sam")]
    assert fake.characters_billed - before == sum(map(len, swapped))
    assert tts_record(repo, "unit1")["outputs"]["voices"]["Sam"] == sam_voice


def test_eight_lessons_sharing_lines_in_four_threads_bill_each_line_once(tmp_path, fake):
    lessons = {f"unit{n}": lesson_text(CAFE, title=f"Lesson {n}") for n in range(8)}
    repo = make_repo(tmp_path / "repo", fake, lessons, **MONOLOGUE)
    fake.latency = 0.05
    plan = repo.esl_build("plan", "--json")
    assert plan.returncode == 0, plan.stderr
    estimated = json.loads(plan.stdout)["total"]["characters"]
    build(repo, "-n", "4", "-P", "thread")
    assert set(fake.billed.values()) == {1}
    assert fake.characters_billed == sum(map(len, spoken(CAFE))) == estimated
    assert sum(tts_record(repo, f"unit{n}")["cost"]["characters"] for n in range(8)) \
        == fake.characters_billed


def test_plan_states_exactly_what_the_build_then_bills(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE),
                                               "unit2": lesson_text(CAFE[:4] + TRIO[:2])})
    build(repo)
    repo.edit("unit1", "Mara: Two cappuccinos, please.", "Mara: Two teas, please.")
    repo.write("unit3", lesson_text(CAFE[2:], title="Third"))
    plan = repo.esl_build("plan", "--json")
    estimated = json.loads(plan.stdout)["total"]["characters"]
    assert estimated > 0 and not fake.synthesis_requests[len(fake.synthesis_requests):]
    requests_before, before = len(fake.synthesis_requests), fake.characters_billed
    dry = repo.esl_build("build", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would bill {estimated} characters" in dry.stdout
    assert len(fake.synthesis_requests) == requests_before  # a dry run never calls the API
    build(repo)
    assert fake.characters_billed - before == estimated


def test_max_characters_refuses_to_start_a_build_that_would_exceed_it(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE)})
    total = sum(map(len, spoken(CAFE)))
    refused = repo.esl_build("build", "--max-characters", str(total - 1))
    assert refused.returncode == 2
    assert (f"{total} characters is more than {total - 1} (--max-characters / "
            "ESL_BUILD_MAX_CHARACTERS)") in refused.stderr
    assert "Traceback" not in refused.stderr and fake.synthesis_requests == []
    by_env = repo.doit(env={"ESL_BUILD_MAX_CHARACTERS": str(total - 1)})
    assert by_env.returncode != 0 and fake.synthesis_requests == []
    assert "more than the limit" in by_env.stdout + by_env.stderr
    fake.character_limit = total - 5  # the subscription is checked before the first request
    short = repo.doit()
    assert short.returncode != 0 and fake.synthesis_requests == []
    assert "subscription has" in short.stdout + short.stderr
    fake.character_limit = 1_000_000
    asked = len(fake.requests)
    assert repo.esl_build("build", "--max-characters", str(total)).returncode == 0
    assert fake.characters_billed == total
    kinds = [request["kind"] for request in fake.requests[asked:]]
    assert kinds[0] == "subscription" and "subscription" not in kinds[1:]  # before any line


def test_max_characters_in_voices_yml_is_the_standing_limit(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE)})
    total = sum(map(len, spoken(CAFE)))
    repo.path("configs/voices.yml").write_text(f"auto: true\nmax_characters: {total - 1}\n")
    for refused in (repo.doit(), repo.esl_build("build")):
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0 and "Traceback" not in output
        assert f"{total} characters" in output and "max_characters in voices.yml" in output
    assert fake.synthesis_requests == []
    # This run's flag (or variable) wins over the file's standing limit.
    assert repo.esl_build("build", "--max-characters", str(total)).returncode == 0
    assert fake.characters_billed == total


@pytest.mark.parametrize("value", ["lots", "-5", "true", "1.5", "[1]"])
def test_a_bad_max_characters_in_voices_yml_is_refused_naming_file_and_line(
        tmp_path, fake, value):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE)})
    repo.path("configs/voices.yml").write_text(f"auto: true\nmax_characters: {value}\n")
    for run in (repo.doit(), repo.esl_build("build"), repo.esl_build("plan")):
        output = run.stdout + run.stderr
        assert run.returncode == 2, output
        assert "configs/voices.yml:2" in output and "max_characters" in output
        assert "whole number" in output or "voice id" in output
        assert "Traceback" not in output
    assert fake.requests == [] and not list(repo.root.glob("lessons/*.manifest.json"))


def test_a_build_killed_halfway_then_rebuilt_bills_no_line_twice(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE)},
                     ELEVENLABS_CONCURRENCY="1", **MONOLOGUE)
    fake.latency = 0.1
    process = subprocess.Popen([sys.executable, "-m", "doit"], cwd=repo.root,
                               env=repo.process_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while sum(fake.billed.values()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        fake.hold()  # the next request waits, unbilled, until the build is gone
        while (fake.in_flight or len(fake.synthesis_requests) <= sum(fake.billed.values())
               ) and time.monotonic() < deadline:
            time.sleep(0.01)  # until the one in flight is answered and the next one waits
        time.sleep(0.2)  # and its answer is in the cache
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        fake.release()
    assert 3 <= sum(fake.billed.values()) < len(CAFE)
    build(repo)
    assert set(fake.billed.values()) == {1}
    assert fake.characters_billed == sum(map(len, spoken(CAFE)))


def test_the_mp3_has_the_expected_duration_and_tags(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE, title="Café")},
                     ELEVENLABS_SILENCE_TAIL_SECONDS="1.5", **MONOLOGUE)
    build(repo)
    from mutagen.id3 import ID3

    mp3 = repo.path("build/unit1/audio.mp3")
    expected = 0.3 + sum(len(t) * SECONDS_PER_CHARACTER for t in spoken(CAFE)) \
        + 0.6 * (len(CAFE) - 1) + 1.5
    assert mp3_seconds(mp3) == pytest.approx(expected, rel=0.05)
    assert tts_record(repo, "unit1")["outputs"]["seconds"] == pytest.approx(expected, rel=0.01)
    tags = ID3(mp3)
    assert (str(tags["TIT2"]), str(tags["TPE1"]), str(tags["TALB"])) == (
        "Café", "Anna", "esl-build A2")


def test_throttling_and_busy_answers_are_retried_and_nothing_is_billed_twice(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE)}, **MONOLOGUE)
    fake.max_concurrency = 2  # the build asks for 4 at once: the fake refuses the excess
    fake.latency = 0.05
    fake.fail_next(429, "system_busy", times=2, retry_after=0.01)
    fake.fail_next(503, "service_unavailable", times=1, retry_after=0.01)
    build(repo)
    assert fake.characters_billed == sum(map(len, spoken(CAFE)))
    assert set(fake.billed.values()) == {1}
    assert len(fake.synthesis_requests) > len(CAFE)  # the retries happened
    assert fake.peak_concurrency <= 2


def test_a_validation_error_fails_at_once_with_elevenlabs_message_and_keeps_paid_lines(
        tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE)},
                     ELEVENLABS_CONCURRENCY="1", **MONOLOGUE)
    repo.path("configs/voices.yml").write_text("Mara: no-such-voice\n")
    run = repo.doit()
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "A voice with the voice_id no-such-voice was not found." in output
    assert "tts:unit1" in output and "Traceback" not in output
    assert SENTINEL_KEY not in output
    paid = fake.characters_billed
    asked = Counter(r["body"]["text"] for r in fake.synthesis_requests)
    assert paid > 0 and len(asked) > len(fake.billed)  # Mara's line failed...
    assert set(asked.values()) == {1}  # ...and no request was tried twice
    repo.path("configs/voices.yml").write_text("auto: true\n")
    build(repo)
    assert set(fake.billed.values()) == {1}  # what was paid before the failure is re-used


def test_the_api_key_is_never_written_anywhere(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE)})
    run = build(repo)
    assert SENTINEL_KEY not in run.stdout + run.stderr
    for path in repo.root.rglob("*"):
        if path.is_file():
            assert SENTINEL_KEY.encode() not in path.read_bytes(), path


def test_voices_sync_writes_the_catalog_from_the_account(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE)})
    repo.path("configs/elevenlabs.voices.json").unlink()
    run = repo.esl_build("voices", "sync")
    assert run.returncode == 0, run.stderr
    assert f"wrote {len(VOICES)} voices to configs/elevenlabs.voices.json" in run.stdout
    catalog = json.loads(repo.path("configs/elevenlabs.voices.json").read_text())
    assert {v["id"] for v in catalog["voices"]} == {v["voice_id"] for v in VOICES}
    assert all(v["preview_url"] for v in catalog["voices"])  # the predecessor lost them
    assert "unchanged" in repo.esl_build("voices", "sync").stdout


@pytest.mark.parametrize("backend", ["espeak", "elevenlabs"])
def test_a_no_op_build_never_imports_the_sdk(tmp_path, fake, backend):
    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text()},
                     ESL_BUILD_VOICE=backend)
    build(repo)
    repo.path("build/.cache").rename(tmp_path / "checked")  # a no-op that checks by content
    probe = ("import sys; from doit.doit_cmd import DoitMain; from doit.cmd_base import "
             "DodoTaskLoader; DoitMain(DodoTaskLoader()).run([]); "
             "print('elevenlabs' in sys.modules, 'httpx' in sys.modules)")
    run = repo.run(sys.executable, "-c", probe)
    assert run.stdout.strip().splitlines()[-1] == "False False", run.stdout + run.stderr


def test_two_processes_wanting_the_same_lines_at_once_bill_them_once(tmp_path, fake):
    repo = make_repo(tmp_path / "repo", fake, {"unit0": lesson_text(CAFE, title="A"),
                                               "unit1": lesson_text(CAFE, title="B")},
                     **MONOLOGUE)
    build(repo, "validate")
    fake.latency = 0.1
    processes = [subprocess.Popen([sys.executable, "-m", "doit", f"tts:unit{n}"],
                                  cwd=repo.root, env=repo.process_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for n in range(2)]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert set(fake.billed.values()) == {1}
    assert fake.characters_billed == sum(map(len, spoken(CAFE)))


def test_the_pipeline_apis_dry_run_never_calls_elevenlabs_and_states_what_a_run_bills(
        tmp_path, fake):
    from esl_build import create_pipeline

    repo = make_repo(tmp_path / "repo", fake, {"unit1": lesson_text(CAFE)}, **MONOLOGUE)
    pipeline = create_pipeline(cwd=repo.root, secrets=repo.env)  # settings from the secrets
    plan = pipeline.new_assignment({"md": "unit1", "dry_run": True})
    assert plan.step("tts").estimate["characters"] == sum(map(len, spoken(CAFE)))
    assert fake.requests == []  # neither a line nor the subscription
    done = pipeline.new_assignment({"md": "unit1"})
    assert done.step("tts").state == "ran"
    assert fake.characters_billed == plan.step("tts").estimate["characters"]
