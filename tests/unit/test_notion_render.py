"""The Notion renderer: the predecessor's conformance cases (notion.md §7, 1–15), its flaws
fixed, and Notion's limits met by construction. Pure: Markdown in, block data out."""

from __future__ import annotations

from typing import Any

from esl_build.lesson import parse_lesson
from esl_build.notion.render import Node, content_hash, render, study_text

FRONT = """---
title: x
student: y
level: A2
topic: t
input_type: generate
---
"""
PRESET = {"h2": "yellow_background", "h3": "purple_background",
          "toggleMap": {"h2": "yellow_background"}}


def blocks(body: str, preset: dict[str, Any] | None = None) -> tuple[Node, ...]:
    lesson, _ = parse_lesson(FRONT + body, path="x.md", lesson_id="x")
    assert lesson is not None
    return render(lesson, preset or {})


def text(n: Node) -> str:
    return "".join(item["text"]["content"] for item in n.payload.get("rich_text", []))


def test_toc_audio_and_video_embeds() -> None:  # cases 1, 2
    toc, = blocks(":::toc")
    assert toc.type == "table_of_contents"
    audio, video = blocks(":::audio https://example.com/audio.mp3\n"
                          ":::video https://youtube.com/watch?v=123")
    assert audio.payload["external"]["url"] == "https://example.com/audio.mp3"
    assert video.type == "video" and video.payload["external"]["url"].endswith("v=123")


def test_callout_takes_its_first_paragraph_as_text_and_its_emoji_alone() -> None:  # 3, W9
    callout, = blocks(":::callout 💡\nThis is a callout.\nIt has multiple lines.\n:::")
    assert callout.payload["icon"] == {"type": "emoji", "emoji": "💡"}
    assert text(callout) == "This is a callout."
    assert [text(c) for c in callout.children] == ["It has multiple lines."]


def test_column_list_indented_or_not() -> None:  # case 4
    for pad in ("", "    "):
        columns, = blocks(f":::column-list\n{pad}:::column\n{pad}Left\n{pad}:::\n"
                          f"{pad}:::column\n{pad}Right\n{pad}:::\n:::")
        assert columns.type == "column_list"
        assert [[text(p) for p in c.children] for c in columns.children] == [["Left"],
                                                                             ["Right"]]


def test_toggle_headings_and_study_text_label() -> None:  # cases 5, 7, W10
    h1, h2 = blocks(":::toggle-h1 Heading 1\nContent 1\n:::\n:::toggle-h2 Heading 2\n"
                    "Content 2\n:::")
    assert h1.type == "heading_1" and h1.payload["is_toggleable"] and text(h1) == "Heading 1"
    assert [text(c) for c in h1.children] == ["Content 1"] and h2.type == "heading_2"
    nodes = blocks("## 1. study text\n\n:::study-text Transcript\nA: Hello\n- bullet one\n:::")
    toggle = study_text(nodes)
    assert toggle is not None and text(toggle) == "Transcript"  # the label, not "study-text"
    assert {c.type for c in toggle.children} == {"paragraph", "bulleted_list_item"}


def test_synced_blocks_original_and_reference() -> None:  # case 6, W8
    original, = blocks(":::synced-block\nContent inside\n:::")
    assert original.payload["synced_from"] is None and text(original.children[0]) == \
        "Content inside"
    reference, after = blocks(":::synced-block block-id-123\nNext paragraph")
    assert reference.payload["synced_from"] == {"block_id": "block-id-123"}
    assert not reference.children and text(after) == "Next paragraph"


def test_legacy_toggle_basic_blocks_and_inline_marks() -> None:  # cases 8, 9, 10, 11
    toggle, = blocks(":::toggle-heading Answer Key\n1) Yes.\n:::")
    assert toggle.type == "toggle" and text(toggle) == "Answer Key"
    kinds = [n.type for n in blocks("## H2 Title\n### H3 Title\n- item\n* item2\n\nnot a list")]
    assert kinds == ["heading_2", "heading_3", "bulleted_list_item", "bulleted_list_item",
                     "paragraph"]
    para, = blocks("Paragraph with **bold** and *italic* text.")
    items = para.payload["rich_text"]
    assert [i["text"]["content"] for i in items if i["annotations"]["bold"]] == ["bold"]
    assert [i["text"]["content"] for i in items if i["annotations"]["italic"]] == ["italic"]
    code, = blocks("Use `Ctrl+E` for inline code.")
    marked = [i for i in code.payload["rich_text"] if i["annotations"]["code"]]
    assert marked[0]["text"]["content"] == "Ctrl+E" and marked[0]["annotations"]["color"] == "red"
    blanks = "They ____ at home and they ____ hungry. He work__ at home, but live__ in the city."
    para, = blocks(blanks)
    assert text(para) == blanks and not any(i["annotations"]["bold"]
                                            for i in para.payload["rich_text"])


