"""Pipeline flags and observer rules (no I/O)."""

from __future__ import annotations

import pytest

from esl_build.errors import ValidationError
from esl_build.observability import Observer
from esl_build.pipeline.flags import AssignmentFlags, RerunFlags, check_run_id, parse_flags


def test_the_guides_camel_case_payload_and_snake_case_mean_the_same():
    camel = parse_flags(AssignmentFlags, {"md": "lessons/unit1.md", "withTts": True,
                                          "upload": "s3", "preset": "b1-default",
                                          "student": "Alice", "dryRun": True})
    snake = parse_flags(AssignmentFlags, {"md": "lessons/unit1.md", "with_tts": True,
                                          "upload": "s3", "preset": "b1-default",
                                          "student": "Alice", "dry_run": True})
    assert camel == snake and camel.dry_run and camel.upload == "s3"
    assert parse_flags(AssignmentFlags, camel) == camel
    with pytest.raises(ValidationError, match="twice") as twice:
        parse_flags(AssignmentFlags, {"md": "x", "dryRun": True, "dry_run": False})
    assert twice.value.field == "dry_run"


def test_skips_follow_the_flags():
    flags = parse_flags(AssignmentFlags, {"md": "x", "skip_upload": True})
    assert flags.skipped() == {"upload": "skip_upload flag set",
                               "add-audio": "skip_upload flag set"}
    assert set(parse_flags(AssignmentFlags, {"md": "x", "with_tts": False}).skipped()) == {
        "tts", "upload", "add-audio"}
    assert parse_flags(AssignmentFlags, {"md": "x", "upload": "none"}).skipped()["upload"] \
        == "upload is none"
    redo = parse_flags(AssignmentFlags, {"md": "x", "redo_tts": True})
    assert redo.forced("tts") and not redo.forced("upload")


def test_rerun_steps_are_stage_names_in_pipeline_order():
    rerun = parse_flags(RerunFlags, {"md": "x", "steps": "add-audio, tts"})
    assert rerun.steps == ("tts", "add-audio") and rerun.forced("tts")
    assert set(rerun.skipped()) == {"validate", "import", "upload"}
    for steps in ([], "colorize", [1]):
        with pytest.raises(ValidationError) as raised:
            parse_flags(RerunFlags, {"md": "x", "steps": steps})
        assert raised.value.field == "steps"


@pytest.mark.parametrize(("flags", "field"), [
    ({"md": "x", "force": 1}, "force"), ({"md": "x", "dialogue_seed": -1}, "dialogue_seed"),
    ({"md": "x", "dialogue_seed": True}, "dialogue_seed"), ({"md": "x", "tts_mode": "duet"},
                                                            "tts_mode"),
    ({"md": "  "}, "md"), ({"md": "x\0y"}, "md"), ({"md": "x", "student": ""}, "student")])
def test_each_bad_value_names_its_field(flags, field):
    with pytest.raises(ValidationError) as raised:
        parse_flags(AssignmentFlags, flags)
    assert raised.value.field == field and not raised.value.retryable


def test_run_ids_are_checked():
    assert check_run_id("5f9a-01:retry.2") == "5f9a-01:retry.2"
    for bad in ("", "a b", "../x", "x" * 129, 7):
        with pytest.raises(ValidationError):
            check_run_id(bad)


def test_an_observer_redacts_secrets_everywhere_and_stamps_the_run_id():
    seen: list[dict[str, object]] = []

    class Keep:
        def log(self, event: dict[str, object]) -> None:
            seen.append(event)

    observer = Observer("run-1", logger=Keep(), secrets=["tok-123456"])
    observer.emit("stage.import.failure", detail={"message": "401 for tok-123456",
                                                  "list": ["tok-123456"]})
    assert seen[0]["run_id"] == "run-1"
    assert "tok-123456" not in str(seen[0]) and "***" in str(seen[0])


def test_a_stage_events_object_reports_start_success_and_metrics():
    calls: list[tuple[str, str]] = []

    class Sink:
        def timing(self, name: str, ms: float, tags: object = None) -> None:
            calls.append(("timing", name))

        def increment(self, name: str, value: float = 1, tags: object = None) -> None:
            calls.append(("increment", name))

    events = Observer("r", metrics=Sink()).stage("tts", "unit1")
    events.start()
    events.success({"characters": 5, "requests": 1})
    assert calls == [("timing", "esl.pipeline.stage.duration_ms"),
                     ("increment", "esl.pipeline.stage.success"),
                     ("increment", "esl.pipeline.tts.characters")]


def test_both_calls_take_the_same_tts_options_and_map_them_onto_the_voice_settings():
    options = {"tts_mode": "dialogue", "model": "eleven_flash_v2_5",
               "outputFormat": "PCM_16000", "dialogue_language": "De",
               "dialogue_stability": 0, "dialogue_seed": 9, "accent_preference": "british"}
    new = parse_flags(AssignmentFlags, {"md": "x", **options})
    rerun = parse_flags(RerunFlags, {"md": "x", "steps": ["tts"], **options})
    assert new.elevenlabs() == rerun.elevenlabs() == {
        "mode": "dialogue", "model": "eleven_flash_v2_5", "output_format": "pcm_16000",
        "language": "de", "stability": 0.0, "seed": 9}
    assert parse_flags(AssignmentFlags, {"md": "x", "voice_id": "v1"}).elevenlabs() == {}
    assert AssignmentFlags("x", tts_mode="monologue").tts_mode == "monologue"  # keyword only


def test_secret_values_cover_the_variables_marked_secret_and_a_urls_password():
    from esl_build.pipeline.secrets import secret_values

    found = secret_values({
        "ESL_PIPELINE_MANIFEST_DSN": "postgresql://esl:hunter22@db/esl",
        "ESL_BUILD_QUEUE_URL": "redis://:s3cret-q@redis:6379/0",
        "NOTION_TOKEN": "ntn_x",
        "S3_BUCKET": "lessons",
    })
    assert "postgresql://esl:hunter22@db/esl" in found and "hunter22" in found
    assert "s3cret-q" in found and "ntn_x" in found
    assert "lessons" not in found
