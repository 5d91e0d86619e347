"""The notion publisher in real builds: doit in a subprocess, the real notion-client SDK over
HTTP, the fake Notion server on 127.0.0.1. Assertions are on what the fake received and holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from esl_build.lesson import read_lesson
from esl_build.lesson.model import Block, plain_text
from esl_build.testing.fake_notion import FakeNotion
from esl_build.testing.repo import LessonsRepo, lesson_text

BUNDLED = Path(__file__).resolve().parents[2] / "lessons"
FAST = {"NOTION_RATE_LIMIT": "1000", "NOTION_RETRY_DELAY": "0.01"}


@pytest.fixture
def fake() -> Iterator[FakeNotion]:
    with FakeNotion() as server:
        yield server


def bundled() -> dict[str, str]:
    return {p.relative_to(BUNDLED).as_posix()[:-3]: p.read_text(encoding="utf-8")
            for p in sorted(BUNDLED.rglob("*.md"))}


def build(repo: LessonsRepo, fake: FakeNotion, **env: str):
    run = repo.doit("-n", "2", "-P", "thread", env={**fake.env, **FAST, **env})
    assert fake.token not in run.stdout + run.stderr
    return run


def ok(run) -> None:  # type: ignore[no-untyped-def]
    assert run.returncode == 0, run.stdout + run.stderr


def texts(block: Block) -> Iterator[str]:
    """Every text a lesson block shows (its own and its children's)."""
    if block.text:
        yield plain_text(block.text)
    for row in block.rows:
        yield " ".join(plain_text(cell) for cell in row)
    if block.url:
        yield block.url
    for child in block.children:
        yield from texts(child)


def page_id(repo: LessonsRepo, lesson_id: str) -> str:
    manifest = json.loads(repo.path(f"lessons/{lesson_id}.manifest.json").read_text())
    return str(manifest["remote"]["import/notion"]["pageId"])


def published(repo: LessonsRepo, lesson_id: str) -> dict:  # type: ignore[type-arg]
    manifest = json.loads(repo.path(f"lessons/{lesson_id}.manifest.json").read_text())
    return manifest["stages"]["import"]["outputs"]  # type: ignore[no-any-return]


def block_with(fake: FakeNotion, page: str, text: str):  # type: ignore[no-untyped-def]
    return next(node for _, node in fake.walk(page) if text in fake.text_of(node))


def test_bundled_lessons_give_one_page_each_whose_blocks_reproduce_every_line(
        tmp_path: Path, fake: FakeNotion) -> None:
    lessons = bundled()
    repo = LessonsRepo.create(tmp_path / "repo", lessons)
    run = build(repo, fake)
    ok(run)
    assert len(fake.pages()) == len(lessons) == 3
    for lesson_id in lessons:  # the run ends by saying where the result is: the page URLs
        assert published(repo, lesson_id)["url"] in run.stdout, run.stdout
    for lesson_id in lessons:
        pages = fake.pages_of(lesson_id)
        assert len(pages) == 1 and pages[0].id == page_id(repo, lesson_id)
        shown = [fake.text_of(node) for _, node in fake.walk(pages[0].id)]
        lesson, _ = read_lesson(repo.path(f"lessons/{lesson_id}.md"), lesson_id=lesson_id)
        assert lesson is not None
        for block in lesson.blocks:
            for text in texts(block):
                assert any(text in seen for seen in shown), (lesson_id, block.line, text)
        assert fake.title(pages[0]) == lesson.frontmatter.title
        assert pages[0].icon == {"type": "emoji", "emoji": lesson.frontmatter.icon} \
            or not lesson.frontmatter.icon
    # local storage has no public URL: add-audio skips with a warning and the build passes
    assert "Notion cannot play; skipped" in run.stderr
    assert {f"add-audio:{lesson_id}" for lesson_id in lessons} <= run.ran

    assert not [p for p, data in repo.manifest_bytes().items() if fake.token.encode() in data]
    before = len(fake.requests)
    again = build(repo, fake)
    ok(again)
    assert len(fake.requests) == before  # a second build sends no request at all
    assert not again.ran


def test_one_line_edit_updates_its_block_in_place_and_creates_none(
        tmp_path: Path, fake: FakeNotion) -> None:
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text()})
    ok(build(repo, fake))
    page = page_id(repo, "unit1")
    target = block_with(fake, page, "It helps you speak")
    created, sent = fake.blocks_created, len(fake.requests)
    repo.edit("unit1", "It helps you speak with confidence.", "It helps you speak fluently.")
    ok(build(repo, fake))
    assert fake.blocks_created == created
    assert len(fake.requests) - sent <= 6
    assert fake.count("PATCH", f"/blocks/{target.id}$") == 1
    assert fake.text_of(fake.nodes[target.id]) == "It helps you speak fluently."
    assert len(fake.pages()) == 1


