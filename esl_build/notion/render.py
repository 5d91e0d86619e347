"""Lesson + colour preset → Notion blocks, as data (pure: no client, no network).

``render(lesson, preset)`` returns a tree of ``Node``: each holds one block's JSON *without*
its children (``payload``), its children as nodes, the source line, and ``hash``, the
fingerprint of the block's own content in the normalised form ``content_hash`` also computes
from a block *read back* from Notion, so "is this block as we published it?" is one compare.

Limits met by construction here: text over 2,000 characters is split into several rich-text
items; a rich-text array never holds more than 100 items (a paragraph, quote or list item
that would continues in a second block of the same type; elsewhere the tail loses its
annotations); a code block's language is one Notion knows (else "plain text"); a column list
always has its columns. Request-level limits (100 children, 2 levels, 1,000 blocks, 500 KB)
are met when the tree is sent (``esl_build.notion.requests``).

Colours are applied as the blocks are made (the html publisher renders these same blocks, so
the site shows what Notion shows): ``h2``/``h3`` colour headings (on the block, or on the
text of a toggleable heading, so a background never bleeds into its body), ``toggleMap.h2``
colours the label of a toggle in an H2 section.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from esl_build.fingerprint import fingerprint
from esl_build.lesson.model import Block, Lesson, RichText, Span

MAX_TEXT = 2000
MAX_ITEMS = 100
CONTINUABLE = ("paragraph", "quote", "bulleted_list_item", "numbered_list_item")
LANGUAGES = frozenset({
    "abap", "arduino", "bash", "basic", "c", "clojure", "coffeescript", "c++", "c#", "css",
    "dart", "diff", "docker", "elixir", "elm", "erlang", "flow", "fortran", "f#", "gherkin",
    "glsl", "go", "graphql", "groovy", "haskell", "html", "java", "javascript", "json", "julia",
    "kotlin", "latex", "less", "lisp", "livescript", "lua", "makefile", "markdown", "markup",
    "matlab", "mermaid", "nix", "objective-c", "ocaml", "pascal", "perl", "php", "plain text",
    "powershell", "prolog", "protobuf", "python", "r", "reason", "ruby", "rust", "sass",
    "scala", "scheme", "scss", "shell", "sql", "swift", "typescript", "vb.net", "verilog",
    "vhdl", "visual basic", "xml", "yaml", "java/c/c++/c#"})
"""The code-block languages Notion accepts."""
_ALIASES = {"ts": "typescript", "js": "javascript", "py": "python", "sh": "shell", "md": "markdown",
            "yml": "yaml", "text": "plain text", "txt": "plain text", "cpp": "c++", "csharp": "c#"}
STUDY_TEXT_ROLE = "study_text"
CODE_COLOUR = "red"  # inline code, as Notion's app shows it
RENDER_VERSION = 1
"""Bump when the same lesson renders to different blocks (it is in the import fingerprint)."""


@dataclass(frozen=True)
class Node:
    """One block to publish: its own JSON (no children), its children, where it came from."""

    type: str
    payload: dict[str, Any]
    children: tuple[Node, ...] = ()
    line: int = 0
    role: str = ""  # "study_text" for the toggle add-audio puts the player in
    hash: str = field(default="", compare=False)

    def block(self) -> dict[str, Any]:
        """The block JSON without children (what an append sends for a childless block)."""
        return {"object": "block", "type": self.type, self.type: dict(self.payload)}

    def count(self) -> int:
        """This block and every block under it."""
        return 1 + sum(child.count() for child in self.children)


def node(type_: str, payload: dict[str, Any], children: Sequence[Node] = (), *, line: int = 0,
         role: str = "") -> Node:
    """A node with its content hash set."""
    return Node(type_, payload, tuple(children), line, role,
                content_hash({"type": type_, type_: payload}))


# -- hashing ------------------------------------------------------------------------------
def _norm_rich(items: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    """Rich text as comparable data: adjacent items with equal annotations merged."""
    out: list[list[Any]] = []
    for item in items:
        text = item.get("text") or {}
        ann = item.get("annotations") or {}
        link = (text.get("link") or {}).get("url")
        key = [bool(ann.get("bold")), bool(ann.get("italic")), bool(ann.get("strikethrough")),
               bool(ann.get("underline")), bool(ann.get("code")), ann.get("color") or "default",
               link]
        content = text.get("content", item.get("plain_text", ""))
        if out and out[-1][1:] == key:
            out[-1][0] += content
        elif content:
            out.append([content, *key])
    return out


def content_hash(block: Mapping[str, Any]) -> str:
    """A fingerprint of a block's own content (children left out), the same for a block we
    are about to send and for that block as Notion returns it (extra keys ignored)."""
    kind = str(block.get("type"))
    data = block.get(kind) or {}
    canon: dict[str, Any] = {"type": kind}
    for key in ("rich_text", "caption"):
        if data.get(key):
            canon[key] = _norm_rich(data[key])
    if "cells" in data:
        canon["cells"] = [_norm_rich(cell) for cell in data["cells"]]
    for key in ("color", "is_toggleable", "language", "table_width", "has_column_header",
                "has_row_header", "checked"):
        if key in data and data[key] not in (None, "default", False):
            canon[key] = data[key]
    icon = data.get("icon") or {}
    if icon.get("emoji"):
        canon["icon"] = icon["emoji"]
    external = data.get("external") or {}
    if external.get("url"):
        canon["url"] = external["url"]
    synced = data.get("synced_from") or {}
    if synced.get("block_id"):
        canon["synced_from"] = synced["block_id"]
    return fingerprint(canon)[7:23]  # 64 bits: unique enough among one page's blocks


# -- rich text ----------------------------------------------------------------------------
def _item(text: str, span: Span, colour: str) -> dict[str, Any]:
    return {"type": "text",
            "text": {"content": text, "link": {"url": span.link} if span.link else None},
            "annotations": {"bold": span.bold and not span.code,
                            "italic": span.italic and not span.code,
                            "strikethrough": span.strike and not span.code, "underline": False,
                            "code": span.code,
                            "color": CODE_COLOUR if span.code else colour}}


def rich_items(rich: RichText, colour: str = "default") -> list[dict[str, Any]]:
    """Rich text → items of at most 2,000 characters (any number of them)."""
    items: list[dict[str, Any]] = []
    for span in rich:
        for start in range(0, len(span.text), MAX_TEXT):
            items.append(_item(span.text[start:start + MAX_TEXT], span, colour))
    return items


def _plain_items(text: str) -> list[dict[str, Any]]:
    return [_item(text[i:i + MAX_TEXT], Span(""), "default")
            for i in range(0, len(text), MAX_TEXT)][:MAX_ITEMS]


def fit(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most 100 items: the tail beyond 99 is joined as plain text (annotations lost)."""
    if len(items) <= MAX_ITEMS:
        return items
    tail = "".join(item["text"]["content"] for item in items[MAX_ITEMS - 1:])
    return items[:MAX_ITEMS - 1] + _plain_items(tail)[:1]


