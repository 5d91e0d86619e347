"""The scaffold's CI works: its workflow's shell steps, run as written in lessons.yml, in a
scaffolded repository whose remote is a local bare repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from esl_build.scaffold import requirement_from, scaffold

IDENTITY = {"GIT_AUTHOR_NAME": "Teacher", "GIT_AUTHOR_EMAIL": "teacher@example.org",
            "GIT_COMMITTER_NAME": "Teacher", "GIT_COMMITTER_EMAIL": "teacher@example.org"}
FLAT = ("unit1", "unit2")
NESTED = ("unit1", "b1/unit2", "b1/extra/unit3")

needs_git = pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None,
                               reason="git and bash are needed (apt-get install git)")


def sh(cwd: Path, command: str, env: dict[str, str] | None = None, check: bool = True,
       identity: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with bash; git sees no user or system config (a CI runner's view), and
    a teacher's identity unless ``identity`` is False."""
    base = {k: v for k, v in os.environ.items() if k not in IDENTITY}
    base.update(HOME=str(cwd.parent), GIT_CONFIG_NOSYSTEM="1", **(IDENTITY if identity else {}))
    done = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False, env={**base, **(env or {})})
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def step(repo: Path, name: str) -> str:
    """The ``run`` of the workflow step called ``name``, as the workflow has it."""
    workflow = yaml.safe_load((repo / ".github/workflows/lessons.yml").read_text())
    [run] = [s["run"] for s in workflow["jobs"]["build"]["steps"] if s.get("name") == name]
    return str(run)


def commit_manifests(repo: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh(repo, step(repo, "commit manifests"), check=check, identity=False)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A scaffolded repository pushed to a bare remote, checked out the way CI checks it out."""
    scaffold(tmp_path / "seed")
    sh(tmp_path, "git init -q --bare -b main remote.git")
    sh(tmp_path / "seed", "git init -q -b main && git add -A && git commit -qm init "
                          "&& git push -q ../remote.git main")
    sh(tmp_path, "git clone -q remote.git clone")
    return tmp_path / "clone"


def write_manifests(repo: Path, ids: tuple[str, ...], text: str = '{"schemaVersion": 2}\n'):
    for lesson_id in ids:
        path = repo / "lessons" / f"{lesson_id}.manifest.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def in_remote(repo: Path, path: str) -> str:
    return sh(repo.parent, f"git --git-dir remote.git show main:{path}").stdout


@needs_git
@pytest.mark.parametrize("ids", [FLAT, NESTED], ids=["flat", "nested"])
def test_the_manifests_land_in_the_remote_whatever_the_layout(clone, ids):
    write_manifests(clone, ids)
    (clone / "build").mkdir()
    (clone / "build/junk.txt").write_text("not committed")
    done = commit_manifests(clone)
    assert "pushed to origin main" in done.stdout
    for lesson_id in ids:
        assert in_remote(clone, f"lessons/{lesson_id}.manifest.json") == '{"schemaVersion": 2}\n'
    files = sh(clone.parent, "git --git-dir remote.git show --name-only --format=%an main").stdout
    assert files.split() == ["esl-build", *sorted(f"lessons/{i}.manifest.json" for i in ids)]

    again = commit_manifests(clone)  # nothing changed: no commit, no push
    assert "nothing to commit" in again.stdout
    (clone / "lessons/unit1.manifest.json").unlink()  # a lesson removed with its manifest
    commit_manifests(clone)
    gone = sh(clone.parent, "git --git-dir remote.git cat-file -e main:lessons/unit1.manifest.json",
              check=False)
    assert gone.returncode != 0


@needs_git
def test_a_branch_that_moved_during_the_build_gets_the_manifests_on_top(clone, tmp_path):
    sh(tmp_path, "git clone -q remote.git teacher")
    sh(tmp_path / "teacher", "echo '# new' > lessons/new.md && git add -A && git commit -qm new "
                             "&& git push -q origin main")
    write_manifests(clone, NESTED)
    done = commit_manifests(clone)
    assert "after rebasing" in done.stdout
    assert in_remote(clone, "lessons/new.md") == "# new\n"
    assert in_remote(clone, "lessons/b1/extra/unit3.manifest.json")


@needs_git
def test_a_rejected_push_fails_loudly(clone, tmp_path):
    hook = tmp_path / "remote.git/hooks/pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    write_manifests(clone, FLAT)
    done = commit_manifests(clone, check=False)
    assert done.returncode != 0
    assert "protected branch" in done.stderr
    assert "could not push the manifests to origin main" in done.stderr
    assert "NOT saved" in done.stderr


@needs_git
def test_ci_installs_exactly_what_requirements_names_and_stops_until_it_names_one(clone):
    install = step(clone, "install esl-build (the line in requirements.txt)")
    done = sh(clone, install, check=False)
    assert done.returncode == 1
    assert "requirements.txt names no esl-build to install" in done.stderr
    # pip itself is not run here (no network): a stand-in python records what it was asked.
    fake = clone.parent / "python"
    fake.write_text('#!/bin/sh\necho "$@" > "$0.args"\n')
    fake.chmod(0o755)
    requirements = clone / "requirements.txt"
    requirements.write_text(requirements.read_text()
                            + "esl-build @ git+https://github.com/OWNER/esl-build@v0.1.0\n")
    sh(clone, install, env={"PYTHON": str(fake)})
    assert fake.with_suffix(".args").read_text().split() == [
        "-m", "pip", "install", "--quiet", "-r", "requirements.txt"]


def test_the_scaffold_documents_itself_and_ignores_secrets_and_build(tmp_path):
    scaffold(tmp_path / "new")
    readme = (tmp_path / "new/README.md").read_text()
    for topic in ("doit", "requirements.txt", "NOTION_TOKEN", "manifest", "Workflow permissions",
                  ".env", "build/site"):
        assert topic in readme, topic
    ignored = (tmp_path / "new/.gitignore").read_text().split()
    assert ".env" in ignored and "/build/" in ignored
    workflow = (tmp_path / "new/.github/workflows/lessons.yml").read_text()
    assert "esl-build==" not in workflow  # no version pinned that no index serves


@pytest.mark.parametrize(("direct_url", "line"), [
    ({"url": "https://github.com/o/esl-build.git",
      "vcs_info": {"vcs": "git", "commit_id": "0abc", "requested_revision": "v0.1.0"}},
     "esl-build @ git+https://github.com/o/esl-build.git@0abc"),
    ({"url": "https://github.com/o/mono", "subdirectory": "tools/esl",
      "vcs_info": {"vcs": "git", "commit_id": "0abc"}},
     "esl-build @ git+https://github.com/o/mono@0abc#subdirectory=tools/esl"),
    ({"url": "https://example.org/esl_build-0.1.0-py3-none-any.whl", "archive_info": {}},
     "esl-build @ https://example.org/esl_build-0.1.0-py3-none-any.whl"),
    ({"url": "file:///home/me/esl-build", "dir_info": {"editable": True}}, None),
    ({"url": "https://x-access-token:ghp_secret@github.com/o/esl-build",
      "vcs_info": {"vcs": "git", "commit_id": "0abc"}}, None),
    ({"url": "https://hg.example/esl-build", "vcs_info": {"vcs": "hg", "commit_id": "1"}}, None),
])
def test_init_pins_the_esl_build_it_came_from_when_ci_can_reach_it(direct_url, line):
    assert requirement_from(direct_url) == line
