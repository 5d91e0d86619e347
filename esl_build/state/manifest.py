"""The lesson manifest: the committed, readable record of every stage, and doit's database.

A manifest (schema version 2) is plain JSON, written with sorted keys and two-space indents::

    {"schemaVersion": 2, "lesson": "unit1", "source": "lessons/unit1.md",
     "stages": {"tts": {"backend": "espeak", "fingerprint": "sha256:…", "inputs": {…},
                        "outputs": {"mp3": "build/unit1/audio.mp3", "sha256": "…", …},
                        "cost": {"characters": 1234, "requests": 9},
                        "finishedAt": "2026-11-28T12:00:00Z", "runId": "r-7f3a09c1"}},
     "remote": {"import/notion": {"pageId": "…", "url": "…"}, "upload/s3": {…}},
     "doit": {"tts:unit1": {"checker:": "MD5Checker", "deps:": [], "_values_:": {}}}}

``stages``  one record per stage, replaced whole when the stage succeeds. A record without a
            ``fingerprint`` was forgotten (``doit forget``) and reruns; its outputs stay.
``remote``  the last identity each remote-producing (stage, backend) pair returned. It is never
            deleted, so a failed stage, ``doit forget`` or a backend switch can't lead to a
            second page or object: the next run updates the one recorded here.
``doit``    doit's own per-task records (kept for doit's commands; staleness never reads them).

Version 1 manifests (the predecessor's: ``pageId``, ``pageUrl``, ``audio``, ``mdHash``) are read
and upgraded in memory; their page id and audio URL are adopted into ``remote``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from esl_build import shapes as sh
from esl_build.errors import ManifestCorrupt

SCHEMA_VERSION = 2
STAGE_NAMES = ("validate", "import", "tts", "upload", "add-audio")
IDENTITY_STAGES = ("import", "upload", "add-audio")  # stages whose outputs name remote things
Manifest = dict[str, Any]


def new_manifest(lesson_id: str, source: str) -> Manifest:
    return {"schemaVersion": SCHEMA_VERSION, "lesson": lesson_id, "source": source,
            "stages": {}, "remote": {}, "doit": {}}


def dumps(manifest: Manifest) -> bytes:
    """The manifest's file bytes: deterministic (sorted keys, fixed indent, final newline)."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


_RESTORE = "restore it from git or delete it (the next build then re-creates it)"


def loads(data: bytes, *, where: str, lesson_id: str, source: str,
          places: Places | None = None) -> Manifest:
    """Parse and check a manifest file against its shape; upgrade version 1.

    ``where`` names the file in errors; ``places`` says where its paths may point (the
    project's defaults when None). Anything malformed is a ``ManifestCorrupt`` naming the
    field: a manifest comes from a pull request, and one taken as empty would re-create
    its page."""
    try:
        doc = orjson.loads(data)  # a no-op build parses every manifest: 3x faster than json
    except orjson.JSONDecodeError:
        try:  # json's message names the line
            doc = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ManifestCorrupt(f"{where}: not UTF-8 text; {_RESTORE}") from None
        except json.JSONDecodeError as exc:
            raise ManifestCorrupt(f"{where}:{exc.lineno}: invalid JSON ({exc.msg}); "
                                  f"{_RESTORE}") from None
        except RecursionError:
            raise ManifestCorrupt(f"{where}: nested too deeply to be a manifest; "
                                  f"{_RESTORE}") from None
        except ValueError:  # an integer of thousands of digits (Python's limit is 4,300)
            raise ManifestCorrupt(f"{where}: holds a number too long to be a manifest's; "
                                  f"{_RESTORE}") from None
    if not isinstance(doc, dict):
        raise ManifestCorrupt(f"{where}: a manifest must be a JSON object")
    if "schemaVersion" not in doc and not {"stages", "doit", "remote"}.isdisjoint(doc):
        # Not the predecessor's (it kept none of these): adopting it as one would drop them.
        raise ManifestCorrupt(f"{where}: schemaVersion: is missing; {_RESTORE}")
    version = doc.get("schemaVersion", 1)
    if version == 1 and type(version) is int:
        _check(_V1_SHAPE, doc, where)
        return upgrade_v1(doc, lesson_id=lesson_id, source=source)
    if version != SCHEMA_VERSION:
        raise ManifestCorrupt(f"{where}: schemaVersion {version!r} is not supported by this "
                              f"esl-build (it reads 1 and {SCHEMA_VERSION}); upgrade esl-build")
    for key in ("stages", "remote", "doit"):
        doc.setdefault(key, {})
    doc.setdefault("lesson", lesson_id)
    doc.setdefault("source", source)
    _check(manifest_shape(places or Places()), doc, where)
    doc["lesson"], doc["source"] = lesson_id, source
    return doc


