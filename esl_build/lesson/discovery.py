"""Which files under a folder are lessons, and which only look like one.

``esl-build validate`` and the build graph find lessons with this one function, so they agree:
every ``*.md`` outside hidden and ``build`` folders is a lesson whose id is its path without
``.md``, unless its name can't be a lesson id or it can't be read (a symlink to nothing). Such
a file is a ``Problem`` naming it, never skipped in silence and never built: an id like ``..``
(from ``lessons/...md``) would put ``build/<id>/lesson.json`` outside ``build/``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from esl_build.errors import Problem
from esl_build.files import contains

_CONTROL = frozenset(map(chr, [*range(32), 127]))


def printable(name: str) -> str:
    """``name`` with backslashes and control characters escaped, as JSON writes them (a file
    name is shown to a terminal, which must not receive its control characters)."""
    return json.dumps(name, ensure_ascii=False)[1:-1]


def lesson_id_problem(lesson_id: str) -> str | None:
    """Why ``lesson_id`` can't name a lesson's outputs, or None when it is a plain relative
    path: no empty parts, no part starting with ``.``, no backslashes or control characters."""
    if "\\" in lesson_id or not _CONTROL.isdisjoint(lesson_id):
        return "contains a backslash or a control character"
    if any(not part or part.startswith(".") for part in lesson_id.split("/")):
        return "has a part that is empty or starts with '.'"
    return None


@dataclass
class Found:
    """Lessons found under a folder (``(file, id)``, by id) and the files refused."""

    lessons: list[tuple[Path, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def find_lessons(folder: Path, shown: Callable[[Path], str] = str) -> Found:
    """Every lesson under ``folder``; ``shown`` names a file in a problem."""
    found = Found()
    root = os.fspath(folder)
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "build")
        relative = os.path.relpath(current, root).replace(os.sep, "/")
        prefix = "" if relative == "." else relative + "/"
        for name in sorted(files):
            if not name.endswith(".md"):
                continue
            file, lesson_id = Path(current, name), prefix + name[:-3]
            problem = _file_problem(file, root) or _name_problem(lesson_id)
            if problem:
                found.problems.append(Problem(printable(shown(file)), 1, "error", problem))
            else:
                found.lessons.append((file, lesson_id))
    found.lessons.sort(key=lambda item: item[1])
    return found


def _file_problem(file: Path, root: str) -> str | None:
    link = os.path.islink(file)
    if file.is_file():
        if link and not contains(root, file):
            # A pull request could point a lesson at a secret; its lines would be quoted in
            # the validator's messages, in CI logs.
            return ("is a symbolic link to a file outside the lessons folder; copy the lesson "
                    "in instead")
        return None
    if link:
        return (f"is a symbolic link to '{printable(os.readlink(file))}', which does not exist; "
                "fix the link or delete it")
    return "is not a regular file; a lesson must be a Markdown file"


def _name_problem(lesson_id: str) -> str | None:
    why = lesson_id_problem(lesson_id)
    return None if why is None else (
        f"cannot be a lesson: its id '{printable(lesson_id)}' {why}; rename the file "
        "(e.g. lessons/b1/unit1.md)")
