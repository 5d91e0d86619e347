"""The HTML publisher renders every block, escapes text, links audio and writes the index."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from esl_build.errors import ConfigInvalid, PublishError
from esl_build.fingerprint import sha256_bytes
from esl_build.lesson.model import Block, Frontmatter, Lesson, Span
from esl_build.services.html import AUDIO_END, AUDIO_START, HtmlPublisher, IndexEntry
from esl_build.services.protocols import PageSpec

B1_DEFAULT = {"h2": "yellow_background", "h3": "purple_background",
              "toggleMap": {"h2": "yellow_background"}}


# -- building lessons by hand ----------------------------------------------------------------

def text(*spans: str | Span) -> tuple[Span, ...]:
    return tuple(Span(s) if isinstance(s, str) else s for s in spans)


def block(type_: str, words: str | None = None, **fields) -> Block:
    if words is not None:
        fields["text"] = text(words)
    return Block(type_, 1, **fields)  # type: ignore[arg-type]


def para(words: str) -> Block:
    return block("paragraph", words)


def lesson(*blocks: Block, lesson_id: str = "unit1", **frontmatter) -> Lesson:
    fm = {"title": "Rain & Shine", "student": "Priya", "level": "A1+", "topic": ("Rain", "Shine"),
          "input_type": "generate", **frontmatter}
    return Lesson(lesson_id, f"lessons/{lesson_id}.md", Frontmatter(**fm), tuple(blocks), None)


STUDY = block("study_text", label="Transcript", children=(para("Kofi: Hi, Hana!"),))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def publisher(project: Path) -> HtmlPublisher:
    return HtmlPublisher(project / "build" / "site", project)


def render(publisher: HtmlPublisher, *blocks: Block, preset: dict | None = None, **fm) -> str:
    return publisher.render(PageSpec(lesson(*blocks, **fm), "b1-default",
                                     B1_DEFAULT if preset is None else preset)).decode()


# -- reading HTML back as a tree -------------------------------------------------------------

VOID = {"meta", "img", "hr", "br", "input", "link", "source"}


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = ET.Element("root")
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        element = ET.SubElement(self.stack[-1], tag, {k: v or "" for k, v in attrs})
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag):
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data):
        node = self.stack[-1]
        if len(node):
            node[-1].tail = (node[-1].tail or "") + data
        else:
            node.text = (node.text or "") + data


def tree(html: str) -> ET.Element:
    """The page as an ElementTree (asserting that every tag is closed in order)."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    assert builder.stack == [builder.root], "unclosed tags"
    return builder.root


def words(element: ET.Element) -> str:
    return "".join(element.itertext()).strip()


def body(html: str) -> ET.Element:
    main = tree(html).find(".//main")
    assert main is not None
    return main


# -- rendering -------------------------------------------------------------------------------

def test_frontmatter_makes_the_title_header_and_cover(publisher):
    html = render(publisher, icon="🎯", cover="https://img.example/c.jpg")
    main = body(html)
    assert words(main.find("header/h1")) == "🎯Rain & Shine"
    assert main.find("header/h1/span").get("class") == "icon"
    assert words(main.find("header/p")) == "Priya · A1+ · Rain, Shine"
    assert main.find("img").get("src") == "https://img.example/c.jpg"
    assert tree(html).find(".//title").text == "Rain & Shine"


def test_no_cover_no_banner(publisher):
    assert body(render(publisher)).find(".//img") is None


def test_rich_text_annotations_and_links(publisher):
    spans = text(Span("bold", bold=True), Span("it", italic=True), Span("gone", strike=True),
                 Span("can", code=True), Span("site", link="https://e.com", bold=True))
    p = body(render(publisher, block("paragraph", text=spans))).find("p")
    assert p.find("strong").text == "bold"
    assert p.find("em").text == "it"
    assert p.find("s").text == "gone"
    assert p.find("code").text == "can"
    link = p.find("a")
    assert link.get("href") == "https://e.com" and link.find("strong").text == "site"


def test_text_is_escaped_and_script_links_dropped(publisher):
    html = render(publisher, para("<script>alert(1)</script>"),
                  block("paragraph", text=(Span("x", link="javascript:alert(1)"),)),
                  title="<b>Title</b>")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>Title</b>" not in html
    assert "javascript:" not in html


