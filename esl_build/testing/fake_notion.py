"""A fake Notion API on 127.0.0.1, as strict as the real one where esl-build could go wrong.

``FakeNotion()`` starts a ``ThreadingHTTPServer`` on a free port; ``fake.env`` holds the
variables that aim esl-build (and the real ``notion-client`` SDK) at it::

    with FakeNotion(rate=None) as fake:
        repo.doit(env=fake.env)
        assert fake.count("POST", "/v1/pages") == 1

What it keeps in memory: data sources (with a property schema) under databases (found by
``POST /v1/search``, filtered to ``page`` or ``data_source`` as in 2025-09-03), pages in
them, and blocks (a tree under each page), with ``created_time``/``last_edited_time`` and
``last_edited_by`` (the integration's bot user, or ``HUMAN`` for edits made with
``human_edit``/``human_insert``/``human_delete``, a teacher working in the Notion app).

What it refuses like Notion, with 400 ``validation_error``: more than 100 children in an
array, more than 2 levels of nesting in one request, ``text.content`` over 2,000 characters,
more than 100 rich-text items, more than 1,000 blocks or 500 KB in a request, a column list
without 2 non-empty columns, a table row whose width differs from the table's, a code block
with an unknown language, properties the data source lacks or of the wrong type, and
multi-select options containing commas, an append with both ``after`` and ``position`` (or
``after`` under Notion-Version 2026-03-11, or an unknown key). A wrong token is 401
``unauthorized``.

Throttling: a token bucket per token (``rate`` requests/s, ``burst``), answered with 429
``rate_limited`` and an integer ``Retry-After``; ``rate=None`` disables it. Faults: with
``faults=p`` (seeded by ``seed``), a request fails with probability ``p``: a 429, a 500/502/
503/504/529 before anything is done, or, for a write, the write is *applied* and the answer
is a 502 (the response was lost). ``requests`` records every request received.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from esl_build.notion.render import LANGUAGES  # Notion's list: one copy
from esl_build.testing.loopback import LoopbackHandler

BOT = "bot-esl-build-0000-0000-000000000000"
HUMAN = "user-teacher-0000-0000-000000000000"
MAX_BODY = 500_000


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Request:
    """One request as received (the body parsed from JSON)."""

    method: str
    path: str
    body: Any
    status: int = 0


@dataclass
class _Node:
    id: str
    kind: str            # "page" or a block type
    parent: str | None   # page or block id; None for a top-level page
    data: dict[str, Any] = field(default_factory=dict)  # the type's payload (blocks)
    children: list[str] = field(default_factory=list)
    archived: bool = False
    created: str = field(default_factory=_now)
    edited: str = field(default_factory=_now)
    edited_by: str = BOT
    properties: dict[str, Any] = field(default_factory=dict)  # pages
    icon: Any = None
    cover: Any = None
    data_source: str | None = None


class FakeNotion:
    """The fake server. Use as a context manager, or call ``close()``."""

    def __init__(self, *, token: str = "secret-fake-token-0001", rate: float | None = None,
                 burst: int = 10, faults: float = 0.0, seed: int = 7,
                 schema: dict[str, Any] | None = None):
        self.token = token
        self.rate, self.burst = rate, burst
        self.faults = faults
        self.random = random.Random(seed)
        self.requests: list[Request] = []
        self.blocks_created = 0
        self._lost: list[tuple[str, str]] = []
        self.nodes: dict[str, _Node] = {}
        self.lock = threading.RLock()
        self._bucket = (float(burst), time.monotonic())
        self.database_id = str(uuid.uuid4())
        self.data_source_id = str(uuid.uuid4())
        self.students_source_id = str(uuid.uuid4())
        self.sources: dict[str, dict[str, Any]] = {}
        self.add_data_source(self.data_source_id, "Lessons", schema or {
            "Name": "title", "Student": "relation", "Level": "select", "Topic": "multi_select",
            "Lesson ID": "rich_text", "Audio": "url", "Tags": "multi_select"})
        self.add_data_source(self.students_source_id, "Students", {"Name": "title"})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    # -- set-up -----------------------------------------------------------------------------
    def add_data_source(self, source_id: str, name: str, schema: dict[str, str], *,
                        database: str | None = None) -> None:
        """A data source with ``schema`` (name → type), in ``database`` (default: the fake's
        first database, which holds the lessons and students data sources)."""
        self.sources[source_id] = {
            "name": name, "database": database or self.database_id,
            "properties": {key: {"id": f"p{i}", "name": key, "type": kind, kind: {}}
                           for i, (key, kind) in enumerate(schema.items())}}

    def add_student(self, name: str) -> str:
        """A page titled ``name`` in the students data source; returns its id."""
        page = self._new_page({"Name": {"title": [{"text": {"content": name}}]}},
                              self.students_source_id, BOT)
        return page.id

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def env(self) -> dict[str, str]:
        """The environment that selects the notion publisher and aims it here."""
        return {"NOTION_TOKEN": self.token, "NOTION_BASE_URL": self.base_url,
                "NOTION_DATA_SOURCE_ID": self.data_source_id}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeNotion:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what tests look at -----------------------------------------------------------------
    def count(self, method: str | None = None, pattern: str = "") -> int:
        """Requests received whose method is ``method`` (any if None) and path matches."""
        return sum(1 for r in self.requests
                   if (method is None or r.method == method) and re.search(pattern, r.path))

    def pages(self, *, archived: bool = True) -> list[_Node]:
        """Pages in the lessons data source (archived ones too, unless ``archived=False``)."""
        return [n for n in self.nodes.values() if n.kind == "page"
                and n.data_source == self.data_source_id and (archived or not n.archived)]

    def pages_of(self, lesson_id: str) -> list[_Node]:
        """Pages (archived ones too) whose ``Lesson ID`` property is ``lesson_id``."""
        return [page for page in self.pages() if "".join(
            t["text"]["content"] for t in page.properties.get("Lesson ID", {}).get(
                "rich_text", [])) == lesson_id]

    def writes(self, pattern: str = "") -> int:
        """Requests received that may change something (not GET, not a query)."""
        return sum(1 for r in self.requests if r.method != "GET" and re.search(pattern, r.path)
                   and not r.path.endswith("/query"))

    def title(self, page: _Node) -> str:
        for value in page.properties.values():
            if "title" in value:
                return "".join(t["text"]["content"] for t in value["title"])
        return ""

    def tree(self, block_id: str) -> list[_Node]:
        """The live children of a page or block, in order."""
        return [self.nodes[c] for c in self.nodes[block_id].children
                if not self.nodes[c].archived]

    def walk(self, block_id: str) -> Iterator[tuple[int, _Node]]:
        """Every live block under ``block_id``, depth first, with its depth."""
        for child in self.tree(block_id):
            yield 0, child
            for depth, sub in self.walk(child.id):
                yield depth + 1, sub

    def text_of(self, node: _Node) -> str:
        """The plain text a block shows (rich text, table cells, caption, url)."""
        data = node.data
        parts = ["".join(t["text"]["content"] for t in data.get("rich_text", []))]
        for cell in data.get("cells", []):
            parts.append("".join(t["text"]["content"] for t in cell))
        parts += ["".join(t["text"]["content"] for t in data.get("caption", []))]
        external = data.get("external") or {}
        parts.append(external.get("url", ""))
        return " ".join(p for p in parts if p)

    def page_text(self, page_id: str) -> str:
        return "\n".join(self.text_of(node) for _, node in self.walk(page_id))

    # -- a teacher working in Notion -------------------------------------------------------
    def human_edit(self, block_id: str, text: str) -> None:
        """Replace a block's text, as a person in the Notion app would."""
        with self.lock:
            node = self.nodes[block_id]
            node.data["rich_text"] = [_text(text)]
            self._touch(node, HUMAN)

    def human_insert(self, parent_id: str, after: str | None, text: str) -> str:
        """Add a paragraph under ``parent_id`` after block ``after``; returns its id."""
        with self.lock:
            node = _Node(str(uuid.uuid4()), "paragraph", parent_id,
                         {"rich_text": [_text(text)], "color": "default"}, edited_by=HUMAN)
            self.nodes[node.id] = node
            siblings = self.nodes[parent_id].children
            siblings.insert(siblings.index(after) + 1 if after else 0, node.id)
            self._touch(node, HUMAN)
            return node.id

    def human_delete(self, block_id: str) -> None:
        with self.lock:
            self.nodes[block_id].archived = True
            self._touch(self.nodes[block_id], HUMAN)

    def _touch(self, node: _Node, user: str) -> None:
        stamp = _now()
        node.edited, node.edited_by = stamp, user
        while node.parent is not None and node.kind != "page":
            node = self.nodes[node.parent]
        node.edited, node.edited_by = stamp, user  # the page shows its last edit

    # -- request handling -------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes
               ) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return _error(_Refused(400, "invalid_json", "Error parsing JSON body."))
        record = Request(method, path.split("?")[0], body)
        with self.lock:
            self.requests.append(record)
        try:
            if headers.get("authorization") != f"Bearer {self.token}":
                raise _Refused(401, "unauthorized", "API token is invalid.")
            if not headers.get("notion-version"):
                raise _Refused(400, "missing_version", "Notion-Version header is missing.")
            if len(raw) > MAX_BODY:
                raise _Refused(413, "validation_error", "Request body too large.")
            self._throttle()
            lost = self._planned(method, record.path) or self._fault(method)
            with self.lock:
                status, answer = self._route(method, path, body, headers["notion-version"])
            if lost:
                raise _Refused(502, "internal_server_error", "Bad gateway (write applied).")
        except _Refused as refused:
            record.status = refused.status
            return _error(refused)
        record.status = status
        return status, answer, {}

    def _throttle(self) -> None:
        if self.rate is None:
            return
        with self.lock:
            tokens, then = self._bucket
            now = time.monotonic()
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens < 1:
                self._bucket = (tokens, now)
                wait = max(1, math.ceil((1 - tokens) / self.rate))
                raise _Refused(429, "rate_limited", "Rate limited.", {"Retry-After": str(wait)})
            self._bucket = (tokens - 1, now)

    def lose_next(self, method: str, pattern: str) -> None:
        """The next ``method`` request whose path matches ``pattern`` is applied, then
        answered 502 (as if the response were lost on the way back)."""
        with self.lock:
            self._lost.append((method, pattern))

    def _planned(self, method: str, path: str) -> bool:
        with self.lock:
            for i, (wanted, pattern) in enumerate(self._lost):
                if wanted == method and re.search(pattern, path):
                    del self._lost[i]
                    return True
        return False

    def _fault(self, method: str) -> bool:
        """Maybe inject a fault; True means: apply the write, then answer 502."""
        if not self.faults:
            return False
        with self.lock:
            if self.random.random() >= self.faults:
                return False
            kind = self.random.choice(["429", "5xx", "lost"])
        if kind == "429":
            raise _Refused(429, "rate_limited", "Rate limited.", {"Retry-After": "0"})
        if kind == "lost" and method != "GET":
            return True
        raise _Refused(self.random.choice([500, 502, 503, 504, 529]), "service_unavailable",
                       "Notion is unavailable, please try again later.")

    def _route(self, method: str, path: str, body: Any, version: str = "2025-09-03"
               ) -> tuple[int, dict[str, Any]]:
        url = path.split("?")[0].rstrip("/")
        query = dict(p.split("=", 1) for p in path.split("?")[1].split("&")) if "?" in path else {}
        parts = url.split("/")[2:]  # drop "", "v1"
        body = body or {}
        match (method, parts):
            case ("GET", ["data_sources", sid]):
                return 200, self._source_json(sid)
            case ("GET", ["databases", did]) if any(s["database"] == did
                                                    for s in self.sources.values()):
                return 200, {"object": "database", "id": did, "data_sources": [
                    {"id": sid, "name": s["name"]} for sid, s in self.sources.items()
                    if s["database"] == did]}
            case ("POST", ["search"]):
                return 200, self._search(body)
            case ("POST", ["data_sources", sid, "query"]):
                return 200, self._query(sid, body)
            case ("POST", ["pages"]):
                return 200, self._create_page(body)
            case ("GET", ["pages", pid]):
                return 200, self._page_json(self._get(pid, page=True))
            case ("PATCH", ["pages", pid]):
                return 200, self._update_page(pid, body)
            case ("GET", ["blocks", bid, "children"]):
                return 200, self._list(bid, query)
            case ("PATCH", ["blocks", bid, "children"]):
                return 200, self._append(bid, body, version)
            case ("GET", ["blocks", bid]):
                return 200, self._block_json(self._get(bid))
            case ("PATCH", ["blocks", bid]):
                return 200, self._update_block(bid, body)
            case ("DELETE", ["blocks", bid]):
                node = self._get(bid)
                node.archived = True
                self._touch(node, BOT)
                return 200, self._block_json(node)
        raise _Refused(400, "invalid_request_url", f"Invalid request URL: {method} {url}")

    # -- objects ----------------------------------------------------------------------------
    def _get(self, node_id: str, *, page: bool = False) -> _Node:
        node = self.nodes.get(node_id)
        if node is None or (page and node.kind != "page"):
            raise _Refused(404, "object_not_found",
                           f"Could not find {'page' if page else 'block'} with ID: {node_id}.")
        return node

    def _source_json(self, sid: str) -> dict[str, Any]:
        source = self.sources.get(sid)
        if source is None:
            raise _Refused(404, "object_not_found", f"Could not find data_source with ID: {sid}.")
        return {"object": "data_source", "id": sid, "in_trash": False,
                "title": [_text(source["name"]) | {"plain_text": source["name"]}],
                "parent": {"type": "database_id", "database_id": source["database"]},
                "properties": source["properties"]}

    def _page_json(self, node: _Node) -> dict[str, Any]:
        return {"object": "page", "id": node.id, "created_time": node.created,
                "last_edited_time": node.edited, "created_by": {"object": "user", "id": BOT},
                "last_edited_by": {"object": "user", "id": node.edited_by},
                "archived": node.archived, "in_trash": node.archived,
                "parent": {"type": "data_source_id", "data_source_id": node.data_source},
                "properties": node.properties, "icon": node.icon, "cover": node.cover,
                "url": f"https://www.notion.so/{node.id.replace('-', '')}"}

    def _block_json(self, node: _Node) -> dict[str, Any]:
        data = json.loads(json.dumps(node.data))
        for value in _rich_arrays(data):
            for item in value:
                text = item.setdefault("text", {"content": ""})
                text.setdefault("link", None)
                item["plain_text"] = text["content"]
                item["href"] = (text.get("link") or {}).get("url")
                item["annotations"] = {"bold": False, "italic": False, "strikethrough": False,
                                       "underline": False, "code": False, "color": "default",
                                       **item.get("annotations", {})}
        parent = self.nodes[node.parent] if node.parent else None
        return {"object": "block", "id": node.id, "type": node.kind, node.kind: data,
                "has_children": bool([c for c in node.children if not self.nodes[c].archived]),
                "archived": node.archived, "in_trash": node.archived,
                "created_time": node.created, "last_edited_time": node.edited,
                "last_edited_by": {"object": "user", "id": node.edited_by},
                "parent": {"type": "page_id" if parent and parent.kind == "page" else "block_id",
                           ("page_id" if parent and parent.kind == "page" else "block_id"):
                           node.parent}}

    def _query(self, sid: str, body: dict[str, Any]) -> dict[str, Any]:
        self._source_json(sid)
        wanted = body.get("filter")
        results = []
        for node in self.nodes.values():
            if node.kind != "page" or node.data_source != sid or node.archived:
                continue
            if wanted and not _matches(node.properties.get(wanted.get("property", "")), wanted):
                continue
            results.append(self._page_json(node))
        return {"object": "list", "results": results[:100], "has_more": False,
                "next_cursor": None}

    def _new_page(self, properties: dict[str, Any], sid: str, user: str) -> _Node:
        node = _Node(str(uuid.uuid4()), "page", None, properties=properties, data_source=sid,
                     edited_by=user)
        self.nodes[node.id] = node
        return node

    def _check_properties(self, sid: str, properties: dict[str, Any]) -> None:
        schema = self.sources[sid]["properties"]
        for name, value in properties.items():
            if name not in schema:
                raise _Refused(400, "validation_error",
                               f"{name} is not a property that exists.")
            kind = schema[name]["type"]
            if set(value) - {"type"} != {kind}:
                raise _Refused(400, "validation_error",
                               f"{name} is expected to be {kind}.")
            if kind in ("title", "rich_text"):
                _check_rich(value[kind], f"body.properties.{name}.{kind}")
            if kind == "multi_select":
                for option in value[kind]:
                    if "," in option.get("name", ""):
                        raise _Refused(400, "validation_error",
                                       f"Invalid multi_select value: {option['name']!r} has a "
                                       "comma.")

    def _create_page(self, body: dict[str, Any]) -> dict[str, Any]:
        parent = body.get("parent") or {}
        sid = parent.get("data_source_id")
        if sid not in self.sources:
            raise _Refused(404, "object_not_found", f"Could not find data_source with ID: {sid}.")
        properties = body.get("properties") or {}
        self._check_properties(sid, properties)
        children = body.get("children") or []
        self._check_blocks(children)
        page = self._new_page(properties, sid, BOT)
        page.icon, page.cover = body.get("icon"), body.get("cover")
        self._insert(page, children, None)
        return self._page_json(page)

    def _update_page(self, pid: str, body: dict[str, Any]) -> dict[str, Any]:
        page = self._get(pid, page=True)
        if "properties" in body:
            self._check_properties(page.data_source or "", body["properties"])
            page.properties.update(body["properties"])
        for key in ("icon", "cover"):
            if key in body:
                setattr(page, key, body[key])
        if "archived" in body or "in_trash" in body:
            page.archived = bool(body.get("archived", body.get("in_trash")))
        self._touch(page, BOT)
        return self._page_json(page)

    def _list(self, bid: str, query: dict[str, str]) -> dict[str, Any]:
        node = self._get(bid)
        size = min(int(query.get("page_size", 100)), 100)
        live = [c for c in node.children if not self.nodes[c].archived]
        start = live.index(query["start_cursor"]) if query.get("start_cursor") in live else 0
        chunk = live[start:start + size]
        more = start + size < len(live)
        return {"object": "list", "results": [self._block_json(self.nodes[c]) for c in chunk],
                "has_more": more, "next_cursor": live[start + size] if more else None}

    def _append(self, bid: str, body: dict[str, Any], version: str) -> dict[str, Any]:
        parent = self._get(bid)
        if parent.archived:
            raise _Refused(400, "validation_error", "Can't edit block that is archived.")
        children = body.get("children") or []
        if not children:
            raise _Refused(400, "validation_error", "body.children should be defined.")
        self._check_blocks(children)
        after, start = self._position(body, version)
        if after and (after not in parent.children or self.nodes[after].archived):
            raise _Refused(400, "validation_error", f"Block {after} is not a child of {bid}.")
        made = self._insert(parent, children, after, at_start=start)
        self._touch(parent, BOT)
        return {"object": "list", "results": [self._block_json(n) for n in made],
                "has_more": False, "next_cursor": None}

    @staticmethod
    def _position(body: dict[str, Any], version: str) -> tuple[str | None, bool]:
        """Where an append goes: (after this block, at the start). ``position`` came in
        January 2026 as a compatible addition (2025-09-03 accepts it) and cannot be sent
        with ``after``, which 2026-03-11 no longer accepts."""
        unknown = set(body) - {"children", "after", "position"}
        if unknown:
            raise _Refused(400, "validation_error",
                           f"body failed validation: body.{sorted(unknown)[0]} should be not "
                           "present.")
        if "after" in body and "position" in body:
            raise _Refused(400, "validation_error", "body failed validation: after and "
                           "position cannot both be provided.")
        if "after" in body and version >= "2026-03-11":
            raise _Refused(400, "validation_error", "body failed validation: body.after should "
                           "be not present, instead was given. Use position instead.")
        if "after" in body:
            return str(body["after"]), False
        position = body.get("position")
        if position is None:
            return None, False
        kind = position.get("type") if isinstance(position, dict) else None
        if kind == "after_block" and isinstance(position.get("after_block"), dict) and \
                set(position) == {"type", "after_block"}:
            return str(position["after_block"].get("id")), False
        if kind in ("start", "end") and set(position) == {"type"}:
            return None, kind == "start"
        raise _Refused(400, "validation_error", "body failed validation: body.position should "
                       "be one of {type: after_block, after_block: {id}}, {type: start}, "
                       "{type: end}.")

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/search`` as in 2025-09-03: titles containing ``query`` (any case),
        filtered to pages or data sources (``database`` is no longer a search object)."""
        unknown = set(body) - {"query", "filter", "sort", "start_cursor", "page_size"}
        if unknown:
            raise _Refused(400, "validation_error",
                           f"body failed validation: body.{sorted(unknown)[0]} should be not "
                           "present.")
        wanted = body.get("filter")
        if wanted is not None and (not isinstance(wanted, dict) or wanted.get("property") !=
                                   "object" or wanted.get("value") not in ("page",
                                                                           "data_source")):
            raise _Refused(400, "validation_error", "body failed validation: body.filter.value "
                           "should be `\"page\"` or `\"data_source\"`.")
        query = str(body.get("query") or "").casefold()
        results: list[dict[str, Any]] = []
        if wanted is None or wanted["value"] == "data_source":
            results += [self._source_json(sid) for sid, source in self.sources.items()
                        if query in source["name"].casefold()]
        if wanted is None or wanted["value"] == "page":
            results += [self._page_json(n) for n in self.nodes.values() if n.kind == "page"
                        and not n.archived and query in self.title(n).casefold()]
        size = min(int(body.get("page_size") or 100), 100)
        start = int(body.get("start_cursor") or 0)
        more = start + size < len(results)
        return {"object": "list", "results": results[start:start + size], "has_more": more,
                "next_cursor": str(start + size) if more else None}

    def _insert(self, parent: _Node, blocks: list[dict[str, Any]], after: str | None, *,
                at_start: bool = False) -> list[_Node]:
        made = []
        for block in blocks:
            kind = block["type"]
            data = {k: v for k, v in block[kind].items() if k != "children"}
            node = _Node(str(uuid.uuid4()), kind, parent.id, data)
            self.nodes[node.id] = node
            self.blocks_created += 1
            made.append(node)
            self._insert(node, block[kind].get("children") or [], None)
        ids = [n.id for n in made]
        if at_start:
            parent.children[0:0] = ids
        elif after:
            index = parent.children.index(after) + 1
            parent.children[index:index] = ids
        else:
            parent.children += ids
        return made

    def _update_block(self, bid: str, body: dict[str, Any]) -> dict[str, Any]:
        node = self._get(bid)
        if node.archived:
            raise _Refused(400, "validation_error", "Can't edit block that is archived.")
        if body.get("archived") or body.get("in_trash"):
            node.archived = True
        elif node.kind in body:
            payload = body[node.kind]
            if "children" in payload:
                raise _Refused(400, "validation_error", "children can't be updated here.")
            for key, value in _rich_items(payload):
                _check_rich(value, key)
            node.data.update(payload)
        else:
            raise _Refused(400, "validation_error",
                           f"body.{node.kind} should be defined (block type is {node.kind}).")
        self._touch(node, BOT)
        return self._block_json(node)

    # -- limits -----------------------------------------------------------------------------
    def _check_blocks(self, blocks: list[dict[str, Any]]) -> None:
        total = [0]

        def check(items: list[dict[str, Any]], where: str, depth: int) -> None:
            if len(items) > 100:
                raise _Refused(400, "validation_error",
                               f"{where}.length should be ≤ 100, instead was {len(items)}.")
            for i, block in enumerate(items):
                at = f"{where}[{i}]"
                total[0] += 1
                kind = block.get("type")
                payload = block.get(kind) if isinstance(kind, str) else None
                if not isinstance(payload, dict):
                    raise _Refused(400, "validation_error", f"{at}.type is not a block type.")
                for key, value in _rich_items(payload):
                    _check_rich(value, f"{at}.{kind}.{key}")
                children = payload.get("children") or []
                if children and depth >= 2:
                    raise _Refused(400, "validation_error",
                                   f"{at}.{kind}.children: at most two levels of nesting "
                                   "are allowed in one request.")
                self._check_kind(str(kind), payload, children, at)
                check(children, f"{at}.{kind}.children", depth + 1)

        check(blocks, "body.children", 0)
        if total[0] > 1000:
            raise _Refused(400, "validation_error",
                           f"at most 1000 blocks per request, instead was {total[0]}.")

    @staticmethod
    def _check_kind(kind: str, payload: dict[str, Any], children: list[Any], at: str) -> None:
        if kind == "column_list" and (len(children) < 2 or any(c.get("type") != "column" or
                                    not c["column"].get("children") for c in children)):
            raise _Refused(400, "validation_error",
                           f"{at}: a column_list needs at least 2 columns, each with "
                           "content.")
        if kind == "table":
            if not children:
                raise _Refused(400, "validation_error", f"{at}: a table needs rows.")
            for row in children:
                if len(row.get("table_row", {}).get("cells", [])) != payload.get("table_width"):
                    raise _Refused(400, "validation_error",
                                   f"{at}: table row width must equal table_width.")
        if kind == "code" and payload.get("language") not in LANGUAGES:
            raise _Refused(400, "validation_error",
                           f"{at}.code.language should be a known language.")
        if kind == "callout":
            icon = payload.get("icon") or {}
            emoji = icon.get("emoji", "")
            if icon and (not emoji or " " in emoji or len(emoji) > 8):
                raise _Refused(400, "validation_error", f"{at}.callout.icon.emoji is invalid.")


def _text(content: str) -> dict[str, Any]:
    return {"type": "text", "text": {"content": content, "link": None}}


def _rich_items(payload: dict[str, Any]) -> Iterator[tuple[str, list[Any]]]:
    for key in ("rich_text", "caption"):
        if key in payload:
            yield key, payload[key]
    for i, cell in enumerate(payload.get("cells", [])):
        yield f"cells[{i}]", cell


def _rich_arrays(payload: dict[str, Any]) -> Iterator[list[Any]]:
    for _, value in _rich_items(payload):
        yield value


def _check_rich(items: Any, where: str) -> None:
    if not isinstance(items, list):
        raise _Refused(400, "validation_error", f"{where} should be an array.")
    if len(items) > 100:
        raise _Refused(400, "validation_error",
                       f"{where}.length should be ≤ 100, instead was {len(items)}.")
    for i, item in enumerate(items):
        content = (item.get("text") or {}).get("content", "")
        if len(content) > 2000:
            raise _Refused(400, "validation_error",
                           f"{where}[{i}].text.content.length should be ≤ 2000, instead was "
                           f"{len(content)}.")
        link = (item.get("text") or {}).get("link") or {}
        if len(link.get("url", "")) > 2000:
            raise _Refused(400, "validation_error", f"{where}[{i}].text.link.url is too long.")


def _matches(value: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    if value is None:
        return False
    for kind in ("title", "rich_text"):
        if kind in wanted:
            text = "".join(t["text"]["content"] for t in value.get(kind, []))
            return bool(text == wanted[kind].get("equals"))
    return False


def _error(refused: _Refused) -> tuple[int, dict[str, Any], dict[str, str]]:
    return refused.status, {"object": "error", "status": refused.status, "code": refused.code,
                            "message": refused.message,
                            "request_id": str(uuid.uuid4())}, refused.headers


def _handler(fake: FakeNotion) -> type[BaseHTTPRequestHandler]:
    class Handler(LoopbackHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer, extra = fake.handle(self.command, self.path, headers, raw)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

    return Handler
