"""import: publish the lesson as one page, updated in place on every later run.

Inputs: what the page shows (the validate stage's page digest), the colour preset, and the
publisher's settings (backend, target database). The page id the publisher returned is kept
under ``remote`` in the manifest, so the next run updates that page instead of creating one;
a remote publisher hands it over through ``record`` the moment the page exists, before its
body is sent, and again with what the page holds if a later request fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from esl_build.services.protocols import PageSpec
from esl_build.stages import validate
from esl_build.stages.base import Cost, Outcome, Plan, record_of

if TYPE_CHECKING:
    from esl_build.project import Project


def plan(project: Project, lesson_id: str, manifest: dict[str, Any]) -> Plan:
    checked = validate.current(project, lesson_id, manifest)
    preset_name, preset = project.config.preset_for(checked["student"])
    publisher = project.publisher
    return Plan("import", lesson_id, publisher.name,
                {"page": checked["pageDigest"], "preset": {"name": preset_name, **preset},
                 "settings": {"backend": publisher.name,
                              **publisher.settings_for(checked["student"])}})


def apply(project: Project, plan: Plan, manifest: dict[str, Any]) -> Outcome:
    spec = _spec(project, plan)
    known = known_identity(manifest, "import", plan.backend)
    key = f"import/{plan.backend}"

    def record(outputs: dict[str, Any]) -> None:  # the page exists: never lose its id
        project.store.update(plan.lesson_id,
                             lambda doc: doc.setdefault("remote", {}).__setitem__(key, outputs))

    outputs = project.publisher.publish(spec, known, record=record)
    return Outcome(outputs, Cost(requests=outputs.pop("requests", 0)))


def estimate(project: Project, plan: Plan) -> Cost:
    """Requests (and new blocks, for a remote publisher that can tell) the import would cost."""
    publisher = project.publisher
    estimator = getattr(publisher, "estimate", None)
    if estimator is None:
        return Cost()
    spec = _spec(project, plan)
    manifest = project.store.read(plan.lesson_id) or {}
    requests, blocks = estimator(spec, known_identity(manifest, "import", plan.backend))
    return Cost(requests=requests, blocks=blocks)


def _spec(project: Project, plan: Plan) -> PageSpec:
    preset = dict(plan.inputs["preset"])
    return PageSpec(project.lesson(plan.lesson_id), preset_name=preset.pop("name"),
                    preset=preset)


def known_identity(manifest: dict[str, Any], stage: str, backend: str) -> dict[str, Any] | None:
    """What this (stage, backend) produced for the lesson before, to update it in place:
    the remote identity, else the last record's outputs when it came from this backend."""
    remote: dict[str, Any] | None = (manifest.get("remote") or {}).get(f"{stage}/{backend}")
    if remote:
        return remote
    record = record_of(manifest, stage)
    return record.get("outputs") if record and record.get("backend") == backend else None
