"""The pipeline API on real lessons repositories: the engine, the espeak voice, local storage.

Assertions are on results, events, metrics, spans, manifests and the files on disk; the only
stand-ins are a logger and a metrics sink that record what they receive, and a storage that
refuses every put (a failing service)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from esl_build import (
    ConfigurationError,
    InfrastructureError,
    ManifestError,
    ValidationError,
    create_pipeline,
    noop_logger,
    noop_metrics,
)
from esl_build.errors import StorageError
from esl_build.observability import JsonLinesLogger, PrometheusMetrics
from esl_build.pipeline import EnvironmentSecrets, Services
from esl_build.services.espeak import EspeakVoice
from esl_build.services.local import LocalStorage
from esl_build.stages import STAGES
from esl_build.testing.repo import LessonsRepo, lesson_text


class Events:
    """A logger that keeps every event."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def log(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)

    def names(self, prefix: str = "stage.") -> list[str]:
        return [e["event"] for e in self.events if e["event"].startswith(prefix)]


class Recorded:
    """A metrics sink that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float, dict[str, str]]] = []

    def timing(self, name: str, ms: float, tags: Any = None) -> None:
        self.calls.append(("timing", name, ms, dict(tags or {})))

    def increment(self, name: str, value: float = 1, tags: Any = None) -> None:
        self.calls.append(("increment", name, value, dict(tags or {})))

    def names(self) -> set[str]:
        return {name for _, name, _, _ in self.calls}


@pytest.fixture
def repo(tmp_path: Path) -> LessonsRepo:
    return LessonsRepo.create(tmp_path / "repo", {
        "unit1": lesson_text(),
        "b1/unit2": lesson_text(("Alex: Where is the station?", "Mara: Next to the bank."),
                                title="Directions", student="Leo")})


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``root`` (folders map to None)."""
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def test_new_assignment_builds_every_stage_and_reports_page_audio_and_cost(repo):
    pipeline = create_pipeline(cwd=repo.root, secrets={}, logger=noop_logger,
                               metrics=noop_metrics)
    result = pipeline.new_assignment({"md": "lessons/unit1.md"}, run_id="job-1")
    assert [(s.stage, s.state) for s in result.steps] == [(s, "ran") for s in STAGES]
    assert result.lesson == "unit1" and result.md == "lessons/unit1.md"
    assert result.page_url == "build/site/unit1.html" and result.page_id
    assert result.audio and result.audio.path == "build/unit1/audio.mp3"
    assert result.audio.url and result.audio.sha256 and set(result.audio.voices) == {"Alex",
                                                                                     "Mara"}
    assert result.manifest_path == "lessons/unit1.manifest.json"
    assert result.cost["characters"] == result.step("tts").cost["characters"] > 0
    assert result.duration_ms > 0 and result.started_at <= result.finished_at
    manifest = json.loads(repo.path(result.manifest_path).read_text())
    assert {r["runId"] for r in manifest["stages"].values()} == {"job-1"}

    again = pipeline.new_assignment({"md": "unit1"})  # a lesson id works too
    assert {s.state for s in again.steps} == {"up-to-date"} and again.cost["characters"] == 0
    status = pipeline.get_assignment_status("unit1.md")
    assert status.up_to_date and status.stages["tts"].run_id == "job-1"
    assert status.audio == result.audio


def test_flags_skip_force_and_rerun(repo):
    pipeline = create_pipeline(cwd=repo.root, secrets={})
    first = pipeline.new_assignment({"md": "unit1", "skipImport": True, "with_tts": True})
    assert first.step("import").state == "skipped"
    assert first.step("add-audio").state == "skipped"  # it needs the page
    assert "import" in first.step("add-audio").reason
    assert first.step("upload").state == "ran"
    no_audio = pipeline.new_assignment({"md": "b1/unit2", "with_tts": False})
    assert [s.state for s in no_audio.steps] == ["ran", "ran", "skipped", "skipped", "skipped"]
    forced = pipeline.new_assignment({"md": "unit1", "force": True})
    assert all(s.state == "ran" for s in forced.steps)
    rerun = pipeline.rerun_assignment({"md": "unit1", "steps": ["upload"]}, run_id="re-1")
    assert [s.state for s in rerun.steps] == ["skipped", "skipped", "skipped", "ran",
                                              "skipped"]
    with pytest.raises(ManifestError) as never_built:
        pipeline.rerun_assignment({"md": "b1/unit2", "steps": "upload"})
    assert never_built.value.stage == "upload" and never_built.value.lesson == "b1/unit2"
    assert not never_built.value.retryable


