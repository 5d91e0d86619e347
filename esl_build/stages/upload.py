"""upload: the lesson MP3 → storage, under a key named by its content.

The key is ``audio/<lesson-id>/<sha256[:16]>.mp3`` (S3: ``S3_KEY_TEMPLATE``, by default
``<S3_PREFIX>/<lesson-id>/<sha256[:16]>.mp3``): the same audio always lands on the same key
(a rerun sends nothing), and new audio gets a new key, so a URL already linked into a page
never changes under a listener. ``planned`` names the key and URL without sending anything.
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
    key = object_key(project, plan.lesson_id, plan.inputs["audio"])
    outputs = dict(project.storage.put(source, key, sha256=plan.inputs["audio"],
                                       content_type="audio/mpeg"))
    sent = outputs.pop("sent", True)  # S3: a HEAD, and a PUT only for new audio
    return Outcome(outputs, Cost(requests=(1 + bool(sent)) if project.storage.remote else 0))


def planned(project: Project, plan: Plan) -> dict[str, str]:
    """The key and URL a real upload of this plan records (a dry run shows them)."""
    key = object_key(project, plan.lesson_id, plan.inputs["audio"])
    url_for = getattr(project.storage, "url_for", None)
    return {"key": key, "url": url_for(key) if url_for else key}


def object_key(project: Project, lesson_id: str, sha256: str) -> str:
    """The storage key of a lesson's audio (the storage's template when it has one)."""
    key_for = getattr(project.storage, "key_for", None)
    return str(key_for(lesson_id, sha256)) if key_for else f"audio/{lesson_id}/{sha256[:16]}.mp3"
