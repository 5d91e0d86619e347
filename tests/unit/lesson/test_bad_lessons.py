"""Each ``tests/lessons/bad-*/`` folder: ``lesson.md`` gives exactly the problems listed in
``expected.txt``, one ``line: severity: message fragment`` per line."""

from __future__ import annotations

import pytest
from lesson_helpers import BAD_LESSONS

from esl_build.lesson import read_lesson

CASES = sorted(BAD_LESSONS.glob("bad-*/"))


def expected(folder):
    for raw in (folder / "expected.txt").read_text("utf-8").splitlines():
        if raw.strip():
            line, severity, fragment = raw.split(": ", 2)
            yield int(line), severity, fragment


def test_there_are_bad_lessons():
    assert len(CASES) >= 10


@pytest.mark.parametrize("folder", CASES, ids=lambda p: p.name)
def test_bad_lesson_gives_exactly_its_expected_problems(folder):
    path = f"{folder.name}/lesson.md"
    _, problems = read_lesson(folder / "lesson.md", lesson_id=folder.name, path=path)
    wanted = list(expected(folder))
    assert len(problems) == len(wanted), "\n".join(map(str, problems))
    for (line, severity, fragment), problem in zip(wanted, problems, strict=True):
        assert (problem.path, problem.line, problem.severity) == (path, line, severity), problem
        assert fragment in problem.message, problem