def test_injected_logger_and_metrics_receive_every_stage_event_with_the_callers_run_id(repo):
    events, metrics, seen = Events(), Recorded(), []
    pipeline = create_pipeline(cwd=repo.root, secrets={}, logger=events, metrics=metrics)
    pipeline.new_assignment({"md": "unit1"}, callbacks=seen.append, run_id="queue-42")
    expected = [f"stage.{s}.{kind}" for s in STAGES for kind in ("start", "success")]
    assert events.names() == expected
    assert [e["event"] for e in seen] == expected  # the callback gets the stage events
    assert {e["run_id"] for e in events.events} == {"queue-42"}
    assert events.names("pipeline.") == ["pipeline.newAssignment.start",
                                         "pipeline.newAssignment.success"]
    success = next(e for e in events.events if e["event"] == "stage.tts.success")
    assert success["lesson"] == "unit1" and success["stage"] == "tts"
    assert success["duration_ms"] > 0 and success["cost"]["characters"] > 0
    assert success["detail"]["mp3"] == "build/unit1/audio.mp3"
    assert {"esl.pipeline.stage.duration_ms", "esl.pipeline.stage.success",
            "esl.pipeline.new_assignment.duration_ms", "esl.pipeline.new_assignment.success",
            "esl.pipeline.tts.characters"} <= metrics.names()
    stage_timings = [c for c in metrics.calls if c[1] == "esl.pipeline.stage.duration_ms"]
    assert [c[3] for c in stage_timings] == [{"stage": s, "status": "success"} for s in STAGES]

    pipeline.new_assignment({"md": "unit1"}, run_id="queue-43")
    assert events.names()[-5:] == [f"stage.{s}.skipped" for s in STAGES]
    pipeline.get_assignment_status("unit1", run_id="status-1")
    assert events.names("pipeline.")[-1] == "pipeline.getAssignmentStatus.success"
    assert "esl.pipeline.get_assignment_status.duration_ms" in metrics.names()


def test_a_broken_lesson_is_a_validation_error_with_a_failure_event(repo):
    repo.write("broken", lesson_text().replace("## 2. Your Homework Roadmap", "## 2. Oops"))
    events, metrics = Events(), Recorded()
    pipeline = create_pipeline(cwd=repo.root, secrets={}, logger=events, metrics=metrics)
    for dry in (True, False):
        with pytest.raises(ValidationError) as raised:
            pipeline.new_assignment({"md": "broken", "dry_run": dry}, run_id=f"bad-{dry}")
        error = raised.value
        assert (error.lesson, error.stage, error.retryable) == ("broken", "validate", False)
        assert "lessons/broken.md:" in str(error) and error.run_id == f"bad-{dry}"
        failure = [e for e in events.events if e["event"] == "stage.validate.failure"][-1]
        assert failure["run_id"] == f"bad-{dry}" and failure["level"] == "error"
        assert events.names("pipeline.")[-1] == "pipeline.newAssignment.failure"
    assert ("increment", "esl.pipeline.stage.failure", 1, {"stage": "validate"}) in metrics.calls


class RefusingStorage(LocalStorage):
    """A storage whose service is down."""

    def put(self, file: Path, key: str, *, sha256: str, content_type: str) -> dict[str, Any]:
        raise StorageError("the bucket is unavailable (503)", retryable=True)


def test_a_failing_service_is_a_retryable_infrastructure_error_and_keeps_what_ran(repo):
    events = Events()
    storage = RefusingStorage(repo.root / "build" / "bucket", repo.root)
    pipeline = create_pipeline(cwd=repo.root, secrets={}, logger=events,
                               services=Services(storage=storage))
    with pytest.raises(InfrastructureError) as raised:
        pipeline.new_assignment({"md": "unit1"}, run_id="job-9")
    error = raised.value
    assert (error.lesson, error.stage, error.retryable) == ("unit1", "upload", True)
    assert [s.stage for s in error.result] == ["validate", "import", "tts"]
    assert events.names()[-2:] == ["stage.upload.start", "stage.upload.failure"]
    assert events.events[-2]["detail"]["retryable"] is True
    manifest = json.loads(repo.path("lessons/unit1.manifest.json").read_text())
    assert set(manifest["stages"]) == {"validate", "import", "tts"}  # completed stages kept


