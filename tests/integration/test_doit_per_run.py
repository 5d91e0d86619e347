"""Each doit run builds its own project: one process can build two repositories in turn."""

from __future__ import annotations

import json

from doit.cmd_base import ModuleTaskLoader
from doit.doit_cmd import DoitMain

from esl_build import tasks
from esl_build.testing.repo import LessonsRepo, lesson_text


def test_two_in_process_doit_runs_on_two_repositories_each_build_their_own(tmp_path,
                                                                          monkeypatch):
    repos = [LessonsRepo.create(tmp_path / name, {f"{name}-lesson": lesson_text()})
             for name in ("a", "b")]
    for repo, run_id in zip(repos, ("run-a", "run-b"), strict=True):
        monkeypatch.chdir(repo.root)
        monkeypatch.setenv("ESL_BUILD_RUN_ID", run_id)
        out = repo.root / "doit-output.txt"
        code = DoitMain(ModuleTaskLoader(tasks), config_filenames=()).run(
            ["run", "-o", str(out)])
        assert code == 0, out.read_text()
    for repo, name in zip(repos, "ab", strict=True):
        manifests = sorted(p.name for p in (repo.root / "lessons").glob("*.manifest.json"))
        assert manifests == [f"{name}-lesson.manifest.json"]
        records = json.loads((repo.root / "lessons" / manifests[0]).read_text())["stages"]
        assert {r["runId"] for r in records.values()} == {f"run-{name}"}
