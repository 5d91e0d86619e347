"""A lessons repository: its settings, config, manifests, lessons and (lazily) its services.

One ``Project`` serves a whole doit run: the task loader, the up-to-date checks, the doit
backend and the stage actions share it, so each lesson is read and each manifest parsed at
most once per run. Services are created on first use, so a no-op build never imports an SDK.
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

from esl_build import __version__
from esl_build.config import Config, load_config
from esl_build.errors import EslBuildError, LessonInvalid, Problem
from esl_build.failures import FailureLog
from esl_build.files import shown
from esl_build.fingerprint import fingerprint, sha256_bytes
from esl_build.lesson.model import Lesson
from esl_build.services.protocols import Publisher, Storage, Voice
from esl_build.settings import Settings
from esl_build.state.checked import CheckedCache, stamp
from esl_build.state.manifest import Places
from esl_build.state.stores import FileManifestStore

# Bump when what a stage's plan contains changes without the parser version changing, so
# verdicts cached by an older esl-build are not trusted.
CHECKED_KEY_VERSION = 1

_current: Project | None = None
_current_lock = threading.Lock()


class Project:
    """The lessons repository at ``settings.root``. Services may be injected (tests, workers)."""

    def __init__(self, settings: Settings, *, publisher: Publisher | None = None,
                 voice: Voice | None = None, storage: Storage | None = None,
                 config: Config | None = None):
        self.settings = settings
        self.store = FileManifestStore(
            settings.lessons_dir, settings.build_dir / ".locks", root=settings.root,
            places=Places(str(settings.root), str(settings.build_dir),
                          str(settings.local_bucket)))
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

    # -- the process-wide project used by dodo.py, the doit backend and the actions --------
    @classmethod
    def current(cls) -> Project:
        """The project of this process, resolved from the environment on first use."""
        global _current
        with _current_lock:
            if _current is None:
                _current = cls(Settings.resolve())
            return _current

    @classmethod
    def use(cls, project: Project | None) -> None:
        """Make ``project`` the process-wide one (tests, embedding); None resets it."""
        global _current
        with _current_lock:
            _current = project

    # -- configuration and services ---------------------------------------------------------
    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.settings.config_dir, self.settings.root)
        return self._config

    @cached_property
    def publisher(self) -> Publisher:
        from esl_build.services.factory import publisher_from
        return self._publisher or publisher_from(self.settings)

    @cached_property
    def voice(self) -> Voice:
        from esl_build.services.factory import voice_from
        return self._voice or voice_from(self.settings)

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
        return CheckedCache(self.settings.build_dir / ".cache" / "checked.json", key, self.root)

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
        if "checked" in vars(self):
            self.checked.new_run()

    def _settings_key(self) -> str:
        """Everything besides a lesson's own files that its stages' plans depend on."""
        from esl_build.stages.validate import PARSER_VERSION

        config = self.settings.config_dir
        config_files = sorted(str(p) for p in config.glob("*.*")) + sorted(
            str(p) for p in (config / "students").glob("*.json"))
        return fingerprint({
            "code": [__version__, PARSER_VERSION, CHECKED_KEY_VERSION],
            "strict": self.settings.strict,
            "services": [[s.name, s.settings] for s in (self.publisher, self.voice,
                                                        self.storage)],
            "config": {path: stamp(path) for path in config_files},
        })

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
