"""Keeping a Notion page equal to its lesson with the fewest requests and no needless blocks.

The manifest keeps the *published tree*: for every block we own, its id, type, ``hash`` (the
content we last wrote, as ``content_hash`` computes it) and ``want`` (the lesson content we
last reconciled with, when it differs from ``hash``: after ``--keep-notion``), and children.

``merge`` is a block-level three-way merge of base (the published tree), lesson (the
rendered nodes) and Notion (the blocks as they are now, where known):

==================  ==================  =============================================
lesson vs base      Notion vs base      result
==================  ==================  =============================================
same                same                nothing sent
changed             same                ``PATCH /blocks/{id}`` in place (no new block)
same                changed             the teacher's version is kept, and reported
changed             changed             a conflict: the lesson stops, nothing written
                                        (``force`` takes the lesson's, ``keep-notion``
                                        Notion's)
inserted            -                   appended ``after`` its previous sibling
removed             same                deleted
==================  ==================  =============================================

Siblings are aligned by content hash (``difflib``), so an edited line pairs with the block it
replaces; blocks a teacher added are not in the tree and are never touched.

``Sender`` appends new subtrees within Notion's request limits (100 children, 2 levels, 1,000
blocks, 500 KB), learning every new block's id, and checks a lost append before repeating it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from esl_build.errors import PublishError
from esl_build.notion.client import MAX_ATTEMPTS, Api, LostWrite
from esl_build.notion.render import Node, content_hash

MAX_CHILDREN = 100
MAX_BLOCKS = 1000
MAX_BYTES = 450_000  # under the 500 KB limit, leaving room for the envelope
INLINE = ("column_list", "table")  # Notion needs their children in the creating request
ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")


@dataclass
class Published:
    """One block we own, as recorded in the manifest."""

    id: str
    type: str
    hash: str
    want: str = ""
    role: str = ""
    children: list[Published] = field(default_factory=list)

    @property
    def wanted(self) -> str:
        return self.want or self.hash

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id, "type": self.type, "hash": self.hash}
        if self.want and self.want != self.hash:
            doc["want"] = self.want
        if self.role:
            doc["role"] = self.role
        if self.children:
            doc["children"] = [child.to_json() for child in self.children]
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Published:
        """A recorded block; ``ValueError`` when the record is not one we could have made
        (manifests are untrusted: an id goes into a request path)."""
        if not isinstance(doc, Mapping) or not ID.match(str(doc.get("id", ""))) or \
                not isinstance(doc.get("type"), str) or not isinstance(doc.get("hash"), str):
            raise ValueError(f"not a published block: {str(doc)[:80]}")
        children = doc.get("children") or []
        if not isinstance(children, list):
            raise ValueError("children must be a list")
        return cls(str(doc["id"]), str(doc["type"]), str(doc["hash"]), str(doc.get("want", "")),
                   str(doc.get("role", "")), [cls.from_json(child) for child in children])


def walk(tree: Sequence[Published]) -> Iterator[Published]:
    for item in tree:
        yield item
        yield from walk(item.children)


def count_blocks(nodes: Sequence[Node]) -> int:
    return sum(n.count() for n in nodes)


def text_of(block: Mapping[str, Any]) -> str:
    """What a block says, for messages (rich text, cells, or its URL)."""
    data = block.get(str(block.get("type"))) or {}
    parts = ["".join((item.get("text") or {}).get("content", "") for item in data.get(key, []))
             for key in ("rich_text", "caption")]
    parts += ["".join((i.get("text") or {}).get("content", "") for i in cell)
              for cell in data.get("cells", [])]
    parts.append((data.get("external") or {}).get("url", ""))
    return " | ".join(p for p in parts if p) or f"({block.get('type')})"


# -- sending ------------------------------------------------------------------------------
def _size(payload: Any) -> int:
    return len(json.dumps(payload, ensure_ascii=False).encode())


class Sender:
    """Appends rendered nodes under a parent block, every limit met, every id recorded."""

    def __init__(self, api: Api, *, line_of: Any = None):
        self.api = api
        self.line_of = line_of or (lambda node: f"line {node.line}")

    def append(self, parent: str, nodes: Sequence[Node], after: str | None = None, *,
               start: bool = False, out: list[Published] | None = None) -> list[Published]:
        """Create ``nodes`` (and everything under them) under ``parent``: after block
        ``after``, at the start when ``start``, else at the end.

        Each block is added to ``out`` (returned) the moment it exists, and its children to
        its record as they are made, so after a failure ``out`` is exactly what was made."""
        out = [] if out is None else out
        for batch in self._batches(nodes):
            payload = [self._inline(n) for n in batch]
            ids = self._send(parent, payload, batch, after, start)
            records = [Published(block_id, item.type, item.hash, role=item.role)
                       for item, block_id in zip(batch, ids, strict=True)]
            out += records
            for item, record in zip(batch, records, strict=True):
                if item.type in INLINE:
                    self._adopt_inline(record, item)
                elif item.children:
                    self.append(record.id, item.children, out=record.children)
            after, start = ids[-1], False
        return out

    def _batches(self, nodes: Sequence[Node]) -> Iterator[list[Node]]:
        batch: list[Node] = []
        blocks = size = 0
        for item in nodes:
            inline = self._inline(item)
            n, s = _inline_count(inline), _size(inline)
            if batch and (len(batch) >= MAX_CHILDREN or blocks + n > MAX_BLOCKS
                          or size + s > MAX_BYTES):
                yield batch
                batch, blocks, size = [], 0, 0
            batch.append(item)
            blocks, size = blocks + n, size + s
        if batch:
            yield batch

    def _inline(self, item: Node) -> dict[str, Any]:
        """The block as sent: childless, except a table (its first 100 rows) and a column
        list (its columns and their leading simple blocks), which Notion creates whole."""
        block = item.block()
        if item.type == "table":
            block["table"]["children"] = [row.block() for row in item.children[:MAX_CHILDREN]]
        elif item.type == "column_list":
            columns = []
            for column in item.children:
                lead = _lead(column)
                if not lead:
                    raise PublishError(f"{self.api.stage}:{self.api.lesson_id}: "
                                       f"{self.line_of(column)}: a column that starts with a "
                                       "table or column list cannot be created in Notion; "
                                       "put a line of text first")
                columns.append({"object": "block", "type": "column",
                                "column": {"children": [child.block() for child in lead]}})
            block["column_list"]["children"] = columns
        return block

    def _send(self, parent: str, payload: list[dict[str, Any]], batch: list[Node],
              after: str | None, start: bool) -> list[str]:
        kwargs: dict[str, Any] = {"children": payload}
        if after:
            kwargs["after"] = after
        elif start:
            kwargs["position"] = {"type": "start"}
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                answer = self.api.call("append blocks", self.api.sdk.blocks.children.append,
                                       parent, idempotent=False, **kwargs)
            except LostWrite:
                found = self._applied(parent, batch, after, start)
                if found is not None:
                    self.api.blocks_created += sum(_inline_count(b) for b in payload)
                    return found
                self.api.retry_pause(attempt)
                continue
            self.api.blocks_created += sum(_inline_count(b) for b in payload)
            return [str(block["id"]) for block in answer["results"]][:len(batch)]
        raise self.api.fail("append blocks: no answer after several tries", retryable=True)

    def _applied(self, parent: str, batch: list[Node], after: str | None, start: bool
                 ) -> list[str] | None:
        """The ids of ``batch`` if a lost append did create it (checked by content)."""
        children = self.list(parent)
        ids = [str(block["id"]) for block in children]
        if after:
            if after not in ids:
                return None
            begin = ids.index(after) + 1
        else:
            begin = 0 if start else len(children) - len(batch)
        window = children[begin:begin + len(batch)]
        if len(window) == len(batch) and begin >= 0 and all(
                content_hash(block) == item.hash for block, item in zip(window, batch,
                                                                       strict=True)):
            return [str(block["id"]) for block in window]
        return None

    def list(self, block_id: str) -> list[dict[str, Any]]:
        """Every child of a block or page (following the cursor)."""
        results: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            kwargs: dict[str, Any] = {"page_size": 100}
            if cursor:
                kwargs["start_cursor"] = cursor
            answer = self.api.call("list blocks", self.api.sdk.blocks.children.list, block_id,
                                   **kwargs)
            results += answer["results"]
            cursor = answer.get("next_cursor")
            if not answer.get("has_more") or not cursor:
                return results

    def _adopt_inline(self, record: Published, item: Node) -> None:
        """Ids of the children sent inline with a table or column list; the rest appended."""
        listed = self.list(record.id)
        if item.type == "table":
            sent = item.children[:MAX_CHILDREN]
            rows = [Published(str(b["id"]), row.type, row.hash)
                    for b, row in zip(listed, sent, strict=False)]
            record.children += rows
            if item.children[MAX_CHILDREN:]:
                self.append(record.id, item.children[MAX_CHILDREN:], rows[-1].id,
                            out=record.children)
            return
        columns = [Published(str(b["id"]), "column", column.hash)
                   for b, column in zip(listed, item.children, strict=False)]
        record.children += columns
        for column_record, column in zip(columns, item.children, strict=False):
            lead = _lead(column)
            inside = self.list(column_record.id)
            kids = [Published(str(b["id"]), child.type, child.hash, role=child.role)
                    for b, child in zip(inside, lead, strict=False)]
            column_record.children += kids
            for kid, child in zip(kids, lead, strict=False):
                if child.children:
                    self.append(kid.id, child.children, out=kid.children)
            if column.children[len(lead):]:
                self.append(column_record.id, column.children[len(lead):], kids[-1].id,
                            out=column_record.children)


def _lead(column: Node) -> list[Node]:
    """A column's leading children that can go inline (no table or column list)."""
    lead: list[Node] = []
    for child in column.children[:MAX_CHILDREN]:
        if child.type in INLINE:
            break
        lead.append(child)
    return lead


