"""The HTML site's index page: every lesson with the status of each stage and its audio.

The ``index`` task is up to date when the index entries (computed from the manifests) hash to
the fingerprint written beside ``index.html`` when it was last rendered; or, without reading
any manifest, when every lesson is still as it was verified when the index was written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from doit.exceptions import TaskFailed

from esl_build.errors import EslBuildError
from esl_build.files import atomic_write
from esl_build.fingerprint import fingerprint
from esl_build.project import Project
from esl_build.stages import statuses
from esl_build.stages.base import record_of
from esl_build.state.doit_backend import doit_project

if TYPE_CHECKING:
    from esl_build.services.html import IndexEntry


def index_entries(project: Project) -> list[IndexEntry]:
    from esl_build.services.html import IndexEntry

    entries = []
    failures = project.failures.read()
    for lesson_id in project.lesson_ids():
        states = statuses(project, lesson_id)
        failed = failures.get(lesson_id) or {}
        manifest = project.store.read(lesson_id) or {}
        records = {stage: record_of(manifest, stage) or {} for stage in states}
        about = records["validate"].get("outputs", {})
        linked = not states["add-audio"].stale
        entries.append(IndexEntry(
            id=lesson_id,
            title=about.get("title") or lesson_id,
            student=about.get("student", ""),
            level=about.get("level", ""),
            topic=about.get("topic", ""),
            page_url=records["import"].get("outputs", {}).get("url"),
            audio_url=records["add-audio"].get("outputs", {}).get("src") if linked else None,
            stages={stage: ("done" if not state.stale else "failed" if stage in failed
                            else "stale" if records[stage] else "missing")
                    for stage, state in states.items()},
            failure=next((f"{stage}: {failed[stage].get('message', '')}" for stage in states
                          if stage in failed and states[stage].stale), ""),
        ))
    return entries


def _fingerprint_file(project: Project) -> Path:
    return project.settings.site_dir / ".index.fingerprint"


def _entries_fingerprint(project: Project, entries: list[IndexEntry]) -> str:
    return fingerprint({"publisher": project.publisher.settings,
                        "entries": [[e.id, e.title, e.student, e.level, e.topic, e.page_url,
                                     e.audio_url, dict(e.stages), e.failure] for e in entries]})


def write_index() -> TaskFailed | None:
    """doit action of ``index``."""
    project = doit_project()
    try:
        project.flush_doit_records()  # the manifests are final for this run before we read
        entries = index_entries(project)
        project.publisher.refresh_index(entries)  # type: ignore[attr-defined]
    except EslBuildError as error:
        return TaskFailed(str(error))
    _write_marker(project, _entries_fingerprint(project, entries))
    return None


def _write_marker(project: Project, entries_fingerprint: str) -> None:
    """Beside index.html: what it shows, and the lesson verdicts that shows (a cache)."""
    signature = project.checked.signature(project.lesson_ids()) or "-"
    marker = f"{entries_fingerprint}\n{signature}\n"
    atomic_write(_fingerprint_file(project), marker.encode())


class IndexMatches:
    """doit ``uptodate`` check of the ``index`` task."""

    def __call__(self, task: object, values: object) -> bool:
        project = doit_project()
        project.flush_doit_records()  # every lesson task is done: their manifests are final
        marker = _fingerprint_file(project)
        if not (project.settings.site_dir / "index.html").exists() or not marker.exists():
            return False
        written = marker.read_text().split()
        if len(written) == 2 and written[1] == project.checked.signature(project.lesson_ids()):
            return True  # no file any lesson's entry depends on has changed
        try:
            entries = _entries_fingerprint(project, index_entries(project))
        except EslBuildError:
            return False  # the action reports it
        if written[:1] != [entries]:
            return False
        _write_marker(project, entries)  # remember the verdicts it was checked against
        return True

    def __repr__(self) -> str:
        return "index: up to date when every lesson's status is unchanged"
