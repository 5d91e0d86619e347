"""A lessons repository: its settings, config, manifests, lessons and (lazily) its services.

One ``Project`` serves a whole doit run: the task loader, the up-to-date checks, the doit
backend and the stage actions share it, so each lesson is read and each manifest parsed at
most once per run. Services are created on first use, so a no-op build never imports an SDK.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esl_build import __version__
from esl_build.config import Config, parse_config
from esl_build.errors import EslBuildError, LessonInvalid, Problem
from esl_build.failures import FailureLog
from esl_build.files import shown
from esl_build.fingerprint import fingerprint, sha256_bytes
from esl_build.lesson.model import Lesson
from esl_build.services.protocols import Publisher, Storage, Voice
from esl_build.settings import Settings
from esl_build.state.checked import CheckedCache
from esl_build.state.stores import ManifestStore, store_from

if TYPE_CHECKING:
    from esl_build.config_provider import ConfigProvider

if TYPE_CHECKING:
    from esl_build.observability import Observer

# Bump when what a stage's plan contains changes without the parser version changing, so
# verdicts cached by an older esl-build are not trusted.
CHECKED_KEY_VERSION = 1



class Project:
    """The lessons repository at ``settings.root``. Services may be injected (tests, workers);
    ``observer`` receives the stage events (default: ``ESL_BUILD_EVENT_LOG``, else nothing)."""

    def __init__(self, settings: Settings, *, publisher: Publisher | None = None,
                 voice: Voice | None = None, storage: Storage | None = None,
                 config: Config | None = None, observer: Observer | None = None,
                 store: ManifestStore | None = None):
        from esl_build.observability import observer_for

        self.settings = settings
        self.observer = observer or observer_for(settings)
        self.store: ManifestStore = store or store_from(settings)
        self._publisher, self._voice, self._storage = publisher, voice, storage
        self._config = config
        self.root = str(settings.root)
        self.status_cache: dict[str, tuple[object, dict[str, Any]]] = {}  # see stages.statuses
        self._lessons_prefix = settings.relative(settings.lessons_dir)
        self._lesson_ids: list[str] | None = None
        self._refused: list[Problem] = []
        self._sources: dict[str, tuple[tuple[int, int, int], bytes, str]] = {}
        self._lessons: dict[tuple[str, str], tuple[Lesson | None, list[Problem]]] = {}
        self._lock = threading.RLock()
        self._unsaved_doit: dict[str, dict[str, dict[str, Any]]] = {}  # see queue_doit_record
        self._recorded: set[tuple[str, str]] = set()  # see note_recorded
        self.memo: dict[str, Any] = {}  # once-per-run results of stages (e.g. tts's budget)

    # -- configuration and services ---------------------------------------------------------
    @cached_property
    def config_provider(self) -> ConfigProvider:
        """Where presets, students and voices come from (files, or an HTTP service)."""
        from esl_build.config_provider import config_provider_from
        return config_provider_from(self.settings)

    @property
    def config(self) -> Config:
        """The run's one snapshot of the configuration, checked."""
        if self._config is None:
            self._config = parse_config(self.config_provider.documents())
        return self._config

    @cached_property
    def publisher(self) -> Publisher:
        from esl_build.services.factory import publisher_from
        return self._publisher or publisher_from(self.settings, lambda: self.config)

    @cached_property
    def voice(self) -> Voice:
        from esl_build.services.factory import voice_from
        return self._voice or voice_from(self.settings, self.config)

    @cached_property
    def storage(self) -> Storage:
        from esl_build.services.factory import storage_from
        return self._storage or storage_from(self.settings)

    @cached_property
    def checked(self) -> CheckedCache:
        """Lessons verified up to date before, valid while files and settings are unchanged
        (empty when a service can't be set up: its stages then report why)."""
        try:
            key = self._settings_key()
        except EslBuildError:
            key = None
        return CheckedCache(self.settings.build_dir / ".cache" / "checked.json", key, self.root,
                            self.store)

    @cached_property
    def failures(self) -> FailureLog:
        """The stages that failed, by lesson (kept outside the manifests)."""
        return FailureLog(self.settings.build_dir / ".cache" / "failures.json",
                          self.settings.build_dir / ".locks" / "failures.lock")

    def check_setup(self) -> None:
        """Raise ``ConfigInvalid`` now for a bad setting, service or config file, rather than
        in every lesson's stages. The config files are trusted without reading them when
        lessons were verified against exactly these files (the cache of verified lessons)."""
        for service in ("publisher", "voice", "storage"):
            getattr(self, service)
        if not self.checked.vouches():
            _ = self.config

    def new_run(self) -> None:
        """Forget what this process concluded about the files (a long-lived process calls
        this before each build; each doit run does)."""
        self.status_cache.clear()
        self._recorded.clear()
        self.store.new_run()
        if "checked" in vars(self):
            self.checked.new_run()

    def _settings_key(self) -> str:
        """Everything besides a lesson's own files that its stages' plans depend on."""
        from esl_build.stages.validate import PARSER_VERSION

        return fingerprint({
            "code": [__version__, PARSER_VERSION, CHECKED_KEY_VERSION],
            "manifests": self.store.location("_"),  # which store (files, which bucket)
            "strict": self.settings.strict,
            "services": [[s.name, s.settings] for s in (self.publisher, self.voice,
                                                        self.storage)],
            "config": [self.config_provider.name, self.config_provider.identity()],
        })

    # -- doit's records, written with the next stage record (one write per stage) ----------
    def queue_doit_record(self, lesson_id: str, task_id: str, record: dict[str, Any]) -> None:
        """Keep doit's record of a task until the lesson's next manifest write carries it."""
        with self._lock:
            self._unsaved_doit.setdefault(lesson_id, {})[task_id] = record

    def drop_doit_record(self, lesson_id: str, task_id: str) -> None:
        with self._lock:
            self._unsaved_doit.get(lesson_id, {}).pop(task_id, None)

    def unsaved_doit_records(self, lesson_id: str | None = None
                             ) -> dict[str, dict[str, Any]]:
        """Take the queued doit records of one lesson (task id → record), or of every
        lesson (lesson id → task id → record) when ``lesson_id`` is None."""
        with self._lock:
            if lesson_id is None:
                taken, self._unsaved_doit = self._unsaved_doit, {}
                return taken
            return self._unsaved_doit.pop(lesson_id, {})

    def note_recorded(self, stage: str, lesson_id: str) -> None:
        """This process just wrote the stage's record (see ``recorded_here``)."""
        with self._lock:
            self._recorded.add((stage, lesson_id))

    def recorded_here(self, stage: str, lesson_id: str) -> bool:
        """Whether this process wrote the stage's record during this run."""
        return (stage, lesson_id) in self._recorded

    def flush_doit_records(self) -> None:
        """Write the doit records no stage record carried: one write per lesson. The doit
        backend does it when the run ends, and the index first, so the manifests it reads
        are final for this run."""
        for lesson_id, records in sorted(self.unsaved_doit_records().items()):
            if records:
                # A corrupt or unreachable manifest: its stage already said so, and doit's
                # records are not state (staleness never reads them).
                with contextlib.suppress(EslBuildError):
                    self.store.update(lesson_id, functools.partial(_add_doit_records, records))

    # -- lessons ----------------------------------------------------------------------------
    def lesson_ids(self) -> list[str]:
        """Every lesson under the lessons folder: its path without ``.md``, sorted (found once
        per project; see ``esl_build.lesson.discovery``, which ``esl-build validate`` uses too)."""
        if self._lesson_ids is None:
            from esl_build.lesson.discovery import find_lessons

            found = find_lessons(self.settings.lessons_dir, self.relative)
            self._refused = found.problems
            self._lesson_ids = [lesson_id for _, lesson_id in found.lessons]
        return self._lesson_ids

    def refused_lessons(self) -> list[Problem]:
        """The ``*.md`` files under the lessons folder that can't be built, each with why
        (a name that is not a plain lesson id, a symlink to nothing)."""
        self.lesson_ids()
        return list(self._refused)

    def source_path(self, lesson_id: str) -> Path:
        return self.settings.lessons_dir / f"{lesson_id}.md"

    def display_path(self, lesson_id: str) -> str:
        """The lesson file as messages name it: relative to the project root."""
        return f"{self._lessons_prefix}/{lesson_id}.md"

    def relative(self, path: Path | str) -> str:
        """``path`` relative to the project root, posix style (for manifests and messages)."""
        return shown(path, self.root)

    def source_stamp(self, lesson_id: str) -> tuple[int, int, int] | None:
        """(inode, mtime, size) of the lesson file, or None when it is gone."""
        try:
            stat = os.stat(os.path.join(self.settings.lessons_dir, lesson_id + ".md"))
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def source(self, lesson_id: str) -> tuple[bytes, str]:
        """The lesson file's bytes and their sha256, re-read only when the file changed."""
        key = self.source_stamp(lesson_id)
        if key is None:
            raise FileNotFoundError(self.source_path(lesson_id))
        hit = self._sources.get(lesson_id)
        if hit and hit[0] == key:
            return hit[1], hit[2]
        data = self.source_path(lesson_id).read_bytes()
        digest = sha256_bytes(data)
        self._sources[lesson_id] = (key, data, digest)
        return data, digest

    def parse(self, lesson_id: str) -> tuple[Lesson | None, list[Problem]]:
        """Parse the lesson (cached per content): the Lesson and every problem found."""
        from esl_build.lesson import parse_lesson

        data, digest = self.source(lesson_id)
        key = (lesson_id, digest)
        with self._lock:
            if key not in self._lessons:
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    line = data[: exc.start].count(b"\n") + 1
                    self._lessons[key] = (None, [Problem(
                        self.display_path(lesson_id), line, "error",
                        "the file is not UTF-8 text; save it as UTF-8")])
                else:
                    self._lessons[key] = parse_lesson(
                        text, path=self.display_path(lesson_id), lesson_id=lesson_id,
                        strict=self.settings.strict)
            return self._lessons[key]

    def lesson(self, lesson_id: str) -> Lesson:
        """The valid lesson, or ``LessonInvalid`` listing every error."""
        lesson, problems = self.parse(lesson_id)
        if lesson is None or any(p.is_error for p in problems):
            raise LessonInvalid(problems)
        return lesson


def _add_doit_records(records: dict[str, Any], manifest: dict[str, Any]) -> None:
    manifest["doit"].update(records)
