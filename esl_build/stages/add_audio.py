"""add-audio: link the uploaded audio into the lesson's page, above the study text.

Inputs: the page id and the audio URL. Publishing a page again keeps the player (as a Notion
page updated in place keeps its blocks), so a content edit does not rerun this stage; if the
player is gone all the same, ``durable`` notices. The publisher marks the player it owns and
replaces only that one, so audio a teacher embedded elsewhere on the page is never touched.
The html publisher also copies audio that has no http(s) URL into its site (from the lesson's
MP3, fetched back from storage if it is gone), so the site plays it wherever it is copied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from esl_build.stages import tts
from esl_build.stages.base import Cost, Outcome, Plan, upstream
from esl_build.stages.import_page import known_identity

if TYPE_CHECKING:
    from esl_build.project import Project


def plan(project: Project, lesson_id: str, manifest: dict[str, Any]) -> Plan:
    page = upstream(manifest, "import", lesson_id)
    upload = upstream(manifest, "upload", lesson_id)
    publisher = project.publisher
    return Plan("add-audio", lesson_id, publisher.name,
                {"page": page["outputs"].get("pageId"),
                 "audio": upload["outputs"].get("url"),
                 "settings": {"backend": publisher.name, **publisher.settings}})


def apply(project: Project, plan: Plan, manifest: dict[str, Any]) -> Outcome:
    page = upstream(manifest, "import", plan.lesson_id)["outputs"]
    known = known_identity(manifest, "add-audio", plan.backend)
    outputs = project.publisher.link_audio(
        page, plan.inputs["audio"], known,
        local_file=lambda: tts.ensure_local(project, plan.lesson_id, manifest))
    return Outcome(outputs, Cost(requests=outputs.pop("requests", 0)))
