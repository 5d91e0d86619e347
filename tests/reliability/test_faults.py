"""Faults everywhere at once: a 20-lesson build against fake Notion, fake ElevenLabs and moto
S3, each behind a seeded fault proxy at a 20 % fault rate (429 with Retry-After, 500/502/503/
529, writes applied but answered 502, answers held past the client's timeout, dropped
connections). The build finishes, or fails cleanly and finishes on a later run; then every
invariant of ``check_invariants`` holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from invariants import Stack, check_invariants, dialogue_lessons

from esl_build.testing.repo import LessonsRepo

pytestmark = pytest.mark.reliability

LESSONS = 20
MAX_RUNS = 2  # finishes, or fails cleanly and finishes on the next run


@pytest.mark.faults(0.2, 2026)
def test_twenty_lessons_under_a_twenty_percent_fault_rate_end_complete_and_done_once(
        stack: Stack, tmp_path: Path) -> None:
    build_under_faults(stack, stack.repo(tmp_path / "repo", dialogue_lessons(LESSONS)))


@pytest.mark.faults(0.2, 5)
def test_manifests_in_the_s3_store_under_the_same_faults_end_complete_and_done_once(
        stack: Stack, tmp_path: Path) -> None:
    """The store's conditional writes and leases go through the faulty S3 too: a lost
    answer to a conditional write must not read as a conflict, nor lose a record."""
    store = {"ESL_PIPELINE_MANIFEST_STORE": "s3", "ESL_PIPELINE_MANIFEST_BUCKET": stack.bucket,
             "ESL_PIPELINE_MANIFEST_PREFIX": "m"}
    repo = stack.repo(tmp_path / "repo", dialogue_lessons(10), **store)
    build_under_faults(stack, repo, every_fault_at=("s3",))


def build_under_faults(stack: Stack, repo: LessonsRepo,
                       every_fault_at: tuple[str, ...] = ("notion", "elevenlabs", "s3")) -> None:
    """Build until done (at most ``MAX_RUNS``); each service of ``every_fault_at`` must have
    met every kind of fault."""
    lessons = sorted(p.relative_to(repo.path("lessons")).as_posix()[:-3]
                     for p in repo.path("lessons").rglob("*.md"))
    runs = []
    for _ in range(MAX_RUNS):
        run = repo.doit("-n", "4", "-P", "thread")
        runs.append(run)
        if run.returncode == 0:
            break
        # a clean failure: exit 1, each failure named, no traceback
        assert run.returncode == 1, run.stdout + run.stderr
        assert "Traceback" not in run.stdout + run.stderr, run.stderr
        assert run.failed, run.stdout
    assert runs[-1].returncode == 0, "\n".join(r.stdout + r.stderr for r in runs)
    for name in every_fault_at:
        counts = stack.proxies[name].injected()
        assert all(counts.values()), (name, counts)
    check_invariants(stack, repo, lessons)
    again = repo.doit()
    assert again.returncode == 0 and not again.ran, again.stdout + again.stderr