def text_field(rich: RichText, colour: str = "default") -> list[dict[str, Any]]:
    return fit(rich_items(rich, colour))


# -- blocks -------------------------------------------------------------------------------
@dataclass
class _Section:
    preset: Mapping[str, Any]
    in_h2: bool = False


def render(lesson: Lesson, preset: Mapping[str, Any]) -> tuple[Node, ...]:
    """The page body of ``lesson`` as Notion block nodes, coloured by ``preset``."""
    return _render_all(lesson.blocks, preset)


def _render_all(blocks: Sequence[Block], preset: Mapping[str, Any]) -> tuple[Node, ...]:
    out: list[Node] = []
    section = _Section(preset)
    for block in blocks:
        if block.type.startswith("heading_"):
            section.in_h2 = block.type == "heading_2"
        out += _render(block, section)
    return tuple(out)


def _continued(kind: str, items: list[dict[str, Any]], extra: dict[str, Any],
               children: tuple[Node, ...], line: int) -> list[Node]:
    """A text block, split into several blocks of the same type past 100 rich-text items."""
    chunks = [items[i:i + MAX_ITEMS] for i in range(0, len(items), MAX_ITEMS)] or [[]]
    nodes = [node(kind, {"rich_text": chunk, **extra}, line=line) for chunk in chunks]
    last = nodes[-1]
    nodes[-1] = node(kind, last.payload, children, line=line)
    return nodes


