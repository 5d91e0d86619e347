"""The summary table counts what ran: a stage whose action re-checked under the lesson's lease
and found the work done is up to date, not ran."""

from __future__ import annotations

from esl_build.stages import STAGES
from esl_build.testing.repo import LessonsRepo, lesson_text


def summary_rows(stdout: str) -> dict[str, list[int]]:
    rows = {}
    for line in stdout.splitlines():
        stage, *counts = line.split() or [""]
        if stage in STAGES and len(counts) == 3 and all(c.isdigit() for c in counts):
            rows[stage] = [int(c) for c in counts]
    return rows


def test_actions_that_find_their_stage_done_count_as_up_to_date(tmp_path):
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text()})
    first = repo.doit()
    assert first.returncode == 0, first.stdout + first.stderr
    assert summary_rows(first.stdout)["tts"] == [1, 0, 0]
    before = repo.manifest_bytes()
    # -a makes doit run every action; each one re-checks its record and does nothing.
    again = repo.doit("-a")
    assert again.returncode == 0, again.stdout + again.stderr
    assert summary_rows(again.stdout) == {stage: [0, 1, 0] for stage in STAGES}
    assert again.characters == 0
    assert repo.manifest_bytes() == before
