"""Faults everywhere at once: a 20-lesson build against fake Notion, fake ElevenLabs and moto
S3, each behind a seeded fault proxy at a 20 % fault rate (429 with Retry-After, 500/502/503/
529, writes applied but answered 502, answers held past the client's timeout, dropped
connections). The build finishes, or fails cleanly and finishes on a later run; then every
invariant of ``check_invariants`` holds."""

from __future__ import annotations

import pytest
from invariants import Stack, check_invariants, dialogue_lessons

pytestmark = pytest.mark.reliability

LESSONS = 20
MAX_RUNS = 4  # a run that fails cleanly leaves less to do: the next finishes what is left


@pytest.mark.faults(0.2, 2026)
def test_twenty_lessons_under_a_twenty_percent_fault_rate_end_complete_and_done_once(
        stack: Stack, tmp_path) -> None:
    lessons = dialogue_lessons(LESSONS)
    repo = stack.repo(tmp_path / "repo", lessons)
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
    injected = {name: proxy.injected() for name, proxy in stack.proxies.items()}
    for name, counts in injected.items():  # every kind of fault was met by every service
        assert all(counts.values()), (name, counts)
    check_invariants(stack, repo, list(lessons))
    again = repo.doit()
    assert again.returncode == 0 and not again.ran, again.stdout + again.stderr
