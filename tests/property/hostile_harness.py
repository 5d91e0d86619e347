"""What every hostile-input property shares: a repository built once against the fakes, a
sandbox per example, the real CLI run in this process, and the checks of a clean refusal.

``World`` is one fake Notion and one fake ElevenLabs (real HTTP on 127.0.0.1, reached through
the real SDKs) and a lessons repository built against them: the fixture lessons of
``tests/fixtures/lessons/`` and configs of ``tests/fixtures/configs/``, every stage recorded.
Each example copies it into ``<sandbox>/repo`` beside ``<sandbox>/outside.txt``, spoils one
file, runs ``esl-build ...`` in-process (``esl_build.cli.main``) and returns a ``Run``: exit
code, output, the requests each fake received and a snapshot of the sandbox before and after.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import re
import shutil
import tempfile
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from esl_build import cli
from esl_build.settings import ENV_VARS
from esl_build.testing.fake_elevenlabs import VOICES, FakeElevenLabs
from esl_build.testing.fake_notion import FakeNotion
from esl_build.testing.repo import snapshot as snapshot_files
from esl_build.voices.catalog import catalog_bytes

TESTS = Path(__file__).resolve().parents[1]
FIXTURE_LESSONS = TESTS / "fixtures" / "lessons"
FIXTURE_CONFIGS = TESTS / "fixtures" / "configs"
# The fixture lessons that build (empty-frontmatter.md is refused on purpose).
LESSONS = sorted(p.stem for p in FIXTURE_LESSONS.glob("*.md") if p.stem != "empty-frontmatter")
FEW = ("short-fenced", "short-no-labels")  # Priya's profile, and the default one
OUTSIDE = "outside.txt"
FAST = {"NOTION_RATE_LIMIT": "1000", "NOTION_RETRY_DELAY": "0.01"}
MANIFEST = re.compile(r"^repo/lessons/.*\.manifest\.json$")


def snapshot(top: Path) -> dict[str, bytes | str]:
    """Every file under ``top`` but the repository's ``build/``: its bytes, or a link's target."""
    return snapshot_files(top, skip=top / "repo" / "build")


@dataclass
class Run:
    """One in-process ``esl-build`` run in a sandbox."""

    code: int
    output: str
    notion_requests: int
    eleven_requests: int
    before: dict[str, bytes | str]
    after: dict[str, bytes | str]

    def changed(self) -> set[str]:
        keys = self.before.keys() | self.after.keys()
        return {k for k in keys if self.before.get(k) != self.after.get(k)}

    def assert_refused(self, *, codes: tuple[int, ...] = (1, 2), naming: str) -> None:
        """A clean refusal: one of ``codes``, ``naming`` (a regex) in the output, no
        traceback, nothing sent to either service, nothing outside ``build/`` changed."""
        where = self.output
        assert self.code in codes, f"exit {self.code}\n{where}"
        assert "Traceback" not in where, where
        assert re.search(naming, where), f"{naming!r} not in:\n{where}"
        assert self.notion_requests == 0 and self.eleven_requests == 0, where
        assert not self.changed(), (sorted(self.changed()), where)

    def assert_clean(self) -> None:
        """Whatever the outcome: an exit code of ours, no traceback, nothing changed outside
        ``build/`` but the manifests (which the stages that ran rewrite), and every failed
        task's message naming the file it blames."""
        assert "Traceback" not in self.output, self.output
        assert self.code in (0, 1, 2), f"exit {self.code}\n{self.output}"
        strays = {k for k in self.changed() if not MANIFEST.match(k)}
        assert not strays, (sorted(strays), self.output)
        for task, message in self.failures().items():
            assert re.search(r"(lessons|configs)/\S+", message), (task, self.output)

    def failures(self) -> dict[str, str]:
        """Failed task → its message (the indented lines below ``[n/N] task failed``)."""
        found: dict[str, str] = {}
        for match in _FAILED.finditer(self.output):
            found[match.group(1)] = match.group(2)
        return found


_FAILED = re.compile(r"^\[\d+/\d+\] (\S+) failed\n((?:    .*\n?)*)", re.MULTILINE)