def test_a_dry_run_writes_nothing_and_sends_nothing_yet_reports_the_plan(repo):
    voice = EspeakVoice()
    storage = LocalStorage(repo.root / "build" / "bucket", repo.root)
    pipeline = create_pipeline(cwd=repo.root, secrets={},
                               services=Services(voice=voice, storage=storage))
    before = snapshot(repo.root)
    plan = pipeline.new_assignment({"md": "unit1", "dry_run": True})
    assert snapshot(repo.root) == before  # no manifest, no build/, no cache, no lock
    assert [s.state for s in plan.steps] == ["would-run"] * 5
    assert plan.estimate and plan.estimate["characters"] == plan.step("tts").estimate[
        "characters"] > 0
    assert plan.cost == {"characters": 0, "requests": 0}

    pipeline.new_assignment({"md": "unit1"})
    repo.edit("unit1", "Alex: Great. Let's practise our English.", "Alex: Great, let's go.")
    before, calls, puts = snapshot(repo.root), voice.calls, storage.requests
    plan = pipeline.new_assignment({"md": "unit1", "dry_run": True, "force": False})
    assert snapshot(repo.root) == before
    assert (voice.calls, storage.requests) == (calls, puts)  # nothing synthesised or stored
    assert {s.stage: s.state for s in plan.steps} == {
        "validate": "would-run", "import": "would-run", "tts": "would-run",
        "upload": "would-run", "add-audio": "would-run"}
    assert plan.step("tts").reason == "changed: speech"
    assert plan.step("tts").estimate == {"characters": len("Great, let's go."), "requests": 0}
    status = pipeline.get_assignment_status("unit1")
    assert snapshot(repo.root) == before and not status.up_to_date


def test_two_pipelines_on_two_repositories_run_concurrently_without_touching_each_other(
        tmp_path):
    repos = [LessonsRepo.create(tmp_path / name, {f"lesson{n}": lesson_text(
        (f"Alex: Hello number {n}.", "Mara: Hi there."), title=f"Lesson {n}")
        for n in range(3)}) for name in ("a", "b")]
    loggers = [Events(), Events()]
    pipelines = [create_pipeline(cwd=r.root, logger=log, secrets={
        "ESL_BUILD_LOCAL_BUCKET": f"bucket-{name}"}) for r, log, name in
        zip(repos, loggers, "ab", strict=True)]
    results: dict[tuple[int, int], Any] = {}
    errors: list[BaseException] = []

    def job(which: int, n: int) -> None:
        try:
            results[(which, n)] = pipelines[which].new_assignment(
                {"md": f"lesson{n}"}, run_id=f"{'ab'[which]}-{n}")
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=job, args=(w, n)) for n in range(3) for w in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    for which, repo in enumerate(repos):
        name = "ab"[which]
        for n in range(3):
            result = results[(which, n)]
            assert result.run_id == f"{name}-{n}" and all(s.state == "ran" for s in result.steps)
            assert result.audio and result.audio.url.startswith(f"bucket-{name}/")
            manifest = json.loads(repo.path(f"lessons/lesson{n}.manifest.json").read_text())
            assert {r["runId"] for r in manifest["stages"].values()} == {f"{name}-{n}"}
        assert {e["run_id"][0] for e in loggers[which].events} == {name}
        assert not (repo.root / f"bucket-{'ba'[which]}").exists()


def test_credentials_come_from_the_env_file_and_real_variables_win(repo, tmp_path):
    repo.path(".env").write_text("ESL_BUILD_LOCAL_BUCKET=from-dotenv\nESL_BUILD_STRICT=1\n")
    secrets = EnvironmentSecrets(repo.root, environ={"ESL_BUILD_STRICT": "0"})
    pipeline = create_pipeline(cwd=repo.root, secrets=secrets)
    settings = pipeline.settings()
    assert settings.local_bucket == repo.root / "from-dotenv" and settings.strict is False
    assert "ESL_BUILD_STRICT" not in __import__("os").environ  # nothing was exported
    assert ".env" in (Path(__import__("esl_build").__file__).parent / "scaffold" /
                      "gitignore").read_text().split()


def test_secret_values_never_reach_events_errors_or_results(repo):
    token = "secret_NOTION_token_1234567890"
    events = Events()
    pipeline = create_pipeline(cwd=repo.root, logger=events, secrets={
        "NOTION_TOKEN": token, "ESL_BUILD_PUBLISHER": "html",
        "ESL_BUILD_SERVICE_TOKEN": "svc-token-abcdef"})
    result = pipeline.new_assignment({"md": "unit1"}, run_id="sec-1")
    with pytest.raises(ConfigurationError) as raised:
        pipeline.new_assignment({"md": "unit1", "preset": "no-such-preset"})
    assert raised.value.field == "preset" and not raised.value.retryable
    notion = create_pipeline(cwd=repo.root, logger=events, secrets={"NOTION_TOKEN": token})
    with pytest.raises(ConfigurationError) as unsupported:
        notion.new_assignment({"md": "unit1"})
    everything = json.dumps(events.events) + json.dumps(result.to_json()) + str(
        raised.value) + str(unsupported.value) + repr(pipeline.secrets)
    assert token not in everything and "svc-token-abcdef" not in everything
    assert unsupported.value.stage == "import"