def test_a_teachers_edit_survives_a_rebuild_that_changes_another_block(
        tmp_path: Path, fake: FakeNotion) -> None:
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text()})
    ok(build(repo, fake))
    page = page_id(repo, "unit1")
    goal = block_with(fake, page, "Practise a short conversation.")
    fake.human_edit(goal.id, "Your Goal: practise ordering coffee.")
    repo.edit("unit1", "It helps you speak with confidence.", "It helps you speak fluently.")
    run = build(repo, fake)
    ok(run)
    assert fake.text_of(fake.nodes[goal.id]) == "Your Goal: practise ordering coffee."
    assert "speak fluently" in fake.page_text(page)
    assert "kept the teacher's version" in run.stderr
    assert "practise ordering coffee" in run.stderr and "lessons/unit1.md:" in run.stderr


def test_a_teacher_and_the_lesson_editing_one_block_stop_that_lesson_only(
        tmp_path: Path, fake: FakeNotion) -> None:
    repo = LessonsRepo.create(tmp_path / "repo", {
        "unit1": lesson_text(), "unit2": lesson_text(title="Other", why="Because.")})
    ok(build(repo, fake))
    page = page_id(repo, "unit1")
    why = block_with(fake, page, "It helps you speak")
    fake.human_edit(why.id, "Teacher: it builds confidence.")
    repo.edit("unit1", "It helps you speak with confidence.", "It helps you speak fluently.")
    repo.edit("unit1", "Practise a short conversation.", "Practise a long conversation.")
    repo.edit("unit2", "Because.", "Because it works.")
    sent = len(fake.requests)
    run = build(repo, fake)
    assert run.returncode == 1
    output = run.stdout + run.stderr
    assert "lesson: It helps you speak fluently." in output
    assert "Notion: Teacher: it builds confidence." in output
    assert "NOTION_ON_CONFLICT=force" in output and "keep-notion" in output
    ours = {b.id for _, b in fake.walk(page)} | {page}
    assert not [r for r in fake.requests[sent:]
                if r.method != "GET" and any(i in r.path for i in ours)]
    assert "Practise a long" not in fake.page_text(page)  # nothing written to that lesson
    assert "Because it works." in fake.page_text(page_id(repo, "unit2"))  # others carry on

    forced = build(repo, fake, NOTION_ON_CONFLICT="force")
    ok(forced)
    assert fake.text_of(fake.nodes[why.id]) == "It helps you speak fluently."
    assert "Practise a long conversation." in fake.page_text(page)


def test_blocks_a_teacher_added_survive_rebuilds(tmp_path: Path, fake: FakeNotion) -> None:
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text()})
    ok(build(repo, fake))
    page = page_id(repo, "unit1")
    anchor = block_with(fake, page, "Record your own dialogue.")
    note = fake.human_insert(page, anchor.id, "Teacher's note: bring headphones.")
    repo.edit("unit1", "* **Task:** Record your own dialogue.",
              "* **Task:** Record your own dialogue.\n* **Extra:** Share it.")
    repo.edit("unit1", "It helps you speak with confidence.", "")
    created = fake.blocks_created
    ok(build(repo, fake))
    assert not fake.nodes[note].archived
    order = [node.id for node in fake.tree(page)]
    assert note in order
    assert fake.blocks_created == created + 1  # only the new bullet
    assert "Share it." in fake.page_text(page)
    assert "It helps you speak" not in fake.page_text(page)


@pytest.mark.slow  # two builds of three lessons through a faulty fake: about 30 s
@pytest.mark.parametrize("seed", [11, 12])
def test_a_twenty_percent_fault_rate_leaves_one_complete_page_per_lesson(
        tmp_path: Path, seed: int) -> None:
    lessons = bundled()
    with FakeNotion() as clean:
        reference = LessonsRepo.create(tmp_path / "clean", lessons)
        ok(build(reference, clean))
        expected = {lid: [(d, n.kind, clean.text_of(n)) for d, n in
                          clean.walk(page_id(reference, lid))] for lid in lessons}
    with FakeNotion(faults=0.2, seed=seed) as fake:
        repo = LessonsRepo.create(tmp_path / "repo", lessons)
        env = FAST
        first = repo.doit(env={**fake.env, **env})
        if first.returncode != 0:
            ok(repo.doit(env={**fake.env, **env}))
        statuses = [r.status for r in fake.requests]
        assert statuses.count(429) and sum(s >= 500 for s in statuses) >= 5
        for lesson_id in lessons:
            pages = fake.pages_of(lesson_id)
            assert len(pages) == 1, lesson_id  # archived duplicates would count too
            got = [(d, n.kind, fake.text_of(n)) for d, n in fake.walk(pages[0].id)]
            assert got == expected[lesson_id]