def _check(shape: sh.Shape, doc: Manifest, where: str) -> None:
    try:
        shape(doc)
    except sh.ShapeError as error:
        raise ManifestCorrupt(f"{where}: {error}; {_RESTORE}") from None


_PREFIXES: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Places:
    """Where the local paths a manifest records may point: the build folder (``lessonJson``,
    ``mp3``, pages) and the local bucket (stored objects). Absolute, or relative to ``root``;
    the defaults are the project's, relative to the project root."""

    root: str = ""
    build: str = "build"
    bucket: str = "build/bucket"

    def inside(self, value: str, folder: str) -> bool:
        """Whether the path ``value`` (relative to the root, or absolute) lies in ``folder``."""
        path = os.path.normpath(os.path.join(self.root, value))
        return path.startswith(self._prefix(folder))

    def _prefix(self, folder: str) -> str:
        prefix = _PREFIXES.get((self.root, folder))
        if prefix is None:
            base = os.path.normpath(os.path.join(self.root, folder))
            prefix = _PREFIXES[(self.root, folder)] = base.rstrip(os.sep) + os.sep
        return prefix

    def shown(self, folder: str) -> str:
        base = os.path.normpath(os.path.join(self.root, folder))
        if self.inside(base, self.root or "."):
            return os.path.relpath(base, self.root or ".") + "/"
        return base + "/"


_UNSAFE = frozenset("\\\x7f" + "".join(map(chr, range(32))))
_WEB = re.compile(r"https?://\S+")
_HEX = sh.text(pattern="[0-9a-f]{64}", what="a sha256 hex digest")
_DIGEST = sh.text(pattern="sha256:[0-9a-f]{64}", what='"sha256:" and 64 hex digits')


def _plain(value: str) -> bool:
    """A relative posix path without empty, ``.`` or ``..`` parts or odd characters."""
    return (bool(value) and not value.startswith("/") and _UNSAFE.isdisjoint(value)
            and all(part not in ("", ".", "..") for part in value.split("/")))


def _path_in(places: Places, folder: str, *, urls: bool = False) -> sh.Shape:
    """A file inside ``folder``; with ``urls`` also an http(s) URL, or a file: URL inside it."""
    where = places.shown(folder)

    def check(value: Any) -> None:
        if not isinstance(value, str):
            raise sh.ShapeError("must be a string")
        if urls and _WEB.fullmatch(value):
            return
        path = unquote(urlsplit(value).path) if urls and value.startswith("file:") else value
        if path.startswith("/"):
            ok = _UNSAFE.isdisjoint(path) and ".." not in path.split("/")
        else:
            ok = _plain(path)
        if not (ok and places.inside(path, folder)):
            raise sh.ShapeError(f"must name a file inside {where}"
                                f"{' or be an http(s) URL' if urls else ''}, not {value[:80]!r}")
    return check


def _relative_or_url(value: Any) -> None:
    """An http(s) URL or a plain relative path (an id or key)."""
    if not isinstance(value, str):
        raise sh.ShapeError("must be a string")
    if not (_WEB.fullmatch(value) or _plain(value)):
        raise sh.ShapeError(f"must be an http(s) URL or a relative path without '..', "
                            f"not {value[:80]!r}")


def _key(value: Any) -> None:
    if not isinstance(value, str) or not _plain(value):
        raise sh.ShapeError("must be a relative object key like 'audio/x/1.mp3' "
                            "(no '..', empty parts or leading '/')")


# A tts record's voice: a bare id (records before the cast was recorded) or the recorded
# choice (esl_build.voices.casting.VoiceChoice).
_VOICE = sh.either(sh.text(), sh.obj({"id": sh.text(min_length=1)},
                                     {"name": sh.text(), "source": sh.text(),
                                      "score": sh.nullable(sh.number()), "basis": sh.text()}),
                   message="must be a voice id or {id, name, source, score, basis}")


