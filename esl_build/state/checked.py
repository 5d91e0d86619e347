"""A cache of lessons verified up to date, so a no-op build costs a few ``stat`` calls each.

When every stage of a lesson is found up to date (by content: fingerprints and outputs), the
identity (inode, mtime, size) of every file that verdict read is remembered: the lesson's
Markdown and the outputs the stages' durability checks looked at; so are the manifest's
stamp in its store (a file's identity, an S3 object's ETag from the run's one listing) and
doit's part of the manifest. Next run, if all of them are unchanged and the settings are the
same, the lesson is up to date without reading or computing anything; if any differs, it is
checked by content again. git's index avoids rehashing files this way.

It is only a cache (``build/.cache/checked.json``): deleting it, or two builds overwriting
each other's copy, costs a recomputation and never a wrong answer.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from esl_build.files import atomic_write
from esl_build.fingerprint import fingerprint

if TYPE_CHECKING:
    from esl_build.state.stores import ManifestStore

VERSION = 3
Stamp = tuple[int, int, int] | None


def stamp(path: str) -> Stamp:
    """(inode, mtime in ns, size) of a file, or None when it does not exist."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


class CheckedCache:
    """Lessons last verified up to date, under one settings fingerprint."""

    def __init__(self, file: Path, settings_key: str | None, root: str,
                 store: ManifestStore | None = None):
        self.file = file
        self.store = store  # whose stamp of each manifest is part of a verdict
        self.settings_key = settings_key
        self.root = root  # paths are kept relative to it (shorter file, movable checkout)
        self._entries: dict[str, dict[str, Any]] = {}
        self._fresh: dict[str, bool] = {}  # this run's answers
        self._dirty = False
        self._lock = threading.Lock()
        if settings_key is None:  # settings that can't be fingerprinted: cache nothing
            return
        try:
            saved = orjson.loads(file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return
        if (isinstance(saved, dict) and saved.get("version") == VERSION
                and saved.get("settings") == settings_key
                and isinstance(saved.get("lessons"), dict)):
            self._entries = saved["lessons"]

    def new_run(self) -> None:
        """Forget this process's answers: files may have changed since the last run."""
        self._fresh.clear()

    def vouches(self) -> bool:
        """True when some lesson was verified under these very settings and config files
        (so those files were valid then: every verdict read them)."""
        return bool(self._entries)

    def fresh(self, lesson_id: str) -> bool:
        """True when every file of the lesson's last verdict is as it was then."""
        answer = self._fresh.get(lesson_id)
        if answer is None:
            entry = self._entries.get(lesson_id)
            join, root = os.path.join, self.root
            answer = entry is not None and all(
                stamp(join(root, path)) == (tuple(before) if before else None)
                for path, before in entry["files"].items()) and (
                self.store is None or _same(self.store.stamp(lesson_id), entry.get("manifest")))
            self._fresh[lesson_id] = answer
        return answer

    def doit_records(self, lesson_id: str) -> dict[str, Any]:
        """doit's part of the lesson's manifest, as it was when the lesson was verified."""
        return dict(self._entries[lesson_id]["doit"])

    def remember(self, lesson_id: str, files: dict[str, Stamp],
                 doit_records: dict[str, Any], manifest: Any = None) -> None:
        """Record that the lesson was up to date with ``files`` and the ``manifest``'s store
        stamp as taken *before* checking."""
        entry = {"files": {os.path.relpath(path, self.root): list(s) if s else None
                           for path, s in files.items()},
                 "manifest": manifest, "doit": doit_records}
        with self._lock:
            self._fresh[lesson_id] = True
            if self._entries.get(lesson_id) != entry:
                self._entries[lesson_id] = entry
                self._dirty = True

    def forget(self, lesson_id: str) -> None:
        with self._lock:
            self._fresh[lesson_id] = False
            if self._entries.pop(lesson_id, None) is not None:
                self._dirty = True

    def signature(self, lesson_ids: list[str]) -> str | None:
        """A fingerprint of the verdicts of these lessons, or None unless all are fresh: equal
        signatures mean no file any of them depends on has changed."""
        if not all(self.fresh(lesson_id) for lesson_id in lesson_ids):
            return None
        return fingerprint([self.settings_key,
                            [[i, self._entries[i]["files"], self._entries[i].get("manifest")]
                             for i in lesson_ids]])

    def save(self) -> None:
        """Write the cache if it changed (atomically; a concurrent build may overwrite it)."""
        with self._lock:
            if not self._dirty or self.settings_key is None:
                return
            data: dict[str, Any] = {"version": VERSION, "settings": self.settings_key,
                                    "lessons": self._entries}
            self._dirty = False
        atomic_write(self.file, orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def _same(now: Any, before: Any) -> bool:
    """Stamps compare as JSON (a tuple and the list it was saved as are equal)."""
    return bool(now is not None and (list(now) if isinstance(now, tuple) else now) == before)
