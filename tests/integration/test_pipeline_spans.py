"""OpenTelemetry spans per job and per stage, carrying the caller's run id (when the
``opentelemetry`` packages are installed; the pipeline itself only needs the API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esl_build import create_pipeline
from esl_build.stages import STAGES
from esl_build.testing.repo import LessonsRepo, lesson_text

sdk = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process: OpenTelemetry's rule
    return exporter


def test_each_job_and_each_stage_is_a_span_with_the_run_id(tmp_path: Path, exporter):
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text()})
    token = "sk_live_never_in_a_span_123"
    pipeline = create_pipeline(cwd=repo.root, secrets={"ELEVENLABS_API_KEY": token,
                                                       "ESL_BUILD_VOICE": "espeak"})
    exporter.clear()
    pipeline.new_assignment({"md": "unit1"}, run_id="span-1")
    spans = exporter.get_finished_spans()
    job = [s for s in spans if s.name == "esl.new_assignment"]
    assert len(job) == 1 and job[0].attributes["esl.run_id"] == "span-1"
    stage_spans = [s for s in spans if s.name.startswith("esl.stage.")]
    assert [s.name for s in stage_spans] == [f"esl.stage.{s}" for s in STAGES]
    assert all(s.parent and s.parent.span_id == job[0].context.span_id for s in stage_spans)
    assert {s.attributes["esl.run_id"] for s in stage_spans} == {"span-1"}
    assert stage_spans[2].attributes["esl.cost.characters"] > 0

    repo.write("broken", "not a lesson")
    exporter.clear()
    with pytest.raises(Exception, match="broken"):
        pipeline.new_assignment({"md": "broken"}, run_id="span-2")
    failed = {s.name: s for s in exporter.get_finished_spans()}
    assert failed["esl.stage.validate"].status.status_code.name == "ERROR"
    assert failed["esl.new_assignment"].status.status_code.name == "ERROR"
    text = " ".join(str(dict(s.attributes or {})) + str(s.status.description)
                    for s in exporter.get_finished_spans())
    assert token not in text
