"""build/site can be shared on its own: zipped, unpacked elsewhere, every page still plays its
audio and every link stays inside the folder; the incremental rules still hold."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from esl_build.testing.repo import DoitRun, LessonsRepo, lesson_text

LESSONS = {"unit1": lesson_text(),
           "b1/unit2": lesson_text(("Alex: Where is the station?", "Mara: It's by the bank."),
                                   title="Directions", student="Leo")}


class _Links(HTMLParser):
    """Every ``<audio src>`` and ``<a href>`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "audio" and values.get("src"):
            self.audio.append(values["src"] or "")
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")


def links(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def resolve(page: Path, href: str, root: Path) -> Path:
    """The file ``href`` on ``page`` names, asserting it is a relative link inside ``root``."""
    parts = urlsplit(href)
    assert not parts.scheme and not parts.netloc and not parts.path.startswith("/"), href
    target = (page.parent / unquote(parts.path)).resolve()
    assert target.is_relative_to(root.resolve()), f"{page.name}: {href} leaves the site"
    assert target.is_file(), f"{page.name}: {href} is missing"
    return target


def build(repo: LessonsRepo) -> DoitRun:
    run = repo.doit()
    assert run.returncode == 0, run.stdout + run.stderr
    return run


@pytest.mark.parametrize("outside", [None, "ESL_BUILD_LOCAL_BUCKET", "ESL_BUILD_BUILD_DIR"])
def test_the_site_plays_its_audio_when_zipped_and_unpacked_elsewhere(tmp_path, outside):
    """Default layout; a bucket outside the project (file:// URLs); a build folder outside."""
    env = {outside: str(tmp_path / "elsewhere")} if outside else {}
    repo = LessonsRepo.create(tmp_path / "repo", LESSONS, env=env)
    build(repo)
    site = tmp_path / "elsewhere/site" if outside == "ESL_BUILD_BUILD_DIR" else repo.path(
        "build/site")
    archive = shutil.make_archive(str(tmp_path / "site"), "zip", site)
    shutil.rmtree(repo.root)  # nothing the site needs may live outside it
    shutil.rmtree(tmp_path / "elsewhere", ignore_errors=True)
    shared = tmp_path / "unpacked" / "somewhere"
    shutil.unpack_archive(archive, shared)

    index = shared / "index.html"
    pages = {resolve(index, href, shared) for href in links(index).links}
    assert pages == {shared / "unit1.html", shared / "b1/unit2.html"}
    for page in (index, *pages):
        found = links(page)
        assert found.audio, f"{page.name} has no player"
        for src in found.audio:
            assert resolve(page, src, shared).read_bytes()[:3] in (b"ID3", b"\xff\xfb")
        for href in found.links:
            if not href.startswith("#"):
                resolve(page, href, shared)


def test_a_content_edit_keeps_the_player_and_its_copy(tmp_path):
    repo = LessonsRepo.create(tmp_path / "repo", LESSONS)
    build(repo)
    [copy] = repo.path("build/site/audio/unit1").glob("*.mp3")
    stamp = copy.stat().st_mtime_ns
    repo.edit("unit1", "It helps you speak with confidence.", "It builds fluency.")
    assert build(repo).ran - {"index"} == {"validate:unit1", "import:unit1"}
    assert build(repo).ran == set()
    page = repo.path("build/site/unit1.html")
    assert "It builds fluency." in page.read_text()
    assert [resolve(page, src, repo.path("build/site")) for src in links(page).audio] == [copy]
    assert copy.stat().st_mtime_ns == stamp


def test_a_lost_copy_reruns_add_audio_only_and_a_fresh_clone_fetches_it_back(tmp_path):
    repo = LessonsRepo.create(tmp_path / "repo", LESSONS, env={"ESL_BUILD_LOCAL_BUCKET": "bucket"})
    build(repo)
    shutil.rmtree(repo.path("build/site/audio"))
    run = build(repo)
    assert run.ran - {"index"} == {"add-audio:unit1", "add-audio:b1/unit2"}
    shutil.rmtree(repo.path("build"))  # a fresh clone: manifests and the bucket only
    run = build(repo)
    assert run.characters == 0 and not {"tts:unit1", "upload:unit1"} & run.ran
    page = repo.path("build/site/b1/unit2.html")
    [src] = links(page).audio
    assert resolve(page, src, repo.path("build/site")).stat().st_size > 10_000
