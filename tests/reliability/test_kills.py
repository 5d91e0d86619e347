"""Kills: a real ``doit`` build against fake Notion, fake ElevenLabs and moto S3 is killed
with SIGKILL at seeded random points in every stage, then rebuilt to completion.

Remote stages are killed by request count: the fault proxy in front of a service kills the
build on the k-th request of the stage's kind, either before forwarding it or once the
service has applied it (the answer then never arrives: the hardest case, a page created
that no manifest knows of). ElevenLabs requests are killed before forwarding only: an answer
billed and then lost is billed again by any client, so it would prove nothing. The local
stage (validate) is killed by time, a few milliseconds after its k-th start; tts comes next,
so such a kill can land while a request is in flight: that answer alone may be billed again
(``killed_in_flight``). The stage the build was in is read from the event log, and every
stage must be met.

After each kill every manifest is readable and valid; after the rebuild the invariants of
``check_invariants`` hold and every stage record that existed at the kill is unchanged (a
completed stage is never redone).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest
from invariants import SCHEMA, STAGES, Stack, check_invariants, open_stack, stage_records

from esl_build.testing.fault_proxy import ProxiedRequest
from esl_build.testing.moto import CountingMotoServer
from esl_build.testing.repo import LessonsRepo, lesson_text

pytestmark = pytest.mark.reliability

KILLS = 20
SEED = 20261202
SEQUENTIAL = {"ELEVENLABS_CONCURRENCY": "1", "ELEVENLABS_TTS_MODE": "monologue"}


def lessons() -> dict[str, str]:
    return {f"unit{n}": lesson_text((f"Alex: This is lesson number {n}.",
                                     f"Mara: We practise sentence {n} today.",
                                     f"Alex: See you next week, lesson {n}."),
                                    title=f"Lesson {n}") for n in range(2)}


def _is_audio_link(request: ProxiedRequest) -> bool:
    return b'"audio"' in request.body or (request.method == "PATCH"
                                          and request.path.startswith("/v1/pages/"))


def _upload_check() -> Callable[[ProxiedRequest], bool]:
    """The upload stage's own request: with S3 storage tts already stored the MP3 (HEAD,
    then PUT), so upload's is the HEAD of a key that was PUT before."""
    put: set[str] = set()

    def matches(request: ProxiedRequest) -> bool:
        if "/audio/" not in request.path:
            return False
        if request.method == "PUT":
            put.add(request.path)
        return request.method == "HEAD" and request.path in put

    return matches


Matcher = Callable[[ProxiedRequest], bool]
# stage → (service, a new matcher of that stage's requests, fed every request in order)
REQUESTS: dict[str, tuple[str, Callable[[], Matcher]]] = {
    "import": ("notion", lambda: lambda r: not _is_audio_link(r)),
    "tts": ("elevenlabs", lambda: lambda r: "/text-to-" in r.path),
    "upload": ("s3", _upload_check),
    "add-audio": ("notion", lambda: _is_audio_link),
}


def events(log: Path) -> list[dict[str, object]]:
    found = []
    for line in log.read_text(encoding="utf-8").splitlines() if log.exists() else ():
        try:
            found.append(json.loads(line))
        except ValueError:  # the line the kill cut short: the event log is not a record
            continue
    return found


def stage_at_kill(log: Path) -> str:
    starts = [e["stage"] for e in events(log) if str(e["event"]).endswith(".start")
              and str(e["event"]).startswith("stage.")]
    return str(starts[-1]) if starts else "none"