def _inline_count(block: Mapping[str, Any]) -> int:
    data = block.get(str(block.get("type"))) or {}
    return 1 + sum(_inline_count(child) for child in data.get("children") or [])


# -- merging ------------------------------------------------------------------------------
@dataclass
class Seen:
    """A block as it is in Notion now (``block`` None: not there any more)."""

    block: dict[str, Any] | None

    @property
    def hash(self) -> str | None:
        return content_hash(self.block) if self.block is not None else None


@dataclass
class Slot:
    """One position of the merged tree, and what to do there."""

    action: str  # same | update | new | delete | kept | conflict | gone
    base: Published | None = None
    node: Node | None = None
    children: list[Slot] = field(default_factory=list)
    notion: dict[str, Any] | None = None  # Notion's block, for messages

    def walk(self) -> Iterator[Slot]:
        yield self
        for child in self.children:
            yield from child.walk()


def _patchable(base: Published, node: Node) -> bool:
    if base.type != node.type or node.type in ("synced_block", "table"):
        return node.type == base.type == "table" and base.hash == node.hash
    if node.type == "column_list":
        return len(base.children) == len(node.children)
    return True


def merge(base: Sequence[Published], nodes: Sequence[Node], seen: Mapping[str, Seen],
          mode: str = "stop") -> list[Slot]:
    """The merged children of one parent (see the module docstring). ``seen`` holds the
    Notion state of the blocks read; a block not in it is taken to be as we published it."""
    slots: list[Slot] = []
    matcher = SequenceMatcher(None, [b.wanted for b in base], [n.hash for n in nodes],
                              autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        olds, news = list(base[i1:i2]), list(nodes[j1:j2])
        if tag == "equal" and not any(b.type in INLINE and not b.children for b in olds):
            slots += [_pair(b, n, seen, mode) for b, n in zip(olds, news, strict=True)]
            continue
        for k in range(max(len(olds), len(news))):
            old = olds[k] if k < len(olds) else None
            new = news[k] if k < len(news) else None
            if old is not None and new is not None and _patchable(old, new) and not (
                    old.type in INLINE and not old.children):  # half-made: make it again
                slots.append(_pair(old, new, seen, mode))
                continue
            if old is not None:
                slots.append(_removed(old, seen, mode))
            if new is not None:
                slots.append(Slot("new", node=new))
    return slots


def _pair(base: Published, node: Node, seen: Mapping[str, Seen], mode: str) -> Slot:
    state = seen.get(base.id)
    gone = state is not None and state.block is None
    notion_hash = base.hash if state is None else state.hash
    lesson_changed = base.wanted != node.hash
    notion_changed = notion_hash != base.hash
    notion = state.block if state else None
    children = [] if gone else merge(base.children, node.children, seen, mode)
    if not lesson_changed and not notion_changed:
        return Slot("same", base, node, children, notion)
    if not lesson_changed:
        return Slot("gone" if gone else "kept", base, node, children, notion)
    if not notion_changed:
        return Slot("update", base, node, children, notion)
    if not gone and notion_hash == node.hash:  # both made the same change
        return Slot("same", Published(base.id, base.type, node.hash, role=base.role,
                                      children=base.children), node, children, notion)
    if mode == "force":
        return Slot("new", node=node) if gone else Slot("update", base, node, children, notion)
    if mode == "keep-notion":
        return Slot("gone" if gone else "kept", base, node, children, notion)
    return Slot("conflict", base, node, children, notion)


def _removed(base: Published, seen: Mapping[str, Seen], mode: str) -> Slot:
    state = seen.get(base.id)
    if state is not None and state.block is None:
        return Slot("gone", base)
    if state is not None and state.hash != base.hash and mode == "stop":
        return Slot("conflict", base, None, [], state.block)
    if state is not None and state.hash != base.hash and mode == "keep-notion":
        return Slot("gone", base, None, [], state.block)  # left to the teacher, not ours now
    return Slot("delete", base)


def touched(slots: Sequence[Slot]) -> list[str]:
    """Ids of the blocks the merge would change or delete (read them before writing)."""
    return [s.base.id for slot in slots for s in slot.walk()
            if s.action in ("update", "delete") and s.base is not None]


def apply_slots(sender: Sender, parent: str, slots: Sequence[Slot],
                out: list[Published] | None = None) -> list[Published]:
    """Send the merge's writes for one parent (recursively); returns the published tree.

    ``out`` is filled as blocks are written; if a request fails, the blocks not reached yet
    are added as they were, so ``out`` is then the true state of the page (to record)."""
    api = sender.api
    out = [] if out is None else out
    prev: str | None = None
    pending: list[Node] = []
    index = 0

    def flush() -> None:
        nonlocal prev
        if pending:
            before = len(out)
            sender.append(parent, pending, prev, start=prev is None, out=out)
            prev = out[-1].id if len(out) > before else prev
            pending.clear()

    try:
        for index, slot in enumerate(slots):
            if slot.action == "new":
                assert slot.node is not None
                pending.append(slot.node)
                continue
            flush()
            base = slot.base
            assert base is not None
            if slot.action == "delete":
                _delete(api, base.id)
                continue
            if slot.action == "gone":
                if slot.node is not None:
                    out.append(base)  # the teacher deleted it; we keep not having it
                continue
            node = slot.node
            assert node is not None
            record = Published(base.id, base.type, base.hash, base.want, node.role or base.role)
            out.append(record)
            index += 1  # from here this slot is in ``out``
            if slot.action == "update":
                change: dict[str, Any] = {node.type: dict(node.payload)}
                api.call("update block", api.sdk.blocks.update, base.id, **change)
                record.hash, record.want = node.hash, ""
            elif slot.action == "kept":
                record.want = node.hash
            apply_slots(sender, base.id, slot.children, record.children)
            prev = base.id
        index = len(slots)
        flush()
    except Exception:
        out += [s.base for s in slots[index:] if s.base is not None and s.action != "new"
                and not (s.action == "gone" and s.node is None)]
        raise
    return out


def _delete(api: Api, block_id: str) -> None:
    try:
        api.call("delete block", api.sdk.blocks.delete, block_id)
    except PublishError as error:  # already deleted (a lost answer, or the teacher): fine
        if "archived" not in str(error) and "Could not find" not in str(error):
            raise
