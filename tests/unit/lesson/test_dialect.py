"""The dialect: notion.md §7 cases 1–15 as Lesson-tree assertions, plus what the predecessor
got wrong (notion.md §6), each marked with the flaw it fixes."""

from __future__ import annotations

from lesson_helpers import blocks, text, tree

from esl_build.lesson.model import Span


def types(items) -> list[str]:
    return [block.type for block in items]


# -- notion.md §7, cases 1–15 ------------------------------------------------------------------


def test_case_1_toc_is_one_table_of_contents_block():
    assert types(blocks(":::toc")) == ["table_of_contents"]


def test_case_2_audio_and_video_embeds_keep_their_url():
    audio, video = blocks("""
        :::audio https://example.com/audio.mp3
        :::video https://youtube.com/watch?v=123
    """)
    assert (audio.type, audio.url) == ("audio", "https://example.com/audio.mp3")
    assert (video.type, video.url) == ("video", "https://youtube.com/watch?v=123")


def test_case_3_callout_has_its_icon_and_one_paragraph_per_line():
    (callout,) = blocks("""
        :::callout 💡
        This is a callout.
        It has multiple lines.
        :::
    """)
    assert callout.type == "callout" and callout.icon == "💡"
    assert [(b.type, text(b)) for b in callout.children] == [
        ("paragraph", "This is a callout."), ("paragraph", "It has multiple lines.")]


def test_case_4_column_list_with_or_without_indented_columns():
    flat = blocks("""
        :::column-list
        :::column
        Left
        :::
        :::column
        Right
        :::
        :::
    """)
    indented = blocks("""
        :::column-list
            :::column
            Left
            :::
            :::column
            Right
            :::
        :::
    """)
    for (column_list,) in (flat, indented):
        assert column_list.type == "column_list"
        assert types(column_list.children) == ["column", "column"]
        assert [text(c.children[0]) for c in column_list.children] == ["Left", "Right"]


def test_case_5_toggle_headings_are_toggleable_headings_with_children():
    h1, h2 = blocks("""
        :::toggle-h1 Heading 1
        Content 1
        :::
        :::toggle-h2 Heading 2
        Content 2
        :::
    """)
    assert (h1.type, h1.toggleable, text(h1)) == ("heading_1", True, "Heading 1")
    assert [text(b) for b in h1.children] == ["Content 1"]
    assert (h2.type, h2.toggleable, text(h2)) == ("heading_2", True, "Heading 2")


def test_case_6_synced_block_original_and_reference():
    original, reference = blocks("""
        :::synced-block
        Content inside
        :::
        :::synced-block block-id-123
    """)
    assert original.type == "synced_block" and original.source_id is None
    assert [text(b) for b in original.children] == ["Content inside"]
    assert (reference.source_id, reference.children) == ("block-id-123", ())


def test_case_7_study_text_is_a_block_with_its_paragraphs_and_bullets():
    document = tree("""
        ## 1. study text

        :::study-text
        A: Hello
        - bullet one
        :::
    """)
    heading, study = document.blocks
    assert heading.type == "heading_2"
    assert study.type == "study_text" and study.label is None
    assert types(study.children) == ["paragraph", "bulleted_list_item"]
    assert [line for line, _ in document.study_texts[0].lines] == [4, 5]


def test_case_8_legacy_toggle_keeps_its_label_and_1_paren_is_now_a_numbered_list():
    """Adjusted (fix W10): ``1) Yes.`` is a numbered item, not the paragraph "1) Yes."."""
    (toggle,) = blocks("""
        :::toggle-heading Answer Key
        1) Yes.
        :::
    """)
    assert (toggle.type, text(toggle)) == ("toggle", "Answer Key")
    (item,) = toggle.children
    assert (item.type, item.number, text(item)) == ("numbered_list_item", 1, "Yes.")


def test_case_9_basic_blocks():
    assert types(blocks("""
        ## H2 Title
        ### H3 Title
        - item
        * item2
        not a list
    """)) == ["heading_2", "heading_3", "bulleted_list_item", "bulleted_list_item", "paragraph"]