def test_a_predecessors_page_is_adopted_and_its_body_replaced_once(
        tmp_path: Path, fake: FakeNotion) -> None:
    old = fake.handle("POST", "/v1/pages", {"authorization": f"Bearer {fake.token}",
                                            "notion-version": "2025-09-03"}, json.dumps({
        "parent": {"data_source_id": fake.data_source_id},
        "properties": {"Name": {"title": [{"text": {"content": "Old"}}]}},
        "children": [{"type": "paragraph", "paragraph": {"rich_text": [
            {"text": {"content": "predecessor text"}}]}}]}).encode())[1]["id"]
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text()})
    repo.path("lessons/unit1.manifest.json").write_text(json.dumps(
        {"pageId": old, "pageUrl": "https://www.notion.so/old", "mdHash": "abc"}))
    ok(build(repo, fake))
    assert len(fake.pages()) == 1 and page_id(repo, "unit1") == old
    text = fake.page_text(old)
    assert "predecessor text" not in text and "It helps you speak" in text
    sent = len(fake.requests)
    repo.edit("unit1", "It helps you speak with confidence.", "It helps you speak well.")
    ok(build(repo, fake))
    assert fake.count("DELETE") and len(fake.requests) - sent <= 6


def test_a_block_the_teacher_deleted_stays_deleted_and_is_reported(
        tmp_path: Path, fake: FakeNotion) -> None:
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text()})
    ok(build(repo, fake))
    page = page_id(repo, "unit1")
    gone = block_with(fake, page, "Ask about the weekend.")
    fake.human_delete(gone.id)
    repo.edit("unit1", "It helps you speak with confidence.", "It helps you speak fluently.")
    created = fake.blocks_created
    run = build(repo, fake)
    ok(run)
    assert fake.nodes[gone.id].archived and fake.blocks_created == created
    assert "Ask about the weekend" not in fake.page_text(page)
    assert "(deleted in Notion)" in run.stderr and "speak fluently" in fake.page_text(page)


def test_a_database_name_and_a_student_profile_choose_the_target_once_per_run(
        tmp_path: Path, fake: FakeNotion) -> None:
    anna = "0000aaaa-0000-0000-0000-00000000aaaa"
    fake.add_data_source(anna, "Anna's lessons", {"Name": "title", "Lesson ID": "rich_text"},
                         database="db-anna")
    repo = LessonsRepo.create(tmp_path / "repo", {
        "unit1": lesson_text(student="Anna"), "unit2": lesson_text(student="Anna", why="So."),
        "unit3": lesson_text(student="Ben"), "unit4": lesson_text(student="Ben", why="Yes.")})
    repo.path("configs/students/anna.json").write_text(
        json.dumps({"student": "Anna", "dbId": "db-anna"}), encoding="utf-8")
    ok(build(repo, fake, NOTION_DATA_SOURCE_ID="", NOTION_DB_NAME="Lessons"))
    where = [n.data_source for n in fake.nodes.values() if n.kind == "page"]
    assert where.count(anna) == 2  # the profile's database
    assert where.count(fake.data_source_id) == 2  # the database named
    assert fake.count("POST", r"^/v1/search$") == 1  # once per run, not per lesson
    assert fake.count("GET", r"^/v1/databases/db-anna$") == 1
    assert fake.count("GET", r"^/v1/data_sources/") == 2  # one per data source
    search = next(r for r in fake.requests if r.path == "/v1/search")
    assert search.body["filter"] == {"property": "object", "value": "data_source"}

    repo.path("configs/students/anna.json").write_text(  # the target is in the fingerprint
        json.dumps({"student": "Anna", "dbId": "db-anna", "colorPreset": None}),
        encoding="utf-8")
    sent = len(fake.requests)
    ok(build(repo, fake, NOTION_DATA_SOURCE_ID="", NOTION_DB_NAME="Lessons"))
    assert len(fake.requests) == sent  # the same target: nothing to do
    del fake.sources[fake.students_source_id]  # the database now holds one data source
    ok(build(repo, fake, NOTION_DATA_SOURCE_ID="", NOTION_DB_NAME="Lessons",
             NOTION_DB_ID=fake.database_id))  # an id before a name: Ben's target changed
    assert sorted(r.path for r in fake.requests[sent:]) == sorted([  # re-checked: no write
        f"/v1/pages/{page_id(repo, 'unit3')}", f"/v1/pages/{page_id(repo, 'unit4')}"])
    assert len([n for n in fake.nodes.values() if n.kind == "page"]) == 4  # still one each


