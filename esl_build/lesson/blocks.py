"""Body lines → the ``Block`` tree. A hand-written, line-based, container-aware parser.

Not CommonMark, on purpose: ``[Name]: text`` must stay a speaker line (CommonMark reads it as a
link reference definition) and ``_`` is never emphasis. Each non-blank line of prose is one
paragraph, as in the predecessor, so every block keeps the exact line it came from.

Containers are directive bodies (``:::name args`` … ``:::``) and list items. A container's lines
are dedented by their common indentation before they are parsed again, so relative indentation
(nested lists) survives inside directives. A directive indented under a list item, at the item's
content column, belongs to that item. Directives are matched with a stack in one pass per
container; nesting deeper than ``MAX_DEPTH`` is an error, never a ``RecursionError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from esl_build.errors import Problem
from esl_build.lesson.emoji import first_grapheme, is_single_emoji
from esl_build.lesson.envelope import Line
from esl_build.lesson.inline import parse_inline
from esl_build.lesson.model import Block, BlockType, RichText, Span

MAX_DEPTH = 20
SELF_CLOSING = frozenset({"toc", "audio", "video"})
CONTAINERS = frozenset({"callout", "column-list", "column", "study-text", "toggle-heading",
                        "toggle-h1", "toggle-h2", "toggle-h3", "synced-block"})
KNOWN = SELF_CLOSING | CONTAINERS

_DIRECTIVE = re.compile(r"^:::([A-Za-z][\w-]*)(?:[ \t]+(.*?))?[ \t]*$")
_LIST_ITEM = re.compile(r"^([-*+]|(\d{1,9})[.)])(?:[ \t]+|$)")
_HEADING = re.compile(r"^(#{1,6})(?:[ \t]+|$)(.*?)(?:[ \t]+#+)?[ \t]*$")
_DIVIDER = re.compile(r"^(?:-[ \t]*){3,}$|^(?:\*[ \t]*){3,}$")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?\s*\)$")
_FENCE = re.compile(r"^(`{3,}|~{3,})[ \t]*([^`\s]*)")
_TABLE_SEPARATOR = re.compile(r"^:?-+:?$")
_URL = re.compile(r"^https?://\S+$")
_SECTION_START = re.compile(r"^#{1,2}[ \t]")
_ALERTS = {"note": "ℹ️", "tip": "💡", "important": "❗", "warning": "⚠️", "caution": "🛑"}


@dataclass(slots=True)
class StudyTextSource:
    """Where a ``:::study-text`` block came from: its opener and raw (dedented) body lines."""

    line: int
    label: str | None
    lines: list[Line]


@dataclass(slots=True)
class Document:
    """The parser's result: blocks, the study-text sources found, and the problems."""

    blocks: tuple[Block, ...]
    study_texts: list[StudyTextSource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def parse_blocks(lines: list[Line], path: str) -> Document:
    """Parse body lines (numbered as in the original file) into the block tree."""
    parser = _Parser(path)
    prepared = [(no, text.expandtabs(4) if "\t" in text else text) for no, text in lines]
    blocks = parser.container(prepared, depth=0, parent=None)
    return Document(tuple(blocks), parser.study_texts, parser.problems)


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _dedent(lines: list[Line], by: int | None = None) -> list[Line]:
    if by is None:
        indents = [_indent(text) for _, text in lines if text.strip()]
        by = min(indents) if indents else 0
    if by == 0:
        return lines
    return [(no, text[min(by, _indent(text)):]) for no, text in lines]


def _directive(text: str) -> tuple[str, str] | None:
    """``:::name args`` → (name lower-cased, args); None for anything else."""
    if not text.startswith(":::"):
        return None
    match = _DIRECTIVE.match(text)
    if match is None:
        return None
    return match.group(1).lower(), (match.group(2) or "").strip()


def _is_closer(text: str) -> bool:
    return text == ":::"


def _opens_container(name: str, args: str) -> bool:
    """Whether this directive line waits for a closing ``:::``."""
    if name in SELF_CLOSING:
        return False
    return not (name == "synced-block" and args)  # a reference is self-closing


class _Parser:
    def __init__(self, path: str):
        self.path = path
        self.problems: list[Problem] = []
        self.study_texts: list[StudyTextSource] = []
        self.references: list[int] = []  # lines of :::synced-block ID, for a hint

    def error(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, "error", message))

    def warning(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, "warning", message))

    # -- directive matching ---------------------------------------------------------------

    def _match_directives(self, lines: list[Line]) -> tuple[dict[int, int], set[int]]:
        """One pass: opener index → closer index; and the indices of ``:::`` closing nothing.

        Lines inside fenced code are skipped. Unclosed openers are simply absent from the map.
        """
        closers: dict[int, int] = {}
        stray: set[int] = set()
        stack: list[int] = []
        fence: str | None = None
        for k, (_, raw) in enumerate(lines):
            text = raw.strip()
            if fence is not None:
                if text.startswith(fence) and not text.strip(fence[0]):
                    fence = None
                continue
            if text.startswith(("```", "~~~")):
                match = _FENCE.match(text)
                if match:
                    fence = match.group(1)
                continue
            if not text.startswith(":::"):
                continue
            if _is_closer(text):
                if stack:
                    closers[stack.pop()] = k
                else:
                    stray.add(k)
                continue
            directive = _directive(text)
            if directive is not None and _opens_container(*directive):
                stack.append(k)
        return closers, stray

    # -- containers ---------------------------------------------------------------------------

    def container(self, lines: list[Line], *, depth: int, parent: str | None) -> list[Block]:
        """Parse the (dedented) lines of one container into blocks."""
        if depth > MAX_DEPTH:
            first = next((no for no, text in lines if text.strip()), lines[0][0] if lines else 1)
            self.error(first, f"content is nested more than {MAX_DEPTH} levels deep; "
                       "flatten the lists or directives around this line")
            return []
        closers, stray = self._match_directives(lines)
        blocks: list[Block] = []
        i, n = 0, len(lines)
        while i < n:
            no, raw = lines[i]
            text = raw.strip()
            if not text:
                i += 1
                continue
            indent = _indent(raw)
            if text.startswith(":::"):
                i = self._directive_at(lines, i, closers, stray, blocks, depth, parent)
                continue
            if text.startswith(("```", "~~~")) and _FENCE.match(text):
                i = self._code(lines, i, blocks)
                continue
            item = _LIST_ITEM.match(text)
            if item is not None and not _DIVIDER.match(text):
                i = self._list_item(lines, i, item, closers, blocks, depth, parent)
                continue
            if text.startswith("|"):
                i = self._table(lines, i, blocks)
                continue
            if text.startswith(">") and indent < 4:
                i = self._quote(lines, i, blocks)
                continue
            i += 1
            blocks.append(self._leaf(no, text, indent))
        return blocks

    def _leaf(self, no: int, text: str, indent: int) -> Block:
        """A one-line block: heading, divider, image or paragraph."""
        if indent == 0 and text.startswith("#"):
            heading = _HEADING.match(text)
            if heading is not None:
                level = min(len(heading.group(1)), 3)  # Notion has three heading levels
                kind: BlockType = f"heading_{level}"  # type: ignore[assignment]
                return Block(kind, no, text=parse_inline(heading.group(2)))
        if _DIVIDER.match(text):
            return Block("divider", no)
        image = _IMAGE.match(text)
        if image is not None:
            return Block("image", no, url=image.group(2), text=parse_inline(image.group(1)))
        return Block("paragraph", no, text=parse_inline(text))

    # -- lists --------------------------------------------------------------------------------

    def _list_item(self, lines: list[Line], i: int, item: re.Match[str], closers: dict[int, int],
                   blocks: list[Block], depth: int, parent: str | None) -> int:
        no, raw = lines[i]
        marker_indent = _indent(raw)
        content = raw.strip()[item.end():]
        j = i + 1
        n = len(lines)
        end = j  # one past the last line that belongs to the item
        own_indents: list[int] = []
        while j < n:
            text = lines[j][1]
            if not text.strip():
                j += 1
                continue
            indent = _indent(text)
            if indent <= marker_indent:
                break
            own_indents.append(indent)
            closer = closers.get(j)
            # A directive under the item runs to its closer, however that closer is indented.
            j = closer + 1 if closer is not None else j + 1
            end = j
        body = lines[i + 1:end]
        children: list[Block] = []
        if body:
            children = self.container(_dedent(body, min(own_indents)), depth=depth + 1,
                                      parent=parent)
        number = item.group(2)
        if number is not None:
            blocks.append(Block("numbered_list_item", no, text=parse_inline(content.strip()),
                                children=tuple(children), number=int(number)))
        else:
            blocks.append(Block("bulleted_list_item", no, text=parse_inline(content.strip()),
                                children=tuple(children)))
        return end

    # -- code, tables, quotes -----------------------------------------------------------------

    def _code(self, lines: list[Line], i: int, blocks: list[Block]) -> int:
        no, raw = lines[i]
        match = _FENCE.match(raw.strip())
        assert match is not None
        fence, language = match.group(1), match.group(2)
        indent = _indent(raw)
        for k in range(i + 1, len(lines)):
            text = lines[k][1].strip()
            if text.startswith(fence) and not text.strip(fence[0]):
                body = "\n".join(text[min(indent, _indent(text)):] for _, text in lines[i + 1:k])
                blocks.append(Block("code", no, text=_plain(body), language=language or None))
                return k + 1
        self.error(no, f"the code block opened with {fence} is never closed; add a line with "
                   f"{fence} after its last line")
        body = "\n".join(text for _, text in lines[i + 1:])
        blocks.append(Block("code", no, text=_plain(body), language=language or None))
        return len(lines)

    def _table(self, lines: list[Line], i: int, blocks: list[Block]) -> int:
        start = i
        rows: list[tuple[int, list[str]]] = []
        while i < len(lines) and lines[i][1].strip().startswith("|"):
            rows.append((lines[i][0], _cells(lines[i][1].strip())))
            i += 1
        has_header = len(rows) >= 2 and all(_TABLE_SEPARATOR.match(c.strip()) for c in rows[1][1])
        width = len(rows[0][1])
        no = lines[start][0]
        for row_no, cells in rows[1:]:
            if len(cells) != width:
                self.error(row_no, f"this table row has {_cells_n(len(cells))} but the table's "
                           f"first row has {width}; add or remove `|` cells so every row has "
                           f"{_cells_n(width)}")
        if has_header:
            rows = [rows[0], *rows[2:]]
            if len(rows) == 1:
                self.error(no, "this table has a header but no data rows; add a row below the "
                           "| --- | line or remove the separator")
        blocks.append(Block("table", no, has_header=has_header,
                            rows=tuple(tuple(parse_inline(c.strip()) for c in cells)
                                       for _, cells in rows)))
        return i

    def _quote(self, lines: list[Line], i: int, blocks: list[Block]) -> int:
        no = lines[i][0]
        parts: list[tuple[int, str]] = []
        while i < len(lines):
            text = lines[i][1].strip()
            if not text.startswith(">") or _indent(lines[i][1]) >= 4:
                break
            text = text[1:]
            parts.append((lines[i][0], text[1:] if text.startswith(" ") else text))
            i += 1
        alert = re.match(r"^\[!(\w+)\]\s*$", parts[0][1].strip())
        if alert is not None and alert.group(1).lower() in _ALERTS:
            children = tuple(Block("paragraph", line, text=parse_inline(text.strip()))
                             for line, text in parts[1:] if text.strip())
            blocks.append(Block("callout", no, icon=_ALERTS[alert.group(1).lower()],
                                children=children))
            return i
        blocks.append(Block("quote", no, text=parse_inline("\n".join(t for _, t in parts))))
        return i

    # -- directives -------------------------------------------------------------------------------

    def _directive_at(self, lines: list[Line], i: int, closers: dict[int, int], stray: set[int],
                      blocks: list[Block], depth: int, parent: str | None) -> int:
        no, raw = lines[i]
        text = raw.strip()
        if i in stray or _is_closer(text):
            hint = ""
            earlier = [line for line in self.references if line < no]
            if earlier:
                hint = (f" (if it closes the :::synced-block reference at line {earlier[-1]}: "
                        "a reference is a single line, so it took the ::: of the block around "
                        "it)")
            self.error(no, "this ::: closes nothing; remove it or add the :::directive it "
                       f"should close{hint}")
            return i + 1
        directive = _directive(text)
        if directive is None:
            blocks.append(Block("paragraph", no, text=parse_inline(text)))
            return i + 1
        name, args = directive
        if name == "study-text" and _indent(raw) > 0:
            self.error(no, "the :::study-text opener must start at column 1; remove the spaces "
                       "before it")
        if name not in KNOWN:
            self.error(no, f"unknown directive :::{name}; use one of "
                       f"{', '.join(':::' + k for k in sorted(KNOWN))}")
        if not _opens_container(name, args):
            return self._self_closing(lines, i, name, args, stray, blocks)
        closer = closers.get(i)
        if closer is None:
            self.error(no, f":::{name} is never closed; add a line with ::: where it ends")
            # Assume it ends before the next section heading, so one missing ::: is one error.
            after = next((k for k in range(i + 1, len(lines))
                          if _SECTION_START.match(lines[k][1])), len(lines))
            body = lines[i + 1:after]
        else:
            body, after = lines[i + 1:closer], closer + 1
            if name == "study-text" and _indent(lines[closer][1]) > 0:
                self.error(lines[closer][0], "the closing ::: of the study text must start at "
                           "column 1; remove the spaces before it")
        body = _dedent(body)
        if name == "study-text":
            self.study_texts.append(StudyTextSource(no, args or None, body))
        children = self.container(body, depth=depth + 1, parent=name)
        block = self._container_block(no, name, args, children, parent)
        if block is None:
            blocks.extend(children)
        else:
            blocks.append(block)
        return after

    def _self_closing(self, lines: list[Line], i: int, name: str, args: str, stray: set[int],
                      blocks: list[Block]) -> int:
        no = lines[i][0]
        if name == "toc":
            blocks.append(Block("table_of_contents", no))
        elif name in ("audio", "video"):
            if not _URL.match(args):
                self.error(no, f":::{name} needs an https:// URL after it, e.g. "
                           f":::{name} https://example.com/file")
            else:
                blocks.append(Block(name, no, url=args))  # type: ignore[arg-type]
        else:  # a synced-block reference
            self.references.append(no)
            end = self._reference_body_end(lines, i, stray)
            if end is not None:
                self.error(no, f"a synced-block reference (:::synced-block {args}) cannot have a "
                           f"body, but the lines up to the ::: at line {lines[end][0]} follow it; "
                           "remove the id to make an original block, or remove the body and :::")
                stray.discard(end)
                blocks.append(Block("synced_block", no, source_id=args))
                return end + 1
            if " " in args:
                self.error(no, "a synced-block reference takes one block id, without spaces")
            blocks.append(Block("synced_block", no, source_id=args))
        return i + 1

    @staticmethod
    def _reference_body_end(lines: list[Line], i: int, stray: set[int]) -> int | None:
        """A reference followed by content and a ``:::`` that closes nothing else: that ``:::``."""
        later = [k for k in stray if k > i]
        if not later:
            return None
        end = min(later)
        # Only when no other synced-block reference sits between them (it would own the :::).
        for k in range(i + 1, end):
            directive = _directive(lines[k][1].strip())
            if directive is not None and directive[0] == "synced-block" and directive[1]:
                return None
        return end

    def _container_block(self, no: int, name: str, args: str, children: list[Block],
                         parent: str | None) -> Block | None:
        kids = tuple(children)
        if name == "callout":
            icon = first_grapheme(args)
            rest = args[len(icon):].strip()
            if not is_single_emoji(icon):
                self.error(no, "a callout needs an emoji icon right after it, e.g. "
                           ":::callout 💡")
                icon, rest = "", args
            if rest:
                kids = (Block("paragraph", no, text=parse_inline(rest)), *kids)
            if not kids:
                self.error(no, "this callout is empty; write its text on the lines before "
                           "its closing :::")
            return Block("callout", no, icon=icon or None, children=kids)
        if name == "column-list":
            return self._column_list(no, kids)
        if name == "column":
            if parent != "column-list":
                self.error(no, ":::column must be inside a :::column-list")
            return Block("column", no, children=kids)
        if name == "study-text":
            return Block("study_text", no, label=args or None, children=kids)
        if name == "toggle-heading":
            if not args:
                self.error(no, ":::toggle-heading needs a label, e.g. :::toggle-heading "
                           "Answer Key")
            return Block("toggle", no, text=parse_inline(args), children=kids)
        if name in ("toggle-h1", "toggle-h2", "toggle-h3"):
            if not args:
                self.error(no, f":::{name} needs a label, e.g. :::{name} Answer Key")
            kind: BlockType = f"heading_{name[-1]}"  # type: ignore[assignment]
            return Block(kind, no, text=parse_inline(args), toggleable=True, children=kids)
        if name == "synced-block":
            if not kids:
                self.error(no, "this synced-block is empty; it must include content (or give "
                           "the id of the block it copies: :::synced-block ID)")
            return Block("synced_block", no, children=kids)
        return None  # unknown directive, already reported: keep its content in place

    def _column_list(self, no: int, kids: tuple[Block, ...]) -> Block:
        columns = [kid for kid in kids if kid.type == "column"]
        for kid in kids if columns else ():  # with no column at all, one error says it
            if kid.type != "column":
                self.error(kid.line, "only :::column blocks can be inside a :::column-list; "
                           "move this into a :::column")
        for column in columns:
            if not column.children:
                self.error(column.line, "this column is empty; write something in it or "
                           "remove it")
        if not columns:
            self.error(no, "this column list has no columns; it needs at least two "
                       ":::column … ::: blocks inside")
        elif len(columns) < 2:
            self.error(no, "this column list has one column; Notion needs at least two, so add "
                       "another :::column or remove the :::column-list")
        return Block("column_list", no, children=tuple(columns))


def _cells(row: str) -> list[str]:
    """Split ``| a | b |`` into cells; ``\\|`` is a literal pipe."""
    body = row[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    cells: list[str] = []
    current: list[str] = []
    k = 0
    while k < len(body):
        char = body[k]
        if char == "\\" and body.startswith("|", k + 1):
            current.append("|")
            k += 2
            continue
        if char == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(char)
        k += 1
    cells.append("".join(current))
    return cells


def _cells_n(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"


def _plain(text: str) -> RichText:
    return (Span(text),) if text else ()