def test_headings_get_slugs_and_preset_classes(publisher):
    main = body(render(publisher, block("heading_1", "Intro"), block("heading_2", "1. Mission"),
                       block("heading_3", "Pattern A"), block("heading_2", "1. Mission")))
    assert [(h.get("id"), h.get("class")) for h in main.findall("h1")] == [("intro", None)]
    assert [(h.get("id"), h.get("class")) for h in main.findall("h2")] == [
        ("1-mission", "bg-yellow"), ("1-mission-2", "bg-yellow")]
    assert main.find("h3").get("class") == "bg-purple"


def test_no_preset_no_colour_classes(publisher):
    html = render(publisher, block("heading_2", "Mission"), preset={})
    assert body(html).find("h2").get("class") is None


def test_text_colours_and_unknown_colours(publisher):
    html = render(publisher, block("heading_2", "M"), preset={"h2": "purple"})
    assert body(html).find("h2").get("class") == "fg-purple"
    with pytest.raises(ConfigInvalid, match="violet"):
        render(publisher, block("heading_2", "M"), preset={"h2": "violet_background"})


def test_toggleable_heading_colours_only_its_summary(publisher):
    heading = block("heading_2", "Answer Key", toggleable=True, children=(para("a) can"),))
    details = body(render(publisher, heading)).find("details")
    assert details.get("class") == "toggle-heading" and details.get("open") is None
    assert details.find("summary/h2").get("class") == "bg-yellow"
    assert words(details.find("p")) == "a) can"


def test_toggles_in_an_h2_section_get_the_toggle_map_on_their_label(publisher):
    toggle = block("toggle", "Hint", children=(para("inside"),))
    main = body(render(publisher, block("heading_2", "Tasks"), toggle, para("x"), toggle,
                       block("heading_3", "Extra"), toggle))
    labels = [d.find("summary/span").get("class") for d in main.findall("details")]
    assert labels == ["bg-yellow", "bg-yellow", None]
    assert all(d.get("class") == "toggle" for d in main.findall("details"))


def test_nested_lists_nest_and_numbered_lists_count_from_one_as_in_notion(publisher):
    inner = block("bulleted_list_item", "inner", children=(block("bulleted_list_item", "deep"),))
    main = body(render(
        publisher,
        block("bulleted_list_item", "outer", children=(inner,)),
        block("bulleted_list_item", "second"),
        block("numbered_list_item", "three", number=3),
        block("numbered_list_item", "four", number=4),
        para("break"),
        block("numbered_list_item", "one", number=1)))
    ul = main.find("ul")
    assert [li.text.strip() for li in ul.findall("li")] == ["outer", "second"]
    assert main.find("ul/li/ul/li/ul/li").text == "deep"
    ols = main.findall("ol")
    assert [ol.get("start") for ol in ols] == [None, None]  # Notion's API has no start number
    assert [li.text for li in ols[0].findall("li")] == ["three", "four"]


def test_quote_code_table_image_divider(publisher):
    table = block("table", rows=((text("Verb"), text("Form")), (text("can"), text("go"))),
                  has_header=True)
    main = body(render(publisher, block("quote", "Remember"),
                       block("code", "if x < 1:", language="python"), table,
                       block("image", "A cat", url="https://e.com/cat.png"), block("divider")))
    assert words(main.find("blockquote")) == "Remember"
    code = main.find("pre/code")
    assert code.text == "if x < 1:" and code.get("class") == "language-python"
    assert [th.text for th in main.findall(".//thead/tr/th")] == ["Verb", "Form"]
    assert [td.text for td in main.findall(".//tbody/tr/td")] == ["can", "go"]
    img = main.find(".//figure/img")
    assert (img.get("src"), img.get("alt")) == ("https://e.com/cat.png", "A cat")
    assert words(main.find(".//figure/figcaption")) == "A cat"  # shown, as Notion does
    assert main.find("hr") is not None


def test_table_without_header_has_no_thead(publisher):
    table = block("table", rows=((text("a"), text("b")),))
    main = body(render(publisher, table))
    assert main.find(".//thead") is None and len(main.findall(".//tbody/tr")) == 1


def test_table_of_contents_links_every_heading(publisher):
    main = body(render(publisher, block("table_of_contents"), block("heading_2", "Mission"),
                       block("toggle", "T", children=(block("heading_3", "Inside"),))))
    links = [(a.get("href"), a.text) for a in main.findall("nav[@class='toc']//a")]
    assert links == [("#mission", "Mission"), ("#inside", "Inside")]


def test_embeds_do_not_use_iframes(publisher):
    main = body(render(publisher, block("audio", url="https://e.com/a.mp3"),
                       block("video", url="https://youtube.com/watch?v=1")))
    assert main.find(".//audio").get("src") == "https://e.com/a.mp3"
    assert main.find(".//iframe") is None
    assert main.find("p[@class='embed-video']/a").get("href") == "https://youtube.com/watch?v=1"