@pytest.mark.parametrize("copies", [0, 2])
def test_a_database_name_matching_no_or_several_data_sources_is_a_configuration_error(
        tmp_path: Path, fake: FakeNotion, copies: int) -> None:
    for n in range(copies):
        fake.add_data_source(f"0000bbbb-0000-0000-0000-00000000000{n}", "Homework",
                             {"Name": "title"}, database=f"db-{n}")
    fake.add_data_source("0000cccc-0000-0000-0000-000000000000", "Homework 2",
                         {"Name": "title"}, database="db-other")  # not an exact match
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text(),
                                                  "unit2": lesson_text(why="So.")})
    run = build(repo, fake, NOTION_DATA_SOURCE_ID="", NOTION_DB_NAME="Homework")
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "Notion data source named 'Homework'" in output
    assert ("none is titled so" if not copies else "2 are titled so") in output
    assert "Traceback" not in output
    assert not fake.pages() and fake.count("POST", r"^/v1/pages$") == 0
    assert fake.count("POST", r"^/v1/search$") == 1  # found wanting once, for both lessons


@pytest.mark.slow  # five builds: about 10 s
def test_force_and_keep_notion_settle_a_conflict_from_the_command_line(
        tmp_path: Path, fake: FakeNotion) -> None:
    repo = LessonsRepo.create(tmp_path / "repo", {"unit1": lesson_text(),
                                                  "unit2": lesson_text(title="Two")})
    ok(build(repo, fake))
    pages = {lesson: page_id(repo, lesson) for lesson in ("unit1", "unit2")}
    whys = {lesson: block_with(fake, page, "It helps you speak") for lesson, page in pages.items()}
    for lesson, why in whys.items():
        fake.human_edit(why.id, f"Teacher's words in {lesson}.")
        repo.edit(lesson, "It helps you speak with confidence.", "It helps you speak fluently.")
        repo.edit(lesson, "Practise a short conversation.", "Practise a long conversation.")
    env = {**fake.env, **FAST}
    sent = len(fake.requests)
    stopped = repo.esl_build("build", env=env)
    assert stopped.returncode == 1
    output = stopped.stdout + stopped.stderr
    for lesson, why in whys.items():  # the lesson, the block, both versions, the ways on
        assert f"import:{lesson}: Notion: 1 block(s) changed both" in output
        assert f"lessons/{lesson}.md:" in output and f"paragraph (block {why.id})" in output
        assert f"Notion: Teacher's words in {lesson}." in output
        assert f"esl-build build --force import:{lesson}" in output
        assert f"esl-build build --keep-notion import:{lesson}" in output
        assert f"NOTION_ON_CONFLICT=force doit import:{lesson}" in output
    assert "lesson: It helps you speak fluently." in output
    assert not [r for r in fake.requests[sent:] if r.method != "GET"]  # nothing written

    ok(repo.esl_build("build", "--force", "import:unit1", env=env))
    assert fake.text_of(fake.nodes[whys["unit1"].id]) == "It helps you speak fluently."
    assert "Practise a long conversation." in fake.page_text(pages["unit1"])
    assert "Teacher's words in unit2." in fake.page_text(pages["unit2"])  # not forced
    assert "Practise a short conversation." in fake.page_text(pages["unit2"])  # not run

    ok(repo.esl_build("build", "--keep-notion", "import:unit2", env=env))
    assert fake.text_of(fake.nodes[whys["unit2"].id]) == "Teacher's words in unit2."
    assert "Practise a long conversation." in fake.page_text(pages["unit2"])
    again = repo.esl_build("build", env=env)  # recorded: neither lesson conflicts again
    ok(again)
    assert "changed both" not in again.stdout + again.stderr
    assert fake.text_of(fake.nodes[whys["unit2"].id]) == "Teacher's words in unit2."

    both = repo.esl_build("build", "--force", "--keep-notion", env=env)
    assert both.returncode == 2 and "exclude each other" in both.stderr