@cache
def manifest_shape(places: Places) -> sh.Shape:
    """The shape of a version 2 manifest (what ``manifest.schema.json`` describes), with its
    local paths confined to ``places``."""
    in_build = _path_in(places, places.build)
    page = _path_in(places, places.build, urls=True)
    audio = _path_in(places, places.bucket, urls=True)
    json = sh.json_value()
    outputs = {
        "validate": sh.obj({"lessonJson": in_build, "sha256": _HEX, "pageDigest": _DIGEST,
                            "speechDigest": _DIGEST, "title": sh.text(), "student": sh.text(),
                            "level": sh.text(), "topic": sh.text(),
                            "warnings": sh.integer(minimum=0)}),
        "import": sh.obj({"pageId": sh.text(min_length=1), "url": page}, {"sha256": _HEX},
                         extra=json),
        "tts": sh.obj({"mp3": in_build, "sha256": _HEX, "seconds": sh.number(minimum=0),
                       "lines": sh.integer(minimum=0), "synthesized": sh.integer(minimum=0),
                       "voices": sh.mapping(_VOICE, what="speaker")},
                      {"requests": sh.integer(minimum=0), "mode": sh.text(),
                       "casting": sh.text(),
                       # with remote storage: the object the MP3 was stored as when paid for
                       "stored": sh.obj({"key": _key}, {"bucket": sh.text()})}),
        "upload": sh.obj({"key": _key, "url": audio},
                         {"bucket": sh.text(), "etag": sh.text()}, extra=json),
        "add-audio": sh.obj({"url": audio},
                            {"blockId": sh.text(), "sha256": _HEX, "src": page,
                             "page": sh.either(page, _relative_or_url, sh.obj({}, extra=json),
                                               message="must be a page path, URL or object")},
                            extra=json),
    }
    stages = {stage: sh.obj(
        {"backend": sh.text(min_length=1), "inputs": sh.json_object(),
         "outputs": outputs[stage],
         "cost": sh.obj({"characters": sh.integer(minimum=0),
                         "requests": sh.integer(minimum=0)}),
         "finishedAt": sh.text(pattern=r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                               what="a UTC time like 2026-11-28T12:00:00Z"),
         "runId": sh.text(min_length=1)},
        {"fingerprint": _DIGEST}) for stage in STAGE_NAMES}
    remote = sh.obj({}, {"pageId": sh.text(), "url": sh.nullable(sh.text())}, extra=json)
    doit_record = sh.obj({}, {"_values_:": sh.json_object(), "checker:": sh.text(),
                              "deps:": _strings, "result:": json, "ignore:": sh.text()},
                         extra=json)
    return sh.obj(
        {"schemaVersion": sh.const(SCHEMA_VERSION), "lesson": sh.text(min_length=1),
         "source": sh.text(min_length=1), "stages": sh.obj({}, stages),
         "remote": sh.mapping(remote, keys="(import|upload|add-audio)/[a-z0-9-]+",
                              what="<stage>/<backend> name"),
         "doit": sh.mapping(doit_record, keys="(validate|import|tts|upload|add-audio):.+",
                            what="<stage>:<lesson id> task name")},
        {"migratedFrom": sh.json_object()})


def _strings(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise sh.ShapeError("must be a list of strings")


_OPTIONAL_TEXT = sh.nullable(sh.text())
# The predecessor's manifest: only what is adopted must have the right type.
_V1_SHAPE = sh.obj({}, {"schemaVersion": sh.const(1), "pageId": _OPTIONAL_TEXT,
                        "pageUrl": _OPTIONAL_TEXT, "mdHash": _OPTIONAL_TEXT,
                        "timestamp": _OPTIONAL_TEXT, "preset": _OPTIONAL_TEXT,
                        "ttsMode": _OPTIONAL_TEXT,
                        "audio": sh.nullable(sh.obj({}, {"url": _OPTIONAL_TEXT},
                                                    extra=sh.json_value()))},
                   extra=sh.json_value())


def upgrade_v1(old: dict[str, Any], *, lesson_id: str, source: str) -> Manifest:
    """A version 1 manifest as version 2: its page and audio URL become remote identities.

    No stage record is made (v1 kept no input fingerprints), so every stage runs once; the
    import updates the adopted page instead of creating a second one."""
    doc = new_manifest(lesson_id, source)
    if old.get("pageId"):
        doc["remote"]["import/notion"] = {"pageId": old["pageId"], "url": old.get("pageUrl")}
    audio: dict[str, Any] = old["audio"] if isinstance(old.get("audio"), dict) else {}
    if audio.get("url"):
        doc["remote"]["upload/s3"] = {"url": audio["url"]}
    doc["migratedFrom"] = {key: old[key] for key in
                           ("schemaVersion", "mdHash", "timestamp", "preset", "ttsMode")
                           if key in old}
    doc["migratedFrom"].setdefault("schemaVersion", 1)
    return doc


def record_stage(manifest: Manifest, *, stage: str, backend: str, remote: bool,
                 fingerprint: str, inputs: dict[str, Any], outputs: dict[str, Any],
                 cost: dict[str, int], run_id: str, now: datetime | None = None) -> None:
    """Replace ``stage``'s record after it succeeded; a remote backend's identity (page id,
    object key, block id) is also kept under ``remote``, where nothing deletes it."""
    manifest["stages"][stage] = {
        "backend": backend, "fingerprint": fingerprint, "inputs": inputs, "outputs": outputs,
        "cost": cost, "runId": run_id,
        "finishedAt": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if remote and stage in IDENTITY_STAGES:
        manifest["remote"][f"{stage}/{backend}"] = outputs


def forget_stage(manifest: Manifest, stage: str) -> None:
    """Make ``stage`` rerun next time while keeping what it produced (ids, keys)."""
    record = manifest["stages"].get(stage)
    if record:
        record.pop("fingerprint", None)