def test_callout_columns_synced_blocks(publisher):
    columns = block("column_list", children=(block("column", children=(para("left"),)),
                                             block("column", children=(para("right"),))))
    main = body(render(publisher, block("callout", icon="💡", children=(para("Goal"),)), columns,
                       block("synced_block", children=(para("shared"),)),
                       block("synced_block", source_id="abc-123")))
    callout = main.find("aside")
    assert callout.find("span").text == "💡" and words(callout.find("div")) == "Goal"
    assert [words(c) for c in main.findall("div[@class='columns']/div[@class='column']")] == [
        "left", "right"]
    assert words(main.find("div[@class='synced']")) == "shared"
    assert words(main.find("p[@class='synced-ref']")) == "synced from abc-123"


def test_study_text_is_open_and_follows_an_empty_audio_region(publisher):
    html = render(publisher, STUDY, block("study_text", children=(para("again"),)))
    assert f"{AUDIO_START}{AUDIO_END}\n<details open class=\"study-text\">" in html
    assert html.count(AUDIO_START) == 1  # one region per page, before the first study text
    summaries = [d.find("summary").text for d in body(html).findall("details")]
    assert summaries == ["Transcript", "Study text"]


def test_rendering_is_deterministic(publisher, project):
    blocks = (block("heading_2", "Mission"), STUDY, block("table_of_contents"))
    first, second = render(publisher, *blocks), render(publisher, *blocks)
    assert first == second
    assert str(project) not in first


# -- publish ---------------------------------------------------------------------------------

def test_publish_writes_nested_pages_and_returns_outputs(publisher, project):
    spec = PageSpec(lesson(STUDY, lesson_id="b1/unit1"))
    outputs = publisher.publish(spec, None)
    page = project / "build/site/b1/unit1.html"
    assert outputs == {"pageId": "html:b1/unit1", "url": "build/site/b1/unit1.html",
                       "sha256": sha256_bytes(page.read_bytes())}
    assert publisher.durable(outputs)
    assert body(page.read_text()).find("nav/a").get("href") == "../index.html"
    page.unlink()
    assert not publisher.durable(outputs)


def test_republish_updates_the_same_page_and_keeps_the_known_id(publisher, project):
    first = publisher.publish(PageSpec(lesson(para("v1"))), None)
    second = publisher.publish(PageSpec(lesson(para("v2"))), {**first, "pageId": "html:old"})
    assert second["url"] == first["url"] and second["pageId"] == "html:old"
    assert "v2" in (project / second["url"]).read_text()
    assert [p.name for p in (project / "build/site").iterdir()] == ["unit1.html"]  # no temp files


@pytest.mark.parametrize("lesson_id", ["../escape", "a//b", "index", "a\\b"])
def test_lesson_ids_that_cannot_be_pages_are_refused(publisher, lesson_id):
    with pytest.raises(PublishError, match="lesson id"):
        publisher.publish(PageSpec(lesson(lesson_id=lesson_id)), None)


def test_settings_hold_no_paths(publisher):
    assert set(publisher.settings) == {"templateVersion"}
    assert publisher.name == "html" and publisher.remote is False


# -- link_audio ------------------------------------------------------------------------------

def players(html: str) -> list[ET.Element]:
    return tree(html).findall(".//div[@id='esl-build-audio']")


MP3 = b"ID3 not really an mp3, but bytes to copy"


def mp3(project: Path, data: bytes = MP3):
    """A ``local_file`` for link_audio: writes the lesson's MP3 and returns its path."""
    def local_file() -> Path:
        path = project / "build" / "mp3" / f"{sha256_bytes(data)}.mp3"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path
    return local_file


def copy_of(data: bytes, lesson_id: str) -> str:
    return f"build/site/audio/{lesson_id}/{sha256_bytes(data)[:16]}.mp3"