def test_case_10_inline_emphasis_code_and_strikethrough():
    (para,) = blocks("Paragraph with **bold** and *italic* text.")
    assert [s.text for s in para.text if s.bold] == ["bold"]
    assert [s.text for s in para.text if s.italic] == ["italic"]
    (code,) = blocks("Use `Ctrl+E` for inline code.")
    assert [s.text for s in code.text if s.code] == ["Ctrl+E"]
    (strike,) = blocks("Mark ~~this section~~ as optional.")
    assert [s.text for s in strike.text if s.strike] == ["this section"]


def test_case_11_underscore_blanks_stay_literal():
    source = ("They ____ at home and they ____ hungry. He work__ at home, but live__ in the "
              "city center.")
    (para,) = blocks(source)
    assert text(para) == source
    assert not any(span.bold or span.italic for span in para.text)


def test_case_12_frontmatter_is_not_part_of_the_body(tmp_path):
    from lesson_helpers import parse

    lesson, _ = parse("---\ntitle: Lesson\nlevel: B1\n---\n\n## Overview\nContent line.\n")
    assert lesson.blocks[0].type == "heading_2" and text(lesson.blocks[0]) == "Overview"
    assert all("title: Lesson" not in text(b) for b in lesson.blocks)


def test_case_13_nested_bullets_continuations_and_lists_inside_a_toggle():
    root, sibling = blocks("""
        - root
          - child
            - grandchild
        - sibling
    """)
    assert text(root.children[0]) == "child"
    assert text(root.children[0].children[0]) == "grandchild"
    assert sibling.type == "bulleted_list_item" and text(sibling) == "sibling"
    (parent,) = blocks("""
        * Parent bullet
            extra details line
            * Nested bullet
    """)
    assert types(parent.children) == ["paragraph", "bulleted_list_item"]
    (toggle,) = blocks("""
        :::toggle-heading Example Toggle
        ### Inside Heading
        - item one
        - item two
        :::
    """)
    assert types(toggle.children) == ["heading_3", "bulleted_list_item", "bulleted_list_item"]


def test_case_14_numbered_lists_quote_and_code():
    first, second = blocks("""
        1. First item
        2. Second item
           1. Nested item
    """)
    assert (text(first), text(second)) == ("First item", "Second item")
    assert [(b.type, text(b)) for b in second.children] == [("numbered_list_item", "Nested item")]
    (quote,) = blocks("> This is a quote.")
    assert (quote.type, text(quote)) == ("quote", "This is a quote.")
    (code,) = blocks("""
        ```typescript
        const x = 1;
        ```
    """)
    assert (code.type, code.language, text(code)) == ("code", "typescript", "const x = 1;")


def test_case_15_image_link_and_tables():
    (image,) = blocks("![Alt text](https://example.com/image.png)")
    assert (image.type, image.url, text(image)) == ("image", "https://example.com/image.png",
                                                    "Alt text")
    (para,) = blocks("Click [here](https://example.com) for more.")
    assert len(para.text) == 3 and para.text[1] == Span("here", link="https://example.com")
    (table,) = blocks("""
        | Header 1 | Header 2 |
        | --- | --- |
        | Cell 1 | Cell 2 |
        | Cell 3 | Cell 4 |
    """)
    assert table.has_header and len(table.rows) == 3 and len(table.rows[0]) == 2
    assert [s.text for s in table.rows[0][0]] == ["Header 1"]
    assert [s.text for s in table.rows[1][0]] == ["Cell 1"]
    (plain,) = blocks("""
        | a | b |
        | c | d |
    """)
    assert not plain.has_header and len(plain.rows) == 2


# -- fixes of the predecessor's flaws (notion.md §6) --------------------------------------------


def test_lists_inside_directives_stay_nested_fix_w5():
    (callout,) = blocks("""
        :::callout 🗣️
        * **Action:** Shadow these lines.
            1. "She **wants to** run away."
            2. "He **wants to** drink coffee."
        * **Deliverable:** Record them.
        :::
    """)
    action, deliverable = callout.children
    assert types(action.children) == ["numbered_list_item", "numbered_list_item"]
    assert text(deliverable) == "Deliverable: Record them."


