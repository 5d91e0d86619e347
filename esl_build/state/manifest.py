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
from datetime import UTC, datetime
from typing import Any

import orjson

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


def loads(data: bytes, *, where: str, lesson_id: str, source: str) -> Manifest:
    """Parse and check a manifest file; upgrade version 1. ``where`` names it in errors."""
    try:
        doc = orjson.loads(data)  # a no-op build parses every manifest: 3x faster than json
    except orjson.JSONDecodeError:
        try:  # json's message names the line
            doc = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ManifestCorrupt(f"{where}: not UTF-8 text; restore it from git or delete it "
                                  "(the next build then re-creates it)") from None
        except json.JSONDecodeError as exc:
            raise ManifestCorrupt(f"{where}:{exc.lineno}: invalid JSON ({exc.msg}); restore it "
                                  "from git or delete it (the next build then re-creates it)"
                                  ) from None
    if not isinstance(doc, dict):
        raise ManifestCorrupt(f"{where}: a manifest must be a JSON object")
    version = doc.get("schemaVersion", 1)
    if version == 1 or ("stages" not in doc and "schemaVersion" not in doc):
        return upgrade_v1(doc, lesson_id=lesson_id, source=source)
    if version != SCHEMA_VERSION:
        raise ManifestCorrupt(f"{where}: schemaVersion {version!r} is not supported by this "
                              f"esl-build (it reads 1 and {SCHEMA_VERSION}); upgrade esl-build")
    for key in ("stages", "remote", "doit"):
        if not isinstance(doc.setdefault(key, {}), dict):
            raise ManifestCorrupt(f"{where}: {key!r} must be an object")
    for stage, record in doc["stages"].items():
        if stage not in STAGE_NAMES or not isinstance(record, dict):
            raise ManifestCorrupt(f"{where}: stages.{stage} is not a known stage record")
    doc["lesson"], doc["source"] = lesson_id, source
    return doc


def upgrade_v1(old: dict[str, Any], *, lesson_id: str, source: str) -> Manifest:
    """A version 1 manifest as version 2: its page and audio URL become remote identities.

    No stage record is made (v1 kept no input fingerprints), so every stage runs once; the
    import updates the adopted page instead of creating a second one."""
    doc = new_manifest(lesson_id, source)
    if old.get("pageId"):
        doc["remote"]["import/notion"] = {"pageId": old["pageId"], "url": old.get("pageUrl")}
    audio = old.get("audio") if isinstance(old.get("audio"), dict) else {}
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