def test_bad_flags_name_the_field_and_run_nothing(repo):
    pipeline = create_pipeline(cwd=repo.root, secrets={})
    before = snapshot(repo.root)
    cases = [({}, "md"), ({"md": 3}, "md"), ({"md": "../etc/passwd"}, "md"),
             ({"md": "/etc/passwd"}, "md"), ({"md": "unit1", "dryRun": "yes"}, "dry_run"),
             ({"md": "unit1", "upload": "ftp"}, "upload"), ({"md": "unit1", "colour": 1},
                                                            "colour"),
             ({"md": "unit1", "dialogue_stability": 3}, "dialogue_stability"),
             ({"md": "missing"}, "md"), ({"md": "lessons/.hidden.md"}, "md")]
    for flags, field in cases:
        with pytest.raises(ValidationError) as raised:
            pipeline.new_assignment(flags)
        assert raised.value.field == field, (flags, raised.value)
    with pytest.raises(ValidationError) as bad_id:
        pipeline.new_assignment({"md": "unit1"}, run_id="a b")
    assert bad_id.value.field == "run_id"
    with pytest.raises(ValidationError, match="steps"):
        pipeline.rerun_assignment({"md": "unit1", "steps": ["colorize"]})
    assert snapshot(repo.root) == before


def test_symlinks_out_of_the_lessons_folder_are_refused(repo, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text(lesson_text())
    (repo.root / "lessons" / "evil.md").symlink_to(outside)
    (repo.root / "lessons" / "inside.md").symlink_to(repo.root / "lessons" / "unit1.md")
    pipeline = create_pipeline(cwd=repo.root, secrets={})
    with pytest.raises(ValidationError, match="outside the lessons folder"):
        pipeline.new_assignment({"md": "evil", "dry_run": True})
    assert pipeline.new_assignment({"md": "inside", "dry_run": True}).lesson == "inside"
    absolute = str(repo.root / "lessons" / "unit1.md")
    assert pipeline.new_assignment({"md": absolute, "dry_run": True}).lesson == "unit1"


def test_the_async_variants_run_off_the_event_loop(repo):
    pipeline = create_pipeline(cwd=repo.root, secrets={})

    async def main() -> tuple[Any, Any]:
        return await asyncio.gather(
            pipeline.new_assignment_async({"md": "unit1"}, run_id="a-1"),
            pipeline.new_assignment_async({"md": "b1/unit2", "dry_run": True}, run_id="a-2"))

    built, planned = asyncio.run(main())
    assert built.run_id == "a-1" and all(s.state == "ran" for s in built.steps)
    assert planned.dry_run and planned.run_id == "a-2"
    status = asyncio.run(pipeline.get_assignment_status_async("unit1"))
    assert status.up_to_date


def test_json_lines_and_prometheus_adapters(repo, caplog):
    metrics = PrometheusMetrics()
    pipeline = create_pipeline(cwd=repo.root, secrets={}, logger=JsonLinesLogger("esl.test"),
                               metrics=metrics)
    with caplog.at_level("INFO", logger="esl.test"):
        pipeline.new_assignment({"md": "unit1"}, run_id="prom-1")
    lines = [json.loads(record.getMessage()) for record in caplog.records]
    assert [e["event"] for e in lines if e["event"].startswith("stage.")][:2] == [
        "stage.validate.start", "stage.validate.success"]
    assert {e["run_id"] for e in lines} == {"prom-1"}
    text = metrics.render().decode()
    assert 'esl_pipeline_stage_duration_ms_count{stage="tts",status="success"} 1.0' in text
    assert 'esl_pipeline_stage_success_total{stage="upload"} 1.0' in text
    assert 'esl_pipeline_new_assignment_duration_ms_count{result="success"} 1.0' in text


def test_doit_runs_emit_the_same_stage_events(repo):
    run = repo.doit(env={"ESL_BUILD_EVENT_LOG": "build/events.jsonl",
                         "ESL_BUILD_RUN_ID": "ci-123"})
    assert run.returncode == 0, run.stdout + run.stderr
    events = [json.loads(line) for line in repo.path("build/events.jsonl").read_text()
              .splitlines()]
    unit1 = [e["event"] for e in events if e.get("lesson") == "unit1"]
    # doit starts tts before import (they are independent); each stage's pair is in order
    assert sorted(unit1) == sorted(f"stage.{s}.{kind}" for s in STAGES
                                   for kind in ("start", "success"))
    for stage in STAGES:
        assert unit1.index(f"stage.{stage}.success") == unit1.index(f"stage.{stage}.start") + 1
    assert unit1[:2] == ["stage.validate.start", "stage.validate.success"]
    assert unit1[-2:] == ["stage.add-audio.start", "stage.add-audio.success"]
    assert {e["run_id"] for e in events} == {"ci-123"}


def test_a_no_op_doit_run_emits_a_skipped_event_per_stage_per_lesson(repo):
    env = {"ESL_BUILD_EVENT_LOG": "build/events.jsonl"}
    assert repo.doit(env={**env, "ESL_BUILD_RUN_ID": "first"}).returncode == 0
    repo.path("build/events.jsonl").unlink()
    again = repo.doit(env={**env, "ESL_BUILD_RUN_ID": "no-op"})
    assert again.returncode == 0, again.stdout + again.stderr
    events = [json.loads(line) for line in repo.path("build/events.jsonl").read_text()
              .splitlines()]
    assert sorted((e["lesson"], e["event"]) for e in events) == sorted(
        (lesson, f"stage.{stage}.skipped") for lesson in ("unit1", "b1/unit2")
        for stage in STAGES)
    assert {(e["run_id"], e["detail"]["reason"]) for e in events} == {("no-op", "up to date")}

    logger = Events()  # a pipeline call on the same up-to-date lesson says the same
    create_pipeline(cwd=repo.root, logger=logger).new_assignment({"md": "unit1"})
    assert sorted(logger.names()) == sorted(e["event"] for e in events if e["lesson"] == "unit1")


def test_the_package_and_a_pipeline_import_no_web_metrics_or_tracing_library(repo):
    import subprocess
    import sys
    web = "('fastapi', 'uvicorn', 'prometheus_client', 'starlette', 'dotenv')"
    code = ("import sys, esl_build, esl_build.tasks, esl_build.pipeline; "
            "print(sorted(m for m in " + web[:-1] + ", 'opentelemetry') if m in sys.modules)); "
            f"p = esl_build.create_pipeline(cwd={str(repo.root)!r}, secrets={{}}); "
            "p.new_assignment({'md': 'unit1', 'dry_run': True}); "
            "print(sorted(m for m in " + web + " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["[]", "[]"]  # spans (opentelemetry) only once a job runs


def test_a_corrupt_manifest_is_a_manifest_error_that_a_retry_cannot_fix(repo):
    pipeline = create_pipeline(cwd=repo.root, secrets={})
    repo.path("lessons/unit1.manifest.json").write_text("{not json\n")
    for dry in (False, True):
        with pytest.raises(ManifestError) as raised:
            pipeline.new_assignment({"md": "unit1", "dry_run": dry})
        assert raised.value.lesson == "unit1" and not raised.value.retryable
        assert "lessons/unit1.manifest.json:1" in str(raised.value)


def test_an_injected_manifest_store_is_the_one_used(repo, tmp_path):
    from esl_build.state.stores import FileManifestStore

    store = FileManifestStore(tmp_path / "elsewhere", tmp_path / "locks", root=repo.root)
    pipeline = create_pipeline(cwd=repo.root, secrets={}, manifest_store=store)
    result = pipeline.new_assignment({"md": "unit1"}, run_id="store-1")
    assert not repo.path("lessons/unit1.manifest.json").exists()
    saved = json.loads((tmp_path / "elsewhere" / "unit1.manifest.json").read_text())
    assert saved["stages"]["upload"]["runId"] == "store-1"
    assert result.manifest_path == store.location("unit1")
    assert pipeline.get_assignment_status("unit1").up_to_date


def test_the_pipeline_and_doit_agree_about_what_is_stale(repo):
    pipeline = create_pipeline(cwd=repo.root, secrets={})
    pipeline.new_assignment({"md": "unit1"})
    run = repo.doit()
    assert run.returncode == 0, run.stdout + run.stderr
    assert not {f"{s}:unit1" for s in STAGES} & run.ran  # built by the API: nothing to do
    assert all(run.count(stage, "up to date") == 1 for stage in STAGES)
    assert {f"{s}:b1/unit2" for s in STAGES} <= run.ran
    again = pipeline.new_assignment({"md": "b1/unit2"})  # built by doit: nothing to do
    assert {s.state for s in again.steps} == {"up-to-date"}
