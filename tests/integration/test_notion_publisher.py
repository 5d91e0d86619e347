"""The Notion publisher on its own: the real notion-client over HTTP against the fake server,
for what a build can't easily show (limits, faults, throttling, audio with a public URL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esl_build.errors import PublishError
from esl_build.lesson import parse_lesson
from esl_build.lesson.model import Lesson
from esl_build.services.notion import NotionPublisher
from esl_build.services.protocols import PageSpec
from esl_build.settings import Settings
from esl_build.testing.fake_notion import FakeNotion
from esl_build.testing.repo import lesson_text

FAST = {"NOTION_RATE_LIMIT": "1000", "NOTION_RETRY_DELAY": "0.01"}


@pytest.fixture
def fake() -> Iterator[FakeNotion]:
    with FakeNotion() as server:
        yield server


def lesson(why: str = "It helps.", lesson_id: str = "unit1") -> Lesson:
    parsed, problems = parse_lesson(lesson_text(why=why), path=f"lessons/{lesson_id}.md",
                                    lesson_id=lesson_id)
    assert parsed is not None, problems
    return parsed


def publisher(fake: FakeNotion, warnings: list[str] | None = None, **env: str
              ) -> NotionPublisher:
    settings = Settings.resolve(Path.cwd(), env={**fake.env, **FAST, **env})
    return NotionPublisher(settings.notion, warn=(warnings if warnings is not None
                                                  else []).append)


def publish(pub: NotionPublisher, item: Lesson, known: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    return pub.publish(PageSpec(item, "b1-default", {"h2": "yellow_background"}), known)


HEAVY = "\n".join([
    "x" * 4321,
    "- level 1", "  - level 2", "    - level 3", "      - level 4", "        - level 5",
    ":::toggle-heading Many",
    *[f"- item {n}" for n in range(150)],
    ":::",
    "| a | b |", "| --- | --- |", *[f"| r{n} | s{n} |" for n in range(120)],
    ":::toggle-heading Columns inside",
    ":::column-list", ":::column", "Left", "- deep", "  - deeper", ":::",
    ":::column", "Right", "| t | u |", "| - | - |", "| 1 | 2 |", ":::", ":::",
    ":::",
])


def test_content_beyond_notions_request_limits_is_published_whole(fake: FakeNotion) -> None:
    pub = publisher(fake)
    out = publish(pub, lesson(HEAVY))
    page = out["pageId"]
    assert not [r for r in fake.requests if r.status == 400]
    text = fake.page_text(page)
    for needle in ("x" * 4321, "level 5", "item 149", "r119 s119", "deeper", "1 2"):
        assert needle in text
    assert max(depth for depth, _ in fake.walk(page)) >= 4
    assert out["blocksCreated"] == fake.blocks_created
    again = publish(pub, lesson(HEAVY), out)
    assert again["blocksCreated"] == 0 and again["requests"] == 1  # read the page, no more


def test_a_create_applied_but_answered_5xx_is_found_again_not_repeated(
        fake: FakeNotion) -> None:
    pub = publisher(fake)
    fake.lose_next("POST", "^/v1/pages$")
    out = publish(pub, lesson())
    assert len(fake.pages()) == 1 and out["pageId"] == fake.pages()[0].id
    assert [r.status for r in fake.requests if r.path == "/v1/pages"] == [502]


def test_an_append_applied_but_answered_5xx_is_not_sent_twice(fake: FakeNotion) -> None:
    pub = publisher(fake)
    fake.lose_next("PATCH", "/children$")
    out = publish(pub, lesson())
    assert fake.blocks_created == out["blocksCreated"]
    texts = [fake.text_of(n) for _, n in fake.walk(out["pageId"])]
    assert texts.count("It helps.") == 1


def test_429_is_retried_after_retry_after_and_every_lesson_lands(fake: FakeNotion) -> None:
    fake.rate, fake.burst = 8.0, 4
    pub = publisher(fake, NOTION_RATE_LIMIT="100")
    start = time.monotonic()
    out = publish(pub, lesson())
    assert fake.count() > 8 and [r for r in fake.requests if r.status == 429]
    assert time.monotonic() - start >= 1.0  # Retry-After: 1 was honoured
    assert "It helps." in fake.page_text(out["pageId"])


def test_the_limiter_paces_requests_of_every_thread_of_one_token(fake: FakeNotion) -> None:
    from esl_build.notion.client import limiter_for

    limiter = limiter_for("some-token", 20.0)
    assert limiter is limiter_for("some-token", 20.0)
    start = time.monotonic()
    for _ in range(40):
        limiter.acquire()
    assert time.monotonic() - start >= (40 - limiter.burst) / 20.0 * 0.9


def test_errors_name_lesson_stage_and_notions_message_never_the_token(
        fake: FakeNotion) -> None:
    settings = Settings.resolve(Path.cwd(), env={**fake.env, **FAST,
                                                 "NOTION_TOKEN": "secret-wrong-token"})
    pub = NotionPublisher(settings.notion, warn=lambda message: None)
    with pytest.raises(PublishError) as caught:
        publish(pub, lesson())
    message = str(caught.value)
    assert "unit1" in message and "import" in message and "API token is invalid" in message
    assert "secret-wrong-token" not in message and "secret-wrong-token" not in repr(settings)


def test_properties_follow_the_schema_and_missing_ones_warn(fake: FakeNotion) -> None:
    student = fake.add_student("Anna")
    warnings: list[str] = []
    pub = publisher(fake, warnings, STUDENTS_DB_ID=fake.students_source_id)
    text = lesson_text().replace('topic: "Testing"', 'topic: "Food, drink"\nproperties:\n'
                                 '  Tags: "a, b"\n  Missing: 3\n  Audio: "https://x.test/a"')
    parsed, problems = parse_lesson(text, path="lessons/unit1.md", lesson_id="unit1")
    assert parsed is not None, problems
    out = publish(pub, parsed)
    page = fake.nodes[out["pageId"]]
    assert page.properties["Student"] == {"relation": [{"id": student}]}
    assert page.properties["Topic"] == {"multi_select": [{"name": "Food"}, {"name": "drink"}]}
    assert page.properties["Tags"] == {"multi_select": [{"name": "a"}, {"name": "b"}]}
    assert page.properties["Level"] == {"select": {"name": "A2"}}
    assert "Lesson ID" in page.properties
    assert any("'missing' is not in the Notion data source" in w for w in warnings)


def test_add_audio_goes_on_top_of_the_study_text_and_is_then_updated_in_place(
        fake: FakeNotion) -> None:
    pub = publisher(fake)
    out = publish(pub, lesson())
    toggle = out["studyText"]
    first = pub.link_audio(out, "https://cdn.test/a.mp3", None)
    assert fake.tree(toggle)[0].id == first["blockId"]
    assert fake.tree(toggle)[0].data["external"]["url"] == "https://cdn.test/a.mp3"
    assert fake.nodes[out["pageId"]].properties["Audio"] == {"url": "https://cdn.test/a.mp3"}
    sent = len(fake.requests)
    assert pub.link_audio(out, "https://cdn.test/a.mp3", first)["requests"] == 0
    assert len(fake.requests) == sent
    created = fake.blocks_created
    second = pub.link_audio(out, "https://cdn.test/b.mp3", first)
    assert second["blockId"] == first["blockId"] and fake.blocks_created == created
    assert [n.kind for n in fake.tree(toggle)].count("audio") == 1
    republished = publish(pub, lesson("Changed."), out)  # the player survives an import
    assert fake.tree(republished["studyText"])[0].id == first["blockId"]
    warnings: list[str] = []
    local = publisher(fake, warnings).link_audio(out, "build/bucket/a.mp3", None)
    assert "blockId" not in local and "cannot play" in warnings[0]


def test_the_estimate_matches_what_publishing_then_sends(fake: FakeNotion) -> None:
    pub = publisher(fake)
    spec = PageSpec(lesson(HEAVY), "b1-default", {"h2": "yellow_background"})
    requests, blocks = pub.estimate(spec, None)
    out = pub.publish(spec, None)
    assert (requests, blocks) == (out["requests"], out["blocksCreated"])
    edited = PageSpec(lesson(HEAVY.replace("item 7\n", "item seven\n") + "\nA new line."),
                      "b1-default", {"h2": "yellow_background"})
    requests, blocks = pub.estimate(edited, out)
    again = pub.publish(edited, out)
    assert (requests, blocks) == (again["requests"], again["blocksCreated"]) == (requests, 1)


def test_the_target_is_resolved_from_a_database_with_one_data_source_only(
        fake: FakeNotion) -> None:
    env = {**fake.env, **FAST, "NOTION_DATA_SOURCE_ID": "", "NOTION_DB_ID": fake.database_id}
    pub = NotionPublisher(Settings.resolve(Path.cwd(), env=env).notion, warn=lambda m: None)
    with pytest.raises(Exception, match=r"has 2 data sources .*'Lessons'.*'Students'.*"
                                        r"NOTION_DATA_SOURCE_ID"):
        publish(pub, lesson())
    with pytest.raises(Exception, match="has 2 data sources"):  # once per run: not asked again
        publish(pub, lesson("Other.", "unit2"))
    assert not fake.pages() and fake.count("GET", "^/v1/databases/") == 1
    del fake.sources[fake.students_source_id]
    pub = NotionPublisher(Settings.resolve(Path.cwd(), env=env).notion, warn=lambda m: None)
    out = publish(pub, lesson())  # the next run
    assert fake.nodes[out["pageId"]].data_source == fake.data_source_id


def test_add_audio_leaves_an_authored_audio_embed_alone(fake: FakeNotion) -> None:
    text = lesson_text().replace("## 3. Input Material: The Dialogue",
                                 "## 3. Input Material: The Dialogue\n:::audio https://a.test/x.mp3")
    parsed, problems = parse_lesson(text, path="lessons/unit1.md", lesson_id="unit1")
    assert parsed is not None, problems
    pub = publisher(fake)
    out = publish(pub, parsed)
    pub.link_audio(out, "https://cdn.test/ours.mp3", None)
    urls = [n.data["external"]["url"] for _, n in fake.walk(out["pageId"]) if n.kind == "audio"]
    assert sorted(urls) == ["https://a.test/x.mp3", "https://cdn.test/ours.mp3"]


def test_the_fake_places_appends_as_notion_does_and_refuses_what_notion_refuses(
        fake: FakeNotion) -> None:
    from notion_client import APIResponseError, Client

    sdk = Client(auth=fake.token, base_url=fake.base_url, notion_version="2025-09-03")
    page = sdk.pages.create(parent={"data_source_id": fake.data_source_id},
                            properties={"Name": {"title": [{"text": {"content": "P"}}]}})

    def para(text: str) -> dict[str, Any]:
        return {"type": "paragraph", "paragraph": {"rich_text": [{"text": {"content": text}}]}}

    first = sdk.blocks.children.append(page["id"], children=[para("b")])["results"][0]["id"]
    sdk.blocks.children.append(page["id"], children=[para("a")], position={"type": "start"})
    sdk.blocks.children.append(page["id"], children=[para("c")], after=first)
    sdk.blocks.children.append(page["id"], children=[para("d")],
                               position={"type": "after_block", "after_block": {"id": first}})
    assert [fake.text_of(n) for n in fake.tree(page["id"])] == ["a", "b", "d", "c"]
    for wrong in ({"after": first, "position": {"type": "start"}},  # never both
                  {"position": {"type": "top"}}, {"before": first}):
        with pytest.raises(APIResponseError, match="validation"):
            sdk.request(f"blocks/{page['id']}/children", "PATCH",
                        body={"children": [para("x")], **wrong})
    newer = Client(auth=fake.token, base_url=fake.base_url, notion_version="2026-03-11")
    with pytest.raises(APIResponseError, match="Use position"):
        newer.blocks.children.append(page["id"], children=[para("x")], after=first)
    with pytest.raises(APIResponseError, match="data_source"):  # no "database" object now
        sdk.search(filter={"property": "object", "value": "database"})
    assert "x" not in fake.page_text(page["id"])


def test_no_target_anywhere_is_a_configuration_error_naming_the_student(
        fake: FakeNotion) -> None:
    from esl_build.config import Config
    from esl_build.errors import ConfigInvalid

    env = {**fake.env, **FAST, "NOTION_DATA_SOURCE_ID": ""}
    settings = Settings.resolve(Path.cwd(), env=env).notion
    with pytest.raises(ConfigInvalid, match="NOTION_DB_NAME"):
        NotionPublisher(settings)
    with pytest.raises(ConfigInvalid, match="NOTION_DB_NAME"):  # no profile names one either
        NotionPublisher(settings, config=lambda: Config(students={
            "ben": {"student": "Ben", "colorPreset": "b1-default"}}))
    pub = NotionPublisher(settings, config=lambda: Config(students={
        "ben": {"student": "Ben", "dbName": "Lessons"}}))
    assert pub.settings_for("Ben")["target"] == {"databaseName": "Lessons"}
    with pytest.raises(ConfigInvalid, match=r"student 'Anna'.*dataSourceId, dbId or dbName"):
        pub.settings_for("Anna")
    assert not fake.requests  # all of it decided before a request


def _para(text: str, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "paragraph",
                             "paragraph": {"rich_text": [{"text": {"content": text}}]}}
    if children:
        block["paragraph"]["children"] = children
    return block


@pytest.mark.parametrize(("what", "children"), [
    ("101 children", [_para("x")] * 101),
    ("3 levels", [_para("a", [_para("b", [_para("c", [_para("d")])])])]),
    ("2,001 characters", [_para("x" * 2001)]),
    ("101 rich-text items", [{"type": "paragraph", "paragraph": {
        "rich_text": [{"text": {"content": "x"}}] * 101}}]),
    ("1,001 blocks", [_para("x", [_para("y")] * 9)] * 100 + [_para("z")]),
    ("over 500 KB", [{"type": "paragraph", "paragraph": {
        "rich_text": [{"text": {"content": "é" * 2000}}] * 100}}] * 2),
])
def test_the_fake_refuses_notions_limits_with_a_400_through_the_real_sdk(
        fake: FakeNotion, what: str, children: list[dict[str, Any]]) -> None:
    from notion_client import APIResponseError, Client

    sdk = Client(auth=fake.token, base_url=fake.base_url)
    page = sdk.pages.create(parent={"data_source_id": fake.data_source_id},
                            properties={"Name": {"title": [{"text": {"content": "P"}}]}})
    with pytest.raises(APIResponseError) as refused:
        sdk.blocks.children.append(page["id"], children=children)
    assert refused.value.status in (400, 413) and refused.value.code == "validation_error", what
    assert not fake.tree(page["id"]) and fake.blocks_created == 0  # nothing made
    fake.human_edit(sdk.blocks.children.append(page["id"], children=[_para("ok")])[
        "results"][0]["id"], "a teacher's words")  # then edits as a second, human user
    assert sdk.pages.retrieve(page["id"])["last_edited_by"]["id"] != \
        sdk.pages.retrieve(page["id"])["created_by"]["id"]