def test_nested_lists_numbers_quotes_code_images_links_tables() -> None:  # 13, 14, 15, W5
    root, sibling = blocks("- root\n  - child\n    - grandchild\n- sibling")
    assert root.children[0].children[0].type == "bulleted_list_item" and text(sibling) == \
        "sibling"
    toggle, = blocks(":::toggle-heading Example\n### Inside\n- item one\n  - nested\n:::")
    assert [c.type for c in toggle.children] == ["heading_3", "bulleted_list_item"]
    assert toggle.children[1].children  # indentation kept inside a directive (W5 fixed)
    first, second = blocks("1. First item\n2. Second item\n   1. Nested item")
    assert text(second.children[0]) == "Nested item" and not first.children
    quote, = blocks("> This is a quote.")
    assert quote.type == "quote" and text(quote) == "This is a quote."
    image, = blocks("![Alt text](https://example.com/image.png)")
    assert image.payload["external"]["url"] == "https://example.com/image.png"
    link, = blocks("Click [here](https://example.com) for more.")
    assert len(link.payload["rich_text"]) == 3
    assert link.payload["rich_text"][1]["text"]["link"] == {"url": "https://example.com"}
    table, = blocks("| Header 1 | Header 2 |\n| --- | --- |\n| Cell 1 | b |\n| c | d |")
    assert table.payload["has_column_header"] and table.payload["table_width"] == 2
    assert len(table.children) == 3
    assert table.children[1].payload["cells"][0][0]["text"]["content"] == "Cell 1"


def test_heading_colours_are_applied_while_rendering_without_bleed() -> None:  # case 19, W12
    h2, toggle, toggle_h2 = blocks("## Section\n:::toggle-heading Toggle Title\n### Inner\n"
                                   "text\n:::\n:::toggle-h2 Answer Key\n### Inside\n:::", PRESET)
    assert h2.payload["color"] == "yellow_background"
    assert toggle.payload["rich_text"][0]["annotations"]["color"] == "yellow_background"
    assert toggle.children[0].payload["color"] == "purple_background"
    assert toggle_h2.payload["color"] == "default"  # no background over the whole toggle
    assert toggle_h2.payload["rich_text"][0]["annotations"]["color"] == "yellow_background"
    assert toggle_h2.children[0].payload["color"] == "purple_background"  # H3 inside: coloured


def test_text_over_2000_characters_is_split_and_arrays_stay_under_100_items() -> None:
    long, = blocks("x" * 4500)
    assert [len(i["text"]["content"]) for i in long.payload["rich_text"]] == [2000, 2000, 500]
    many = blocks(" ".join(f"**b{i}** n" for i in range(120)))
    assert len(many) == 3 and all(len(n.payload["rich_text"]) <= 100 for n in many)  # 240
    assert "".join(text(n) for n in many) == " ".join(f"b{i} n" for i in range(120))


def test_unknown_code_language_becomes_plain_text() -> None:
    lesson, _ = parse_lesson(FRONT + "x", path="x.md", lesson_id="x")
    assert lesson is not None
    from dataclasses import replace

    from esl_build.lesson.model import Block, Span
    code = Block("code", 1, (Span("a = 1"),), language="ts")
    weird = Block("code", 2, (Span("?"),), language="klingon")
    nodes = render(replace(lesson, blocks=(code, weird)), {})
    assert [n.payload["language"] for n in nodes] == ["typescript", "plain text"]


def test_hash_is_the_same_for_a_block_as_sent_and_as_notion_returns_it() -> None:
    para, = blocks("Some **bold** text " + "y" * 2100)
    returned = {"type": "paragraph", "id": "b1", "has_children": False, "paragraph": {
        "color": "default", "rich_text": [
            {**item, "plain_text": item["text"]["content"], "href": None,
             "annotations": {**item["annotations"], "underline": False}}
            for item in para.payload["rich_text"]]}}
    assert content_hash(returned) == para.hash
    returned["paragraph"]["rich_text"][0]["text"]["content"] = "Other "
    assert content_hash(returned) != para.hash