def test_lists_nested_four_deep():
    (top,) = blocks("""
        - one
          - two
            - three
              - four
    """)
    assert text(top.children[0].children[0].children[0]) == "four"


def test_a_list_item_keeps_children_after_a_blank_line():
    (item,) = blocks("""
        - item

          more about it
    """)
    assert [text(b) for b in item.children] == ["more about it"]


def test_callout_inside_column_and_column_list_inside_toggle_fix_w8():
    (toggle,) = blocks("""
        :::toggle-h2 Answer Key
        :::column-list
        :::column
        :::callout 💡
        Tip inside a column
        :::
        after the callout
        :::
        :::column
        Right
        :::
        :::
        :::
    """)
    (column_list,) = toggle.children
    left, _ = column_list.children
    assert types(left.children) == ["callout", "paragraph"]
    assert text(left.children[1]) == "after the callout"


def test_directives_nest_in_directives():
    (outer,) = blocks("""
        :::toggle-heading Outer
        :::toggle-heading Inner
        :::callout 💡
        deep
        :::
        :::
        :::
    """)
    assert outer.children[0].children[0].type == "callout"


def test_callout_text_after_the_icon_is_its_first_paragraph_fix_w9():
    (callout,) = blocks("""
        :::callout 💡 Tip
        More.
        :::
    """)
    assert callout.icon == "💡"
    assert [text(b) for b in callout.children] == ["Tip", "More."]


def test_callout_icon_keeps_emoji_modifiers():
    (callout,) = blocks(":::callout 👨‍🏫 Hi\n:::")
    assert callout.icon == "👨‍🏫"


def test_divider_heading_4_and_study_text_label_fix_w10():
    divider, heading = blocks("""
        ---
        #### Small heading
    """)
    assert divider.type == "divider"
    assert (heading.type, text(heading)) == ("heading_3", "Small heading")
    (study,) = blocks(":::study-text Transcript\nA: hi\n:::")
    assert study.label == "Transcript"


def test_multi_line_quote_is_one_block_and_alerts_become_callouts_fix_w10():
    (quote,) = blocks("""
        > line one
        > line two
    """)
    assert text(quote) == "line one\nline two"
    (alert,) = blocks("""
        > [!IMPORTANT]
        > **Remember:** never say it.
    """)
    assert (alert.type, alert.icon) == ("callout", "❗")
    assert text(alert.children[0]) == "Remember: never say it."


def test_html_comments_are_dropped_fix_w10():
    from lesson_helpers import make_lesson, parse

    source = make_lesson(study="<!-- a note -->\n[Alex]: Hi! <!-- inline -->\n<!--\nmulti\n-->"
                               "\n[Mara]: Hello!")
    lesson, problems = parse(source)
    assert problems == []
    assert [s.text for s in lesson.study_text.segments] == ["Hi!", "Hello!"]
    assert all("note" not in text(b) for b in lesson.blocks[0:12])


def test_speaker_lines_are_not_link_reference_definitions():
    (para,) = blocks("[Alex]: Hi!")
    assert text(para) == "[Alex]: Hi!"


def test_code_fences_inside_an_unfenced_lesson_and_tilde_fences():
    code, para = blocks("""
        ~~~
        :::callout not a directive
        ~~~
        after
    """)
    assert code.type == "code" and text(code) == ":::callout not a directive"
    assert text(para) == "after"


def test_table_cells_may_hold_an_escaped_pipe():
    (table,) = blocks(r"""
        | a \| b | c |
        | d | e |
    """)
    assert [s.text for s in table.rows[0][0]] == ["a | b"]


def test_every_block_keeps_its_line():
    document = tree("""
        # Title

        :::callout 💡
        - item
          - child
        :::
    """)
    title, callout = document.blocks
    item = callout.children[0]
    assert (title.line, callout.line, item.line, item.children[0].line) == (1, 3, 4, 5)


def test_one_emoji_may_be_several_code_points():
    from esl_build.lesson.emoji import is_single_emoji

    assert all(map(is_single_emoji, ["💡", "⚠️", "👨‍🏫", "🇬🇧", "👍🏽", "1️⃣"]))
    assert not any(map(is_single_emoji, ["", "1", "Я", "💡 Tip", "💡💡", "Tip"]))