def killed_build(repo: LessonsRepo, stack: Stack, stage: str, k: int, after: bool,
                 delay: float, log: Path) -> int:
    """Start a build, kill it at the point, return its exit status."""
    process = subprocess.Popen([sys.executable, "-m", "doit"], cwd=repo.root,
                               env=repo.process_env({"ESL_BUILD_EVENT_LOG": str(log)}),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    watcher = None
    if stage in REQUESTS:
        service, matcher = REQUESTS[stage]
        stack.proxies[service].trigger(matcher(), k, kill, after=after)
    else:  # a local stage: by time, ``delay`` s after its k-th start
        def watch() -> None:
            while process.poll() is None:
                started = sum(1 for e in events(log) if e["event"] == f"stage.{stage}.start")
                if started >= k:
                    time.sleep(delay)
                    kill()
                    return
                time.sleep(0.002)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    try:
        return process.wait(timeout=120)
    finally:
        kill()
        if watcher is not None:
            watcher.join()


def calibrate(moto_url: str, tmp: Path) -> dict[str, int]:
    """How many requests of each stage's kind a whole build sends (the range of k)."""
    with open_stack(moto_url, tmp) as stack:
        repo = stack.repo(tmp / "repo", lessons(), **SEQUENTIAL)
        run = repo.doit()
        assert run.returncode == 0, run.stdout + run.stderr
        counts = {}
        for stage, (service, matcher) in REQUESTS.items():
            matches = matcher()
            counts[stage] = sum(1 for r in stack.proxies[service].requests if matches(r))
    return {"validate": len(lessons()), **counts}


def killed_in_flight(stack: Stack) -> Counter[str]:
    """Texts whose paid answer the kill may have lost: a build killed (by time, or on
    another service's request) while ElevenLabs worked on a request, or before it stored an
    answer, pays for it again, as any client would. Each of the voice's request threads
    (twice ``ELEVENLABS_CONCURRENCY``) holds at most one such request, so only the last
    ones ElevenLabs received can be lost; a line billed twice beyond them fails."""
    threads = 2 * int(SEQUENTIAL["ELEVENLABS_CONCURRENCY"])
    received = [r for r in stack.proxies["elevenlabs"].requests if "/text-to-" in r.path]
    lost: Counter[str] = Counter()
    for request in received[-threads:]:
        body = json.loads(request.body)
        lost.update(item["text"] for item in body.get("inputs") or [body])
    return lost


def kill_and_rebuild(moto_url: str, tmp: Path, stage: str, k: int, after: bool,
                     delay: float) -> str:
    """One round: a fresh stack and repository, a build killed at the point, checks, a
    rebuild, checks. Returns the stage the build was in when it was killed."""
    where = f"{tmp.name}: {stage} k={k}{' after' if after else ''}"
    with open_stack(moto_url, tmp) as stack:
        repo = stack.repo(tmp / "repo", lessons(), **SEQUENTIAL)
        log = tmp / "events.jsonl"
        status = killed_build(repo, stack, stage, k, after, delay, log)
        assert status == -signal.SIGKILL, f"{where}: the build was not killed ({status})"
        before = stage_records(repo)  # every manifest readable (or the test fails here)
        for path in sorted(repo.path("lessons").rglob("*.manifest.json")):
            manifest = json.loads(path.read_bytes())
            errors = [e.message for e in
                      jsonschema.Draft202012Validator(SCHEMA).iter_errors(manifest)]
            assert not errors, (where, path.name, errors)
        lost = killed_in_flight(stack)
        rebuild = repo.doit()
        assert rebuild.returncode == 0, where + "\n" + rebuild.stdout + rebuild.stderr
        check_invariants(stack, repo, list(lessons()), lost=lost)
        now = stage_records(repo)
        redone = sorted(f"{stage}:{lesson}" for (lesson, stage), record in before.items()
                        if now.get((lesson, stage)) != record)
        assert not redone, f"{where}: completed stages redone: {redone}"
        assert not rebuild.ran & {f"{s}:{lesson}" for lesson, s in before}, where
        return stage_at_kill(log)


def test_builds_killed_at_random_points_in_every_stage_rebuild_without_redoing_anything(
        moto_server: CountingMotoServer, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    ranges = calibrate(moto_server.url, tmp_path / "calibration")
    assert all(ranges.values()), ranges
    points = []
    for round_ in range(KILLS):
        stage = STAGES[round_ % len(STAGES)]
        after = stage in ("import", "upload", "add-audio") and rng.random() < 0.5
        points.append((tmp_path / f"round{round_:02d}", stage, rng.randint(1, ranges[stage]),
                       after, rng.uniform(0, 0.02)))
    # two rounds at a time: each has its own services and repository, and most of a
    # round's time is a fresh process importing its SDKs
    with ThreadPoolExecutor(max_workers=2) as pool:
        met = Counter(pool.map(lambda point: kill_and_rebuild(moto_server.url, *point),
                               points))
    assert set(STAGES) <= set(met), f"stages the kills met: {dict(met)}"
