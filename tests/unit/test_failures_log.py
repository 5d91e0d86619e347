"""The record of failed stages: kept beside the build, cleared by success, only a record."""

from __future__ import annotations

from esl_build.failures import FailureLog


def test_failures_are_recorded_and_cleared(tmp_path):
    log = FailureLog(tmp_path / "build/.cache/failures.json", tmp_path / "build/.locks/f.lock")
    assert log.read() == {}
    log.record("unit1", "tts", "voice: down", "r-1")
    log.record("unit1", "validate", "lessons/unit1.md:3: error: bad", "r-2")
    log.record("unit2", "upload", "storage: full", "r-2")
    assert log.read()["unit1"] == {
        "tts": {"message": "voice: down", "runId": "r-1"},
        "validate": {"message": "lessons/unit1.md:3: error: bad", "runId": "r-2"}}
    assert log.read()["unit2"]["upload"] == {"message": "storage: full", "runId": "r-2"}

    log.clear("unit1", "validate")
    log.clear("unit1", "tts")
    assert set(log.read()) == {"unit2"}
    log.clear("unit2", "upload")
    assert not log.file.exists()  # nothing failed: no file
    log.clear("unit2", "upload")  # clearing nothing is fine


def test_a_damaged_record_reads_as_no_failures(tmp_path):
    log = FailureLog(tmp_path / "failures.json", tmp_path / "f.lock")
    log.file.write_text("{ not json")
    assert log.read() == {}
    log.record("unit1", "import", "publish: no", "r-1")
    assert log.read() == {"unit1": {"import": {"message": "publish: no", "runId": "r-1"}}}