@contextlib.contextmanager
def inside(root: Path, env: dict[str, str]) -> Iterator[io.StringIO]:
    """Run code as if in ``root`` with only ``env`` of our variables set; stdout and stderr
    go to the returned buffer."""
    old_cwd, old = os.getcwd(), {name: os.environ.get(name) for name in ENV_VARS}
    for name in ENV_VARS:
        os.environ.pop(name, None)
    os.environ.update(env)
    os.chdir(root)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            yield out
    finally:
        os.chdir(old_cwd)
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class World:
    """The fakes and the built repository (see the module's docstring)."""

    def __init__(self, top: Path, lessons: tuple[str, ...] | list[str] = LESSONS):
        self.lessons = list(lessons)
        self.notion = FakeNotion()
        self.eleven = FakeElevenLabs().start()
        self.env = {**self.notion.env, **self.eleven.env, **FAST}
        self.base = top / "repo"
        (self.base / "lessons").mkdir(parents=True)
        shutil.copytree(FIXTURE_CONFIGS, self.base / "configs")
        priya = self.base / "configs" / "students" / "priya.json"  # its voices, on the fake
        for ours, theirs in (("voice_for_noor", "fake-voice-nora-0001"),
                             ("voice_for_tomas", "fake-voice-owen-0002"),
                             ("voice_for_anyone_else", "fake-voice-ruth-0003")):
            priya.write_text(priya.read_text("utf-8").replace(ours, theirs), "utf-8")
        (self.base / "configs" / "elevenlabs.voices.json").write_bytes(
            catalog_bytes(list(VOICES)))
        for name in self.lessons:
            shutil.copyfile(FIXTURE_LESSONS / f"{name}.md", self.base / "lessons" / f"{name}.md")
        code, output = self.cli(self.base, "build")
        assert code == 0, output
        code, output = self.cli(self.base, "build")
        assert code == 0 and "requests sent: 0" in output, output
        with self.notion.lock:
            self._pages = copy.deepcopy(self.notion.nodes)

    @staticmethod
    def fixture(lesson_id: str) -> str:
        """The fixture lesson's text."""
        return (FIXTURE_LESSONS / f"{lesson_id}.md").read_text("utf-8")

    @staticmethod
    def base_file(path: str) -> str:
        """A configuration file of the built repository (``configs/...``), as it is there."""
        return (FIXTURE_CONFIGS / Path(path).relative_to("configs")).read_text("utf-8")

    def manifest(self, lesson_id: str) -> bytes:
        """The lesson's manifest as the build wrote it."""
        return (self.base / "lessons" / f"{lesson_id}.manifest.json").read_bytes()

    def close(self) -> None:
        self.notion.close()
        self.eleven.stop()

    def cli(self, root: Path, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        """``esl-build ARGV`` in ``root``: its exit code and output (a traceback, if an
        exception escaped, is part of the output)."""
        with inside(root, env if env is not None else self.env) as out:
            try:
                code = cli.main(list(argv))
            except SystemExit as stop:  # argparse's usage errors
                code = stop.code if isinstance(stop.code, int) else 2
            except BaseException:
                traceback.print_exc(file=out)
                code = -1
        return code, out.getvalue()

    @contextlib.contextmanager
    def sandbox(self) -> Iterator[Path]:
        """A fresh copy of the built repository, ``<sandbox>/repo``; the fake Notion's pages
        are as the base build left them."""
        with self.notion.lock:
            self.notion.nodes = copy.deepcopy(self._pages)
        with tempfile.TemporaryDirectory(prefix="hostile-") as top:
            repo = Path(top) / "repo"
            shutil.copytree(self.base, repo, symlinks=True)
            (Path(top) / OUTSIDE).write_text("nothing may write here\n", "utf-8")
            yield repo

    def run(self, repo: Path, *argv: str, env: dict[str, str] | None = None) -> Run:
        """``esl-build ARGV`` in the sandbox ``repo``, watched."""
        top = repo.parent
        before = snapshot(top)
        notion, eleven = len(self.notion.requests), len(self.eleven.requests)
        code, output = self.cli(repo, *argv, env=env)
        return Run(code, output, len(self.notion.requests) - notion,
                   len(self.eleven.requests) - eleven, before, snapshot(top))

    def pages_of(self, lesson_id: str) -> int:
        """Live pages the fake Notion holds for ``lesson_id``."""
        return len(self.notion.pages_of(lesson_id))
