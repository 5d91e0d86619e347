"""A throwaway lessons repository, for esl-build's tests and for users testing their setup.

``LessonsRepo.create(path, {"unit1": lesson_text(...)})`` writes ``dodo.py``, ``configs/`` and
the lessons; ``repo.doit(...)`` runs the real ``doit`` in a subprocess and returns a
``DoitRun`` that knows which tasks ran, were up to date or failed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from esl_build.settings import ENV_VARS

_SCAFFOLD = Path(__file__).resolve().parent.parent / "scaffold"

DIALOGUE = ("Alex: Hi Mara, how are you today?", "Mara: I'm fine, thanks. And you?",
            "Alex: Great. Let's practise our English.")


def lesson_text(lines: tuple[str, ...] = DIALOGUE, *, title: str = "Test Lesson",
                student: str = "Anna", labels: tuple[str, ...] = ("Alex", "Mara"),
                why: str = "It helps you speak with confidence.") -> str:
    """A small valid lesson; ``lines`` are the study text, ``why`` is section 7's text."""
    study = "\n".join(lines)
    practice = "\n".join(f"{n}. Question {n} ____." for n in range(1, 9))
    return f"""---
title: "{title}"
student: "{student}"
level: "A2"
topic: "Testing"
input_type: "generate"
speaker_labels: [{", ".join(labels)}]
---

## 1. This Week's Mission Briefing
* **Your Goal:** Practise a short conversation.

## 2. Your Homework Roadmap
* **Steps:** Listen, practise, record.

## 3. Input Material: The Dialogue
:::study-text Transcript
{study}
:::

## 4. Language Toolkit: Useful Language
### A. Notice the Grammar
* **Form:** subject + verb

## 5. Practice & Pronunciation
### A. Controlled Practice
{practice}

### B. Comprehension Check
1. How is Mara?
2. What do they practise?

## 6. Your Turn: Complete the Mission!
* **Task:** Record your own dialogue.

## 7. Why This Mission Helps You
{why}

## 8. Answer Key & Sample Mission
:::toggle-heading Answer Key
1. Fine.
:::

## 9. Teacher's Follow-up Plan
:::toggle-heading Teacher's Follow-up Plan
* **Warm-up:** Ask about the weekend.
:::
"""


_PROGRESS = re.compile(r"^\[\d+/\d+\] (\S+)( failed)?", re.MULTILINE)  # esl-build's reporter


def snapshot(top: Path, skip: Path | None = None) -> dict[str, bytes | str]:
    """Every file under ``top`` (but the folder ``skip``), as its bytes, or a symlink's target:
    compare two snapshots to see that a run wrote nothing it should not have."""
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(top):
        here = Path(folder)
        dirs[:] = [d for d in dirs if here / d != skip]
        for name in files + [d for d in dirs if (here / d).is_symlink()]:
            path = here / name
            key = path.relative_to(top).as_posix()
            found[key] = os.readlink(path) if path.is_symlink() else path.read_bytes()
    return found


@dataclass
class DoitRun:
    """What one ``doit`` invocation printed, sorted by task outcome.

    Reads both esl-build's output (``[3/10] tts:unit1``, ``… failed``) and doit's console
    reporter's (``.  task`` ran, ``-- task`` up to date)."""

    returncode: int
    stdout: str
    stderr: str

    def _tasks(self, prefix: str) -> set[str]:
        return {line[3:].strip() for line in self.stdout.splitlines() if line.startswith(prefix)}

    @property
    def ran(self) -> set[str]:
        """Tasks whose action ran (including those that failed)."""
        return self._tasks(".  ") | {m.group(1) for m in _PROGRESS.finditer(self.stdout)}

    @property
    def failed(self) -> set[str]:
        """Tasks that failed (esl-build's reporter)."""
        return {m.group(1) for m in _PROGRESS.finditer(self.stdout) if m.group(2)}

    @property
    def up_to_date(self) -> set[str]:
        """Tasks found up to date (doit's console reporter lists them; esl-build's counts)."""
        return self._tasks("-- ")

    def count(self, stage: str, outcome: str) -> int:
        """A cell of the summary table: ``count("tts", "up to date")``."""
        column = 1 + ("ran", "up to date", "failed", "not run").index(outcome)
        for line in self.stdout.splitlines():
            cells = line.split()
            if cells[:1] == [stage] and len(cells) > 1 and all(c.isdigit() for c in cells[1:]):
                return int(cells[column]) if column < len(cells) else 0
        return 0

    @property
    def characters(self) -> int:
        for line in self.stdout.splitlines():
            if line.startswith("characters synthesised:"):
                return int(line.split(":")[1].split()[0])
        return 0


class LessonsRepo:
    """A lessons repository on disk."""

    def __init__(self, root: Path, env: dict[str, str] | None = None):
        self.root = root
        self.env = dict(env or {})

    @classmethod
    def create(cls, root: Path, lessons: dict[str, str], *,
               env: dict[str, str] | None = None) -> LessonsRepo:
        root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_SCAFFOLD / "dodo.py", root / "dodo.py")
        shutil.copytree(_SCAFFOLD / "configs", root / "configs", dirs_exist_ok=True)
        repo = cls(root, env)
        for lesson_id, text in lessons.items():
            repo.write(lesson_id, text)
        return repo

    def path(self, relative: str) -> Path:
        return self.root / relative

    def write(self, lesson_id: str, text: str) -> None:
        target = self.root / "lessons" / f"{lesson_id}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def edit(self, lesson_id: str, old: str, new: str) -> None:
        target = self.root / "lessons" / f"{lesson_id}.md"
        text = target.read_text(encoding="utf-8")
        if old not in text:
            raise ValueError(f"{old!r} is not in {target}")
        target.write_text(text.replace(old, new, 1), encoding="utf-8")

    def manifest_bytes(self) -> dict[str, bytes]:
        return {p.relative_to(self.root).as_posix(): p.read_bytes()
                for p in sorted((self.root / "lessons").rglob("*.manifest.json"))}

    def process_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment for a subprocess: ours cleared, then this repo's and ``extra``."""
        env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
        env.update(self.env)
        env.update(extra or {})
        return env

    def run(self, *argv: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> DoitRun:
        done = subprocess.run(list(argv), cwd=self.root, env=self.process_env(env),
                              capture_output=True, text=True, timeout=timeout, check=False)
        return DoitRun(done.returncode, done.stdout, done.stderr)

    def doit(self, *args: str, env: dict[str, str] | None = None) -> DoitRun:
        return self.run(sys.executable, "-m", "doit", *args, env=env)

    def esl_build(self, *args: str, env: dict[str, str] | None = None) -> DoitRun:
        return self.run(sys.executable, "-m", "esl_build.cli", *args, env=env)
