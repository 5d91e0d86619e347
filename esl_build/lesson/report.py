"""``esl-build validate``'s engine: lessons in files and folders → one ``Report``."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

from esl_build.errors import ConfigInvalid, Problem
from esl_build.lesson.discovery import Found, find_lessons
from esl_build.lesson.parse import read_lesson


@dataclass(slots=True)
class Report:
    """Every problem found in ``files`` (display paths, in the order read)."""

    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """The problems that are errors."""
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        """The problems that are warnings."""
        return [p for p in self.problems if not p.is_error]

    @property
    def ok(self) -> bool:
        """True when no problem is an error."""
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        """A machine-readable report (``--json``)."""
        return {"ok": self.ok, "files": list(self.files), "errors": len(self.errors),
                "warnings": len(self.warnings), "problems": [p.to_json() for p in self.problems]}

    def format_text(self) -> str:
        """``path:line: severity: message`` lines, then a one-line summary."""
        lines = [str(problem) for problem in self.problems]
        lines.append(f"{_count(len(self.files), 'file')}: {_count(len(self.errors), 'error')}, "
                     f"{_count(len(self.warnings), 'warning')}")
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def lesson_files(paths: list[pathlib.Path]) -> list[tuple[pathlib.Path, str]]:
    """(file, lesson id) for each lesson: files as given, folders expanded to ``**/*.md``
    (see ``find_paths``)."""
    return find_paths(paths).lessons


def find_paths(paths: list[pathlib.Path]) -> Found:
    """The lessons in ``paths`` (files as given, folders searched as the build does: hidden
    and ``build/`` folders skipped) and the files refused. A path that does not exist is a
    ``ConfigInvalid``."""
    found = Found()
    for path in paths:
        if path.is_file():
            found.lessons.append((path, path.stem))
        elif path.is_dir():
            inside = find_lessons(path)
            found.lessons += inside.lessons
            found.problems += inside.problems
        else:
            raise ConfigInvalid(f"no such file or folder: {path}")
    return found


def validate_paths(paths: list[pathlib.Path], strict: bool = False) -> Report:
    """Parse and validate every lesson under ``paths``."""
    report = Report()
    found = find_paths(paths)
    for file, lesson_id in found.lessons:
        shown = str(file)
        report.files.append(shown)
        _, problems = read_lesson(file, lesson_id=lesson_id, path=shown, strict=strict)
        report.problems.extend(problems)
    for problem in found.problems:
        report.files.append(problem.path)
        report.problems.append(problem)
    return report
