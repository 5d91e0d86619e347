"""The build graph, driven through the real doit CLI in a subprocess on temporary repos.

Assertions are on what doit printed (`.  task` ran, `-- task` up to date), on the manifests,
and on the characters the voice synthesised (from the run summary and the stage records).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from esl_build.testing.repo import DIALOGUE, LessonsRepo, lesson_text

STAGES = ("validate", "import", "tts", "upload", "add-audio")


def tasks(lesson_id: str, *stages: str) -> set[str]:
    return {f"{stage}:{lesson_id}" for stage in stages or STAGES}


@pytest.fixture
def repo(tmp_path: Path) -> LessonsRepo:
    # The local "bucket" lives outside build/, like a remote store that survives a clean.
    return LessonsRepo.create(tmp_path / "repo", {
        "unit1": lesson_text(),
        "b1/unit2": lesson_text(("Alex: Where is the station?", "Mara: It is next to the bank."),
                                title="Directions", student="Leo"),
    }, env={"ESL_BUILD_LOCAL_BUCKET": "bucket"})


def built(repo: LessonsRepo) -> LessonsRepo:
    run = repo.doit()
    assert run.returncode == 0, run.stdout + run.stderr
    return repo


def stage_record(repo: LessonsRepo, lesson_id: str, stage: str) -> dict:
    manifest = json.loads(repo.path(f"lessons/{lesson_id}.manifest.json").read_text())
    return manifest["stages"][stage]


def test_first_build_runs_everything_and_the_second_runs_nothing(repo):
    first = repo.doit()
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.ran == tasks("unit1") | tasks("b1/unit2") | {"index"}
    assert first.characters == sum(len(line.split(": ", 1)[1]) for line in DIALOGUE) + len(
        "Where is the station?") + len("It is next to the bank.")
    assert "tts=espeak" in first.stdout and "upload=local" in first.stdout
    for path in ("build/site/index.html", "build/site/unit1.html", "build/site/b1/unit2.html",
                 "build/unit1/audio.mp3", "build/b1/unit2/audio.mp3", "build/unit1/lesson.json"):
        assert repo.path(path).is_file(), path
    manifests = repo.manifest_bytes()

    second = repo.doit()
    assert second.returncode == 0
    assert second.ran == set()
    assert all(second.count(stage, "up to date") == 2 for stage in STAGES)
    assert second.characters == 0
    assert repo.manifest_bytes() == manifests  # a no-op rewrites nothing
    assert not list(repo.root.glob(".doit.db*"))  # no state besides the manifests


def test_editing_one_study_text_line_reruns_that_lesson_and_bills_only_that_line(repo):
    built(repo)
    repo.edit("unit1", "Alex: Great. Let's practise our English.", "Alex: Great, let's begin.")
    run = repo.doit()
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.ran - {"index"} == tasks("unit1")
    assert run.characters == len("Great, let's begin.")
    assert stage_record(repo, "unit1", "tts")["outputs"]["synthesized"] == 1


def test_editing_other_text_reruns_only_the_page(repo):
    built(repo)
    repo.edit("unit1", "It helps you speak with confidence.", "It builds fluency.")
    run = repo.doit()
    assert run.ran - {"index"} == tasks("unit1", "validate", "import")
    assert run.characters == 0


def test_moving_text_down_a_line_changes_no_digest(repo):
    built(repo)
    repo.edit("unit1", "## 7. Why This Mission Helps You", "\n## 7. Why This Mission Helps You")
    run = repo.doit()
    assert run.ran - {"index"} == tasks("unit1", "validate")


def test_editing_a_preset_reruns_only_import_of_the_lessons_using_it(repo):
    presets = json.loads(repo.path("configs/presets.json").read_text())
    presets["leo-preset"] = {"h2": "blue_background", "h3": "green"}
    repo.path("configs/presets.json").write_text(json.dumps(presets))
    repo.path("configs/students/leo.json").write_text(
        json.dumps({"student": "Leo", "colorPreset": "leo-preset"}))
    built(repo)
    presets["leo-preset"]["h3"] = "red"
    repo.path("configs/presets.json").write_text(json.dumps(presets))
    run = repo.doit()
    assert run.ran - {"index"} == {"import:b1/unit2"}
    presets["leo-preset"] = {"h2": "blue"}
    repo.path("configs/presets.json").write_text(json.dumps(presets))
    info = repo.doit("info", "import:b1/unit2").stdout
    assert "import:b1/unit2 is stale: the colour preset changed (h2, h3)" in info


def test_a_fresh_clone_without_build_bills_nothing_and_uploads_nothing(repo):
    built(repo)
    shutil.rmtree(repo.path("build"))
    run = repo.doit()
    assert run.returncode == 0, run.stdout + run.stderr
    assert not run.ran & (tasks("unit1", "tts", "upload") | tasks("b1/unit2", "tts", "upload"))
    assert run.characters == 0
    assert repo.path("build/site/index.html").is_file()


def test_a_missing_mp3_is_fetched_from_storage_when_upload_needs_it(repo):
    built(repo)
    recorded = stage_record(repo, "unit1", "tts")["outputs"]
    shutil.rmtree(repo.path("build"))  # no MP3, no line cache
    run = repo.esl_build("rerun", "unit1", "--steps", "upload")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.ran == {"upload:unit1"} and "characters synthesised: 0" in run.stdout
    from esl_build.fingerprint import sha256_bytes
    assert sha256_bytes(repo.path(recorded["mp3"]).read_bytes()) == recorded["sha256"]


def test_targeted_stage_runs_only_what_it_needs(repo):
    run = repo.doit("upload:unit1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.ran == tasks("unit1", "validate", "tts", "upload")
    again = repo.doit("upload:unit1")
    assert again.ran == set()


def test_rerun_forces_stages_without_rerunning_upstream(repo):
    built(repo)
    before = {stage: stage_record(repo, "unit1", stage) for stage in STAGES}
    run = repo.esl_build("rerun", "unit1", "--steps", "upload,add-audio")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.ran == tasks("unit1", "upload", "add-audio")
    after = {stage: stage_record(repo, "unit1", stage) for stage in STAGES}
    for stage in ("validate", "import", "tts"):
        assert after[stage] == before[stage]
    for stage in ("upload", "add-audio"):
        assert after[stage]["runId"] != before[stage]["runId"]
    bad = repo.esl_build("rerun", "unit1", "--steps", "uplod")
    assert bad.returncode == 2 and "unknown stage" in bad.stderr and "Traceback" not in bad.stderr


def test_forget_reruns_the_stage_and_keeps_its_page(repo):
    built(repo)
    page = stage_record(repo, "unit1", "import")["outputs"]["pageId"]
    forget = repo.doit("forget", "import:unit1")
    assert forget.returncode == 0, forget.stdout + forget.stderr
    record = stage_record(repo, "unit1", "import")
    assert "fingerprint" not in record and record["outputs"]["pageId"] == page
    run = repo.doit()
    assert run.ran - {"index"} == {"import:unit1"}
    assert stage_record(repo, "unit1", "import")["outputs"]["pageId"] == page


def test_a_broken_lesson_fails_with_its_line_and_changes_no_manifest(repo):
    built(repo)
    manifests = repo.manifest_bytes()
    repo.edit("unit1", "Mara: I'm fine, thanks. And you?", "Sam: I'm fine, thanks. And you?")
    run = repo.doit()
    assert run.returncode != 0
    assert "lessons/unit1.md:" in run.stdout + run.stderr
    assert 'unknown speaker "Sam"' in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert repo.manifest_bytes() == manifests
    assert "upload:b1/unit2" not in run.ran  # the other lesson was up to date


def test_doit_info_and_plan_say_why_a_stage_is_stale(repo):
    built(repo)
    repo.edit("unit1", "Alex: Great. Let's practise our English.", "Alex: Great, let's begin.")
    manifests = repo.manifest_bytes()
    info = repo.doit("info", "tts:unit1")
    line = 1 + repo.path("lessons/unit1.md").read_text().splitlines().index(
        "Alex: Great, let's begin.")
    assert f"tts:unit1 is stale: the study text changed (line {line})" in info.stdout
    plan = repo.esl_build("plan")
    assert plan.returncode == 0, plan.stderr
    assert "tts:unit1: changed: speech" in plan.stdout
    assert f"[{len('Great, let' + chr(39) + 's begin.')} chars" in plan.stdout
    assert "b1/unit2" not in plan.stdout
    assert repo.manifest_bytes() == manifests  # plan writes nothing
    assert json.loads(repo.esl_build("plan", "--json").stdout)["total"]["characters"] == 19


def test_status_summarises_manifests(repo):
    built(repo)
    run = repo.esl_build("status", "unit1", "--json")
    report = json.loads(run.stdout)
    assert report[0]["lesson"] == "unit1"
    assert {s["state"] for s in report[0]["stages"].values()} == {"done"}
    assert repo.esl_build("status", "nope").returncode == 2


def test_parallel_threads_build_everything(repo):
    run = repo.doit("-n", "4", "-P", "thread")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.ran >= tasks("unit1") | tasks("b1/unit2")
    assert repo.doit().ran == set()


def test_init_scaffolds_a_repository_that_builds(tmp_path):
    target = tmp_path / "new-lessons"
    init = LessonsRepo(tmp_path).esl_build("init", str(target))
    assert init.returncode == 0, init.stderr
    for name in ("dodo.py", ".gitignore", ".github/workflows/lessons.yml",
                 "configs/presets.json", "lessons/example.md"):
        assert (target / name).is_file(), name
    run = LessonsRepo(target).doit()
    assert run.returncode == 0, run.stdout + run.stderr
    assert (target / "build/site/index.html").is_file()
    assert (target / "build/example/audio.mp3").is_file()
    again = LessonsRepo(tmp_path).esl_build("init", str(target))
    assert again.returncode == 2 and "not an empty folder" in again.stderr


def test_a_predecessor_manifest_is_adopted_without_a_second_page(tmp_path):
    fixtures = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "lessons"
    repo = LessonsRepo.create(tmp_path / "repo", {})
    (repo.root / "lessons").mkdir(exist_ok=True)
    for name in ("four-speakers.md", "four-speakers.manifest.json"):
        shutil.copyfile(fixtures / name, repo.path(f"lessons/{name}"))
    old = json.loads((fixtures / "four-speakers.manifest.json").read_text())
    run = repo.doit()
    assert run.returncode == 0, run.stdout + run.stderr
    manifest = json.loads(repo.path("lessons/four-speakers.manifest.json").read_text())
    assert manifest["schemaVersion"] == 2
    assert manifest["remote"]["import/notion"]["pageId"] == old["pageId"]
    assert manifest["migratedFrom"]["mdHash"] == old["mdHash"]


def test_bad_configuration_is_reported_with_its_file_and_line(repo):
    built(repo)
    manifests = repo.manifest_bytes()
    repo.path("configs/presets.json").write_text('{\n  "b1-default": {"h2": "yelow"}\n}\n')
    message = "configs/presets.json:2: b1-default.h2: colour 'yelow' is not a Notion"
    for run in (repo.doit(), repo.doit("list"), repo.esl_build("build"),
                repo.esl_build("plan"), repo.esl_build("status")):
        assert run.returncode == 2, run.stdout + run.stderr
        assert message in run.stderr
        assert "Traceback" not in run.stdout + run.stderr
    assert repo.manifest_bytes() == manifests

    for run in (repo.doit(env={"ESL_BUILD_PUBLISHER": "pdf"}),
                repo.esl_build("build", env={"ESL_BUILD_PUBLISHER": "pdf"}),
                repo.esl_build("status", env={"ESL_BUILD_PUBLISHER": "pdf"})):
        assert run.returncode == 2
        assert "ESL_BUILD_PUBLISHER='pdf' is not one of: html, notion" in run.stderr
        assert "Traceback" not in run.stderr


def test_a_corrupt_manifest_fails_its_lesson_with_the_file_and_line(repo):
    built(repo)
    repo.path("lessons/unit1.manifest.json").write_text('{"schemaVersion": 2,\n  oops\n')
    run = repo.doit()
    assert run.returncode == 1
    assert "lessons/unit1.manifest.json:2: invalid JSON" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert run.count("add-audio", "up to date") == 1  # the other lesson is unaffected


def test_a_real_backend_selected_by_credentials_is_named_and_not_faked(repo):
    run = repo.doit(env={"NOTION_TOKEN": "secret-token-value"})
    assert run.returncode == 2  # a configuration error: found before any task runs
    assert "notion publisher" in run.stderr
    assert "needs NOTION_DATA_SOURCE_ID or NOTION_DB_ID" in run.stderr  # no target: stop
    assert "unset NOTION_TOKEN or set ESL_BUILD_PUBLISHER=html" in run.stderr
    assert "secret-token-value" not in run.stdout + run.stderr


def test_an_edit_that_keeps_the_file_size_is_still_seen(repo):
    """The cache of verified lessons is keyed by file identity, not size alone."""
    built(repo)
    repo.edit("unit1", "Alex: Great. Let's practise our English.",
              "Alex: Great. Let's practice our English.")  # same length
    run = repo.doit()
    assert tasks("unit1", "validate", "tts") <= run.ran
    assert run.characters == len("Great. Let's practice our English.")


def test_the_cache_of_verified_lessons_is_only_a_cache(repo):
    built(repo)
    cache = repo.path("build/.cache/checked.json")
    assert cache.is_file()
    cache.write_text("{ not json")
    assert repo.doit().ran == set()
    cache.unlink()
    assert repo.doit().ran == set()
    lesson_json = repo.path("build/unit1/lesson.json")
    data, manifests = lesson_json.read_bytes(), repo.manifest_bytes()
    lesson_json.unlink()  # an output the verdict depended on: made again, not a new run
    assert repo.doit().ran == set()
    assert lesson_json.read_bytes() == data and repo.manifest_bytes() == manifests


def test_a_missing_lesson_json_made_otherwise_than_recorded_is_a_run(repo):
    """Making a derived output again keeps the record only when it comes out as recorded."""
    built(repo)
    path = repo.path("lessons/unit1.manifest.json")
    manifest = json.loads(path.read_text())
    manifest["stages"]["validate"]["outputs"]["warnings"] = 99  # not what the lesson gives
    path.write_text(json.dumps(manifest))
    repo.path("build/unit1/lesson.json").unlink()
    assert repo.doit().ran == {"validate:unit1"}
    assert stage_record(repo, "unit1", "validate")["outputs"]["warnings"] == 0
    assert repo.path("build/unit1/lesson.json").is_file() and repo.doit().ran == set()


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_parallel_rebuild_reruns_everything_downstream_of_an_edit(repo, mode):
    """Up-to-date checks run in doit's main process; the stages in workers. Downstream checks
    must see what an upstream stage just recorded, in either kind of worker."""
    built(repo)
    repo.edit("unit1", "Alex: Great. Let's practise our English.", "Alex: Great, let's begin.")
    run = repo.doit("-n", "2", "-P", mode)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.ran - {"index"} == tasks("unit1")
    assert repo.doit().ran == set()
