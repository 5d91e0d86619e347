"""A request's audio is paid for once even by two machines: two copies of a lessons repo that
share nothing but one bucket (moto over HTTP) and one ElevenLabs account (the fake), built at
the same moment by two processes. The storage-backed cache claims each key with a conditional
PUT; the loser waits for the audio; a killed claimant's claim expires and is taken over."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esl_build.services.local import LocalStorage
from esl_build.services.s3 import S3Storage
from esl_build.settings import Settings
from esl_build.testing.fake_elevenlabs import VOICES, FakeElevenLabs
from esl_build.testing.repo import LessonsRepo, lesson_text
from esl_build.voices.catalog import catalog_bytes

LINES = ("Alex: Good morning, everyone.", "Mara: Good morning, Alex.",
         "Alex: Shall we begin the lesson?", "Mara: Yes, let's start with page ten.",
         "Alex: Read the first line aloud.", "Mara: The sun rises in the east.")
TTL = 2.0


def machine(root: Path, fake: FakeElevenLabs, s3) -> LessonsRepo:
    """One machine's copy of the repo: its own disk, the shared bucket and account."""
    repo = LessonsRepo.create(root, {"unit1": lesson_text(LINES)}, env={
        **fake.env, **s3.env, "S3_BUCKET": s3.bucket, "ELEVENLABS_TTS_MODE": "monologue",
        "ELEVENLABS_CONCURRENCY": "2", "ESL_PIPELINE_LEASE_TTL": str(TTL)})
    repo.path("configs/elevenlabs.voices.json").write_bytes(catalog_bytes(list(VOICES)))
    return repo


def start(repo: LessonsRepo) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "doit"], cwd=repo.root,
                            env=repo.process_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def claims(s3) -> dict[str, dict]:
    return {key: json.loads(s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
            for key in s3.keys("cache/tts/claims/")}


def test_two_machines_building_the_same_lines_at_once_pay_for_each_line_once(s3, tmp_path):
    with FakeElevenLabs() as fake:
        fake.latency = 0.4  # six lines, two at a time: each build takes over a second
        one, two = machine(tmp_path / "one", fake, s3), machine(tmp_path / "two", fake, s3)
        builds = [start(one), start(two)]
        outputs = [build.communicate(timeout=120)[0] for build in builds]
    assert [build.returncode for build in builds] == [0, 0], outputs
    spoken = [line.split(": ", 1)[1] for line in LINES]
    assert fake.billed == dict.fromkeys(spoken, 1)  # each line billed exactly once...
    assert fake.characters_billed == sum(map(len, spoken))
    assert len(fake.synthesis_requests) == len(LINES)  # ...and asked for once
    assert one.path("build/unit1/audio.mp3").read_bytes() == \
        two.path("build/unit1/audio.mp3").read_bytes()
    found = claims(s3)
    assert len(found) == len(LINES)  # one claim per line, left once its audio was stored
    assert len(s3.keys("cache/tts/")) == 2 * len(LINES)  # the audio and its claim, per line


def test_a_killed_claimants_claim_expires_and_is_taken_over(s3, tmp_path):
    with FakeElevenLabs() as fake:
        first = machine(tmp_path / "one", fake, s3)
        fake.hold()  # requests wait, unanswered and unbilled, until released
        build = start(first)
        deadline = time.monotonic() + 60
        while len(fake.synthesis_requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # two requests in flight (the concurrency), held by the fake
        held = claims(s3)
        assert len(held) >= 2 and all(c["expires"] > time.time() for c in held.values())
        build.send_signal(signal.SIGKILL)  # the claimant dies holding its claims
        build.wait()
        fake.release()
        killed_at = time.monotonic()
        second = machine(tmp_path / "two", fake, s3)
        run = second.doit()
        assert run.returncode == 0, run.stdout + run.stderr
        assert time.monotonic() - killed_at >= TTL * 0.5  # it waited for the claims to expire
    spoken = [line.split(": ", 1)[1] for line in LINES]
    assert fake.billed == dict.fromkeys(spoken, 1)  # the killed build's requests were unpaid
    after = claims(s3)
    assert len(after) == len(LINES)
    assert {after[k]["owner"] for k in held} != {held[k]["owner"] for k in held}  # taken over


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_conditional_write_lets_one_writer_win(s3, tmp_path, backend):
    if backend == "s3":
        storage = S3Storage.from_settings(Settings.resolve(env={**s3.env,
                                                                "S3_BUCKET": s3.bucket}).s3)
    else:
        storage = LocalStorage(tmp_path / "bucket", tmp_path)
    key, kind = "cache/tts/claims/k.json", "application/json"
    assert storage.read_object_version(key) is None
    first = storage.write_object_if(key, b"one", content_type=kind, version=None)
    assert first is not None
    assert storage.write_object_if(key, b"two", content_type=kind, version=None) is None
    assert storage.read_object_version(key) == (b"one", first)
    second = storage.write_object_if(key, b"two", content_type=kind, version=first)
    assert second not in (None, first)
    assert storage.write_object_if(key, b"three", content_type=kind, version=first) is None
    assert storage.read_object_version(key) == (b"two", second)
