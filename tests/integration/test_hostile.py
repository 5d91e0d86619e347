"""Untrusted files stay harmless: each ``tests/hostile/<case>/`` is a hostile manifest, config
or lesson name (as a pull request could bring), run through the real ``doit`` or ``esl-build``.

``case.json`` says what to do to a freshly built repository and what must come out:

``manifest``  dotted field → value to set in ``lessons/unit1.manifest.json`` (``"$delete"``
              removes it; ``"{outside}"`` is the absolute path of a file outside the repo)
``copy``      new file (a hostile name) → existing file whose bytes it gets
``symlink``   link → target
``files/``    files written over the repository as they are
``run``       the command (``doit`` or ``esl-build ...``); ``exit`` the codes allowed;
``expect``    fragments the output must contain (file and field or line)

Every case must exit with one of its codes, print no traceback, and leave every file outside
``build/`` as it was: the manifests byte for byte, and a sentinel file outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from esl_build.testing.repo import LessonsRepo, lesson_text
from esl_build.testing.repo import snapshot as snapshot_files

CASES = Path(__file__).resolve().parents[1] / "hostile"
MANIFEST = "lessons/unit1.manifest.json"
OUTSIDE = "outside.txt"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with one lesson, every stage built (copied for each case)."""
    repo = LessonsRepo.create(tmp_path_factory.mktemp("built") / "repo", {"unit1": lesson_text()})
    run = repo.doit()
    assert run.returncode == 0, run.stdout + run.stderr
    return repo.root


def snapshot(top: Path) -> dict[str, bytes | str]:
    """Every file under ``top`` but the repository's ``build/``: its bytes, or a link's target."""
    return snapshot_files(top, skip=top / "repo" / "build")


def patch(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc.setdefault(key, {})
    if value == "$delete":
        del doc[last]
    else:
        doc[last] = value


def prepare(case: Path, spec: dict[str, Any], repo: Path) -> None:
    outside = str(repo.parent / OUTSIDE)
    if spec.get("manifest"):
        doc = json.loads((repo / MANIFEST).read_text("utf-8"))
        for field, value in spec["manifest"].items():
            patch(doc, field, outside if value == "{outside}" else value)
        (repo / MANIFEST).write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
    for new, existing in spec.get("copy", {}).items():
        shutil.copyfile(repo / existing, repo / new)
    for link, target in spec.get("symlink", {}).items():
        os.symlink(target, repo / link)
    if (case / "files").is_dir():
        shutil.copytree(case / "files", repo, dirs_exist_ok=True)


@pytest.mark.parametrize("case", sorted(p for p in CASES.iterdir() if p.is_dir()),
                         ids=lambda p: p.name)
def test_a_hostile_file_is_reported_and_changes_nothing(case: Path, built: Path,
                                                        tmp_path: Path) -> None:
    spec = json.loads((case / "case.json").read_text("utf-8"))
    repo = tmp_path / "repo"
    shutil.copytree(built, repo, symlinks=True)
    (tmp_path / OUTSIDE).write_text("sentinel: nothing may write here\n", "utf-8")
    prepare(case, spec, repo)
    before = snapshot(tmp_path)

    lessons = LessonsRepo(repo)
    command, *args = spec["run"]
    run = lessons.doit(*args) if command == "doit" else lessons.esl_build(*args)

    output = run.stdout + run.stderr
    assert run.returncode in spec["exit"], output
    assert "Traceback" not in output, output
    for fragment in spec["expect"]:
        assert fragment in output, output
    assert snapshot(tmp_path) == before  # manifests, lessons, configs and the sentinel


def test_every_case_says_why_and_what_it_expects() -> None:
    for case in CASES.iterdir():
        spec = json.loads((case / "case.json").read_text("utf-8"))
        assert spec["why"] and spec["expect"] and spec["run"][0] in ("doit", "esl-build"), case
        assert set(spec["exit"]) <= {1, 2}, case