def test_local_audio_is_copied_into_the_site_and_linked_relatively(publisher, project):
    page = publisher.publish(PageSpec(lesson(STUDY, lesson_id="b1/unit1")), None)
    outputs = publisher.link_audio(page, "build/bucket/audio/b1/unit1/x.mp3", None,
                                   local_file=mp3(project))
    html = (project / page["url"]).read_text()
    [player] = players(html)
    href = f"../audio/b1/unit1/{sha256_bytes(MP3)[:16]}.mp3"
    assert player.find("audio").get("src") == href
    assert player.find("audio").get("preload") == "none"
    assert player.find("a").get("href") == href
    assert (project / "build/site/b1" / href).read_bytes() == MP3
    assert html.index(AUDIO_END) < html.index('<details open class="study-text">')
    assert outputs == {"blockId": "esl-build-audio", "url": "build/bucket/audio/b1/unit1/x.mp3",
                       "src": copy_of(MP3, "b1/unit1"), "page": "build/site/b1/unit1.html",
                       "sha256": sha256_bytes(html.encode())}
    assert publisher.durable(outputs)
    assert publisher.watched(outputs) == (str(project / page["url"]),
                                          str(project / copy_of(MP3, "b1/unit1")))


def test_a_file_url_is_copied_too_and_relinking_writes_nothing(publisher, project):
    page = publisher.publish(PageSpec(lesson(STUDY)), None)
    url = (project.parent / "bucket" / "a.mp3").as_uri()
    first = publisher.link_audio(page, url, None, local_file=mp3(project))
    copy, html = project / first["src"], project / page["url"]
    stamps = copy.stat().st_mtime_ns, html.stat().st_mtime_ns
    assert publisher.link_audio(page, url, first, local_file=mp3(project)) == first
    assert (copy.stat().st_mtime_ns, html.stat().st_mtime_ns) == stamps


def test_new_audio_replaces_the_old_copy_and_a_remote_url_removes_it(publisher, project):
    page = publisher.publish(PageSpec(lesson(STUDY)), None)
    old = publisher.link_audio(page, "build/bucket/1.mp3", None, local_file=mp3(project))
    new = publisher.link_audio(page, "build/bucket/2.mp3", old, local_file=mp3(project, b"v2"))
    assert sorted(p.name for p in (project / "build/site/audio/unit1").iterdir()) == [
        Path(new["src"]).name]
    assert not publisher.durable(old) and publisher.durable(new)
    remote = publisher.link_audio(page, "https://cdn.example/a.mp3", new)
    assert list((project / "build/site/audio/unit1").iterdir()) == []
    assert remote["src"] == "https://cdn.example/a.mp3" and publisher.durable(remote)
    assert publisher.watched(remote) == (str(project / page["url"]),)


def test_one_lessons_copies_never_touch_a_nested_lessons(publisher, project):
    outer = publisher.publish(PageSpec(lesson(STUDY, lesson_id="b1")), None)
    inner = publisher.publish(PageSpec(lesson(STUDY, lesson_id="b1/unit1")), None)
    kept = publisher.link_audio(inner, "build/bucket/i.mp3", None, local_file=mp3(project))
    publisher.link_audio(outer, "build/bucket/o.mp3", None, local_file=mp3(project, b"o"))
    publisher.link_audio(outer, "build/bucket/o2.mp3", None, local_file=mp3(project, b"o2"))
    assert publisher.durable(kept)
    assert [p.name for p in (project / "build/site/audio/b1").glob("*.mp3")] == [
        Path(copy_of(b"o2", "b1")).name]


def test_a_deleted_copy_or_a_record_without_one_is_not_durable(publisher, project):
    page = publisher.publish(PageSpec(lesson(STUDY)), None)
    linked = publisher.link_audio(page, "build/bucket/a.mp3", None, local_file=mp3(project))
    (project / linked["src"]).unlink()
    assert not publisher.durable(linked)
    assert not publisher.durable({k: v for k, v in linked.items() if k != "src"})
    outside = {**linked, "src": "build/site/../bucket/a.mp3"}
    (project / "build/bucket").mkdir(parents=True)
    (project / "build/bucket/a.mp3").write_bytes(MP3)
    assert not publisher.durable(outside)


def test_local_audio_without_a_local_file_is_refused(publisher, project):
    page = publisher.publish(PageSpec(lesson(STUDY)), None)
    with pytest.raises(PublishError, match="copy into the site"):
        publisher.link_audio(page, "build/bucket/a.mp3", None)


def test_a_page_outside_the_site_gets_no_audio(publisher, project):
    (project / "elsewhere.html").write_text("<header></header>")
    with pytest.raises(PublishError, match="not a page of the site"):
        publisher.link_audio({"pageId": "html:x", "url": "elsewhere.html"},
                             "https://cdn.example/a.mp3", None)


