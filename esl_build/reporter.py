"""doit's console output, unchanged, plus the backends line and a summary table.

The task lines stay exactly doit's (``.  task`` ran, ``-- task`` up to date) because CI
scripts read them. Before the first task, one line names each stage's backend; after the
run, a table counts per stage what ran, was up to date and failed, and the characters
synthesised and requests sent (read from the stage records this run wrote).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from doit.reporter import ConsoleReporter

from esl_build.stages import STAGES


class BuildReporter(ConsoleReporter):  # type: ignore[misc]  # doit is untyped
    desc = "doit's console output plus esl-build's backends line and summary table"

    def __init__(self, outstream: Any, options: Any) -> None:
        super().__init__(outstream, options)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._ran: list[str] = []

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        from esl_build.project import Project

        super().initialize(tasks, selected_tasks)
        settings = Project.current().settings
        backends = " ".join(f"{stage}={name}" for stage, name in settings.backends.items()
                            if stage != "validate")
        self.write(f"esl-build {settings.run_id}: {backends}\n")

    def add_success(self, task: Any) -> None:
        from esl_build.project import Project

        super().add_success(task)
        if task.name in Project.current().found_done:
            self._count(task.name, "up to date")
            return
        self._count(task.name, "ran")
        self._ran.append(task.name)

    def skip_uptodate(self, task: Any) -> None:
        super().skip_uptodate(task)
        self._count(task.name, "up to date")

    def add_failure(self, task: Any, exception: Any) -> None:
        super().add_failure(task, exception)
        self._count(task.name, "failed")

    def _count(self, task_name: str, outcome: str) -> None:
        stage, sep, _ = task_name.partition(":")
        if sep and stage in STAGES:
            self._counts[(stage, outcome)] += 1

    def complete_run(self) -> None:
        super().complete_run()
        if not self._counts:
            return
        characters, requests = self._spent()
        self.write(format_summary(self._counts, characters, requests))

    def _spent(self) -> tuple[int, int]:
        from esl_build.project import Project

        project = Project.current()
        characters = requests = 0
        for name in self._ran:
            stage, _, lesson_id = name.partition(":")
            record = ((project.store.read(lesson_id) or {}).get("stages") or {}).get(stage) or {}
            if record.get("runId") == project.settings.run_id:
                characters += record.get("cost", {}).get("characters", 0)
                requests += record.get("cost", {}).get("requests", 0)
        return characters, requests


def format_summary(counts: Counter[tuple[str, str]], characters: int, requests: int) -> str:
    """The end-of-run table (also used by ``esl-build rerun``)."""
    outcomes = ("ran", "up to date", "failed")
    lines = ["", f"{'stage':<10}" + "".join(f"{o:>12}" for o in outcomes)]
    for stage in STAGES:
        if any(counts[(stage, o)] for o in outcomes):
            lines.append(f"{stage:<10}" + "".join(f"{counts[(stage, o)]:>12}" for o in outcomes))
    lines.append(f"characters synthesised: {characters}   requests sent: {requests}")
    return "\n".join(lines) + "\n"
