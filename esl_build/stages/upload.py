"""upload: the lesson MP3 → storage, under a key named by its content.

The key is ``[prefix/]audio/<lesson-id>/<sha256[:16]>.mp3``: the same audio always lands on the
same key (a rerun overwrites nothing new), and new audio gets a new key, so a URL already
linked into a page never changes under a listener.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from esl_build.stages import tts
from esl_build.stages.base import Cost, Outcome, Plan, upstream

if TYPE_CHECKING:
    from esl_build.project import Project


def plan(project: Project, lesson_id: str, manifest: dict[str, Any]) -> Plan:
    record = upstream(manifest, "tts", lesson_id)
    storage = project.storage
    return Plan("upload", lesson_id, storage.name,
                {"audio": record["outputs"]["sha256"],
                 "settings": {"backend": storage.name, **storage.settings}})


def apply(project: Project, plan: Plan, manifest: dict[str, Any]) -> Outcome:
    source = tts.ensure_local(project, plan.lesson_id, manifest)
    key = object_key(plan.lesson_id, plan.inputs["audio"])
    outputs = project.storage.put(source, key, sha256=plan.inputs["audio"],
                                  content_type="audio/mpeg")
    return Outcome(outputs, Cost(requests=1 if project.storage.remote else 0))


def object_key(lesson_id: str, sha256: str) -> str:
    return f"audio/{lesson_id}/{sha256[:16]}.mp3"