def test_link_audio_is_idempotent_and_replaces_the_old_player(publisher, project):
    page = publisher.publish(PageSpec(lesson(STUDY)), None)
    first = publisher.link_audio(page, "https://cdn.example/a.mp3", None)
    again = publisher.link_audio(page, "https://cdn.example/a.mp3", first)
    assert again == first
    newer = publisher.link_audio(page, "https://cdn.example/b.mp3", again)
    html = (project / page["url"]).read_text()
    assert [p.find("audio").get("src") for p in players(html)] == ["https://cdn.example/b.mp3"]
    assert not publisher.durable(first) and publisher.durable(newer)


def test_republishing_keeps_the_linked_player(publisher, project):
    """Like a Notion page updated in place: new content, same audio block, so a content edit
    does not make add-audio run again."""
    spec = PageSpec(lesson(STUDY))
    page = publisher.publish(spec, None)
    linked = publisher.link_audio(page, "https://cdn.example/a.mp3", None)
    republished = publisher.publish(PageSpec(lesson(STUDY, para("More."))), page)
    html = (project / page["url"]).read_text()
    assert [p.find("audio").get("src") for p in players(html)] == ["https://cdn.example/a.mp3"]
    assert republished["pageId"] == page["pageId"]
    assert publisher.durable(linked)


def test_a_page_rendered_from_scratch_has_no_player(publisher, project):
    spec = PageSpec(lesson(STUDY))
    page = publisher.publish(spec, None)
    linked = publisher.link_audio(page, "https://cdn.example/a.mp3", None)
    (project / page["url"]).unlink()
    publisher.publish(spec, page)
    assert not players((project / page["url"]).read_text())
    assert not publisher.durable(linked)


def test_link_audio_without_study_text_goes_after_the_title(publisher, project):
    page = publisher.publish(PageSpec(lesson(para("no study text"))), None)
    publisher.link_audio(page, "https://cdn.example/a.mp3", None)
    publisher.link_audio(page, "https://cdn.example/b.mp3", None)
    html = (project / page["url"]).read_text()
    assert [p.find("audio").get("src") for p in players(html)] == ["https://cdn.example/b.mp3"]
    assert html.index("</header>") < html.index(AUDIO_START) < html.index("no study text")


def test_link_audio_to_a_missing_page_names_it(publisher):
    page = {"pageId": "html:b1/unit1", "url": "build/site/b1/unit1.html"}
    with pytest.raises(PublishError, match=r"build/site/b1/unit1\.html"):
        publisher.link_audio(page, "https://cdn.example/a.mp3", None)


def test_link_audio_refuses_script_urls(publisher):
    page = publisher.publish(PageSpec(lesson(STUDY)), None)
    with pytest.raises(PublishError, match="javascript"):
        publisher.link_audio(page, "javascript:alert(1)", None)


# -- index -----------------------------------------------------------------------------------

def entry(lesson_id: str, **fields) -> IndexEntry:
    values = {"id": lesson_id, "title": f"Lesson {lesson_id}", "student": "Priya", "level": "B1",
              "topic": "Can", "page_url": f"build/site/{lesson_id}.html", "audio_url": None,
              "stages": {}, **fields}
    return IndexEntry(**values)


def test_index_lists_lessons_by_id_with_statuses_and_audio(publisher, project):
    stages = {"validate": "done", "import": "done", "tts": "stale", "upload": "failed"}
    publisher.refresh_index([
        entry("b1/unit2", stages=stages, audio_url="build/site/audio/b1/unit2/0123.mp3"),
        entry("a2/unit1", page_url=None, title="<i>Draft</i>"),
    ])
    html = (project / "build/site/index.html").read_text()
    rows = tree(html).findall(".//tbody/tr")
    assert [row.find("td/code").text for row in rows] == ["a2/unit1", "b1/unit2"]
    assert rows[0].find("td").text == "<i>Draft</i>" and rows[0].find(".//audio") is None
    assert rows[1].find("td/a").get("href") == "b1/unit2.html"
    statuses = [td.text for td in rows[1].findall("td")[5:10]]
    assert statuses == ["✓", "✓", "stale", "failed", "–"]
    assert rows[1].find(".//audio").get("src") == "audio/b1/unit2/0123.mp3"


def test_index_is_deterministic_and_rejects_unknown_statuses(publisher, project):
    entries = [entry("u2"), entry("u1", stages={"tts": "done"})]
    publisher.refresh_index(entries)
    first = (project / "build/site/index.html").read_bytes()
    publisher.refresh_index(list(reversed(entries)))
    assert (project / "build/site/index.html").read_bytes() == first
    with pytest.raises(ValueError, match="maybe"):
        publisher.refresh_index([entry("u3", stages={"tts": "maybe"})])