def _render(block: Block, section: _Section) -> list[Node]:
    kind, line, preset = block.type, block.line, section.preset
    children = _render_all(block.children, preset)
    if kind in CONTINUABLE:
        return _continued(kind, rich_items(block.text), {"color": "default"}, children, line)
    if kind.startswith("heading_"):
        colour = (preset.get(f"h{kind[-1]}") or "default") if kind != "heading_1" else "default"
        if block.toggleable:  # colour the title text, not the block: no bleed into the body
            payload = {"rich_text": text_field(block.text, colour), "is_toggleable": True,
                       "color": "default"}
        else:
            payload = {"rich_text": text_field(block.text), "is_toggleable": False,
                       "color": colour}
        return [node(kind, payload, children, line=line)]
    if kind == "toggle":
        colour = ((preset.get("toggleMap") or {}).get("h2") or "default") if section.in_h2 \
            else "default"
        return [node("toggle", {"rich_text": text_field(block.text, colour),
                                "color": "default"}, children, line=line)]
    if kind == "study_text":
        label = block.label or "Study text"
        return [node("toggle", {"rich_text": _plain_items(label), "color": "default"},
                     children, line=line, role=STUDY_TEXT_ROLE)]
    if kind == "callout":
        first, rest = (children[0], children[1:]) if children and \
            children[0].type == "paragraph" else (None, children)
        text = first.payload["rich_text"] if first else [_item(" ", Span(" "), "default")]
        payload = {"rich_text": text, "icon": {"type": "emoji", "emoji": block.icon or "💡"},
                   "color": "default"}
        return [node("callout", payload, rest, line=line)]
    if kind == "code":
        language = (block.language or "plain text").lower()
        language = _ALIASES.get(language, language)
        return [node("code", {"rich_text": _plain_items(plain(block.text)),
                              "language": language if language in LANGUAGES else "plain text"},
                     line=line)]
    if kind == "table":
        width = max((len(row) for row in block.rows), default=1)
        rows = [node("table_row", {"cells": [text_field(cell) for cell in
                                             (*row, *((),) * (width - len(row)))]}, line=line)
                for row in block.rows]
        return [node("table", {"table_width": width, "has_column_header": block.has_header,
                               "has_row_header": False}, rows, line=line)]
    if kind in ("image", "audio", "video"):
        media: dict[str, Any] = {"type": "external", "external": {"url": block.url or ""}}
        if kind == "image" and block.text:
            media["caption"] = text_field(block.text)
        return [node(kind, media, line=line)]
    if kind in ("divider", "table_of_contents"):
        return [node(kind, {} if kind == "divider" else {"color": "default"}, line=line)]
    if kind == "column_list":
        return [node("column_list", {}, children, line=line)]
    if kind == "column":
        return [node("column", {}, children, line=line)]
    if kind == "synced_block":
        if block.source_id:
            return [node("synced_block", {"synced_from": {"block_id": block.source_id}},
                         line=line)]
        return [node("synced_block", {"synced_from": None}, children, line=line)]
    raise ValueError(f"no Notion block for {kind!r}")  # the model's types are all above


def plain(rich: RichText) -> str:
    return "".join(span.text for span in rich)


def study_text(nodes: Iterable[Node]) -> Node | None:
    """The study-text toggle of a rendered page (the first, searched depth first)."""
    for item in nodes:
        if item.role == STUDY_TEXT_ROLE:
            return item
        found = study_text(item.children)
        if found:
            return found
    return None
