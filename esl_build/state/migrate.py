"""``esl-build manifests push|pull``: move manifests between the file store and S3.

Idempotent: a manifest equal on both sides is left alone. A copy never replaces a *newer*
manifest: when the target holds a stage record the source lacks, or one that finished later
than the source's, that lesson is refused (and named); the others are still copied. Writes
are conditional on the version just read, so a build running meanwhile is never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from esl_build.errors import WriteConflict
from esl_build.state import manifest as mf
from esl_build.state.stores import ManifestStore


@dataclass
class Moved:
    """What a push or pull did, lesson by lesson."""

    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # lesson id → why


def copy_manifests(source: ManifestStore, target: ManifestStore,
                   ids: list[str] | None = None) -> Moved:
    """Copy every manifest of ``source`` (or those of ``ids``) into ``target``."""
    moved = Moved()
    for lesson_id in ids or list(source.ids()):
        doc, _ = source.read_versioned(lesson_id)
        if doc is None:
            moved.refused[lesson_id] = f"no manifest at {source.location(lesson_id)}"
            continue
        there, version = target.read_versioned(lesson_id)
        if there is not None and mf.dumps(there) == mf.dumps(doc):
            moved.unchanged.append(lesson_id)
            continue
        newer = _newer_stages(there or {}, doc)
        if newer:
            moved.refused[lesson_id] = (f"{target.location(lesson_id)} is newer "
                                        f"({', '.join(newer)}); not overwritten")
            continue
        try:
            target.write(lesson_id, doc, expect=version)
        except WriteConflict:
            moved.refused[lesson_id] = f"{target.location(lesson_id)} changed meanwhile"
            continue
        moved.copied.append(lesson_id)
    return moved


def _newer_stages(target: dict[str, Any], source: dict[str, Any]) -> list[str]:
    """Stages the target has and the source lacks, or finished later in the target."""
    theirs, ours = target.get("stages") or {}, source.get("stages") or {}
    return sorted(stage for stage, record in theirs.items()
                  if stage not in ours
                  or str(record.get("finishedAt", "")) > str(ours[stage].get("finishedAt", "")))
