"""What an import will cost before it runs: requests to send and blocks to create.

The estimate runs the real sending and merging code (``esl_build.notion.sync``) against
``DrySdk``, an in-memory stand-in that answers like Notion and counts, so the figures follow
the code that will send. It assumes Notion holds what we last published (nobody edited the
page since); a teacher's edit costs the reads of one scan more.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from esl_build.notion import sync
from esl_build.notion.client import Api, Limiter
from esl_build.notion.render import Node


class _Children:
    def __init__(self, sdk: DrySdk):
        self.sdk = sdk

    def append(self, block_id: str, **kwargs: Any) -> dict[str, Any]:
        made = [self.sdk.make(block, block_id) for block in kwargs["children"]]
        return {"results": [{"id": m} for m in made]}

    def list(self, block_id: str, **kwargs: Any) -> dict[str, Any]:
        return {"results": [{"id": c} for c in self.sdk.children.get(block_id, [])],
                "has_more": False, "next_cursor": None}


class _Blocks:
    def __init__(self, sdk: DrySdk):
        self.children = _Children(sdk)

    def update(self, block_id: str, **kwargs: Any) -> dict[str, Any]:
        return {"id": block_id}

    def delete(self, block_id: str, **kwargs: Any) -> dict[str, Any]:
        return {"id": block_id}

    def retrieve(self, block_id: str, **kwargs: Any) -> dict[str, Any]:
        return {"id": block_id}


class DrySdk:
    """Enough of the SDK's surface for ``sync``: appends make ids, lists return them."""

    def __init__(self) -> None:
        self.children: dict[str, list[str]] = {}
        self._ids = (f"dry-{n}" for n in itertools.count())
        self.blocks = _Blocks(self)

    def make(self, block: Mapping[str, Any], parent: str) -> str:
        block_id = next(self._ids)
        self.children.setdefault(parent, []).append(block_id)
        for child in (block.get(str(block.get("type"))) or {}).get("children") or []:
            self.make(child, block_id)
        return block_id


def estimate(nodes: Sequence[Node], known: Mapping[str, Any] | None, *,
             properties_changed: bool) -> tuple[int, int]:
    """(requests, blocks created) for publishing ``nodes`` over what ``known`` recorded."""
    api = Api(DrySdk(), Limiter(1e9, burst=1_000_000), lesson_id="", stage="import")
    known = known or {}
    fixed = 0
    if not known.get("pageId"):
        fixed = 4  # data source, lookup by lesson id, create, read back
        base: list[sync.Published] = []
    elif "blocks" not in known:
        fixed = 3  # read, list the old body (its deletions are not known here), read back
        base = []
    else:
        base = [sync.Published.from_json(b) for b in known["blocks"]]
        fixed = 1 + properties_changed  # read the page (and update its properties)
    slots = sync.merge(base, nodes, {})
    reads = len(sync.touched(slots))
    sync.apply_slots(sync.Sender(api), "dry-page", slots)
    if base and api.writes:
        fixed += 1  # read back the page's last-edited stamp
    return fixed + reads + api.requests, api.blocks_created
