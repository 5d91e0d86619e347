"""The Notion publisher: one page per lesson, forever, kept in sync block by block.

``publish`` finds or creates the lesson's page in the target data source and brings its body
to the rendered lesson (``esl_build.notion.render``) with the fewest requests
(``esl_build.notion.sync``):

* **Create.** The page is created with its properties only; its id is handed to ``record``
  at once (the import stage writes it into the manifest), then the body is appended. Before
  creating, and after a create whose answer was lost, the page is looked up by its
  ``Lesson ID`` property (when the data source has one), so a retry never makes a second page.
* **Update.** The page is read (``last_edited_time``/``last_edited_by``): when nobody but us
  edited it since our last write, only the blocks about to change are read back; otherwise
  every block we own is read. The three-way merge then keeps teachers' edits, applies the
  lesson's, and stops the lesson on a conflict before writing anything.
* **Adopt.** A recorded page without a published tree (a predecessor's manifest) has its
  body replaced once and is synced block by block from then on.

``link_audio`` puts one audio block at the top of the study-text toggle and afterwards only
ever updates that block (by id); it also fills an ``Audio`` url property when there is one.

The SDK (``notion-client``) is imported when the first request is made, never on a no-op.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from esl_build.config import Config
from esl_build.errors import ConfigInvalid, ManifestCorrupt, PublishError
from esl_build.fingerprint import fingerprint
from esl_build.lesson.model import Lesson
from esl_build.notion import sync
from esl_build.notion.client import MAX_ATTEMPTS, Api, LostWrite, limiter_for
from esl_build.notion.render import RENDER_VERSION, Node, render, text_field
from esl_build.notion.target import Targets
from esl_build.services.protocols import PageSpec
from esl_build.settings import NotionSettings

LESSON_ID_PROPERTY = "lesson id"
AUDIO_PROPERTY = "audio"
Record = Callable[[dict[str, Any]], None]


class _NoStudents(Exception):
    """STUDENTS_DB_ID is not set."""


class NotionPublisher:
    """Publishes lessons as pages of a Notion data source (see the module docstring)."""

    name = "notion"
    remote = True

    def __init__(self, settings: NotionSettings, *, client: Any = None,
                 warn: Callable[[str], None] | None = None,
                 config: Callable[[], Config] | None = None):
        if settings.token is None:
            raise ConfigInvalid("the notion publisher needs NOTION_TOKEN")
        self.targets = Targets(settings, config)
        self.config = settings
        self._client = client
        self._warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
        self._lock = threading.Lock()
        self._students: dict[str, str | None] = {}
        self.settings: dict[str, Any] = {"target": self.targets.default,
                                         "render": RENDER_VERSION}

    # -- plumbing ---------------------------------------------------------------------------
    @cached_property
    def sdk(self) -> Any:
        """The notion-client SDK client (imported and built on first use)."""
        if self._client is not None:
            return self._client
        import logging

        import httpx
        from notion_client import Client

        assert self.config.token is not None
        return Client(auth=self.config.token.reveal(),
                      base_url=self.config.base_url or "https://api.notion.com",
                      notion_version="2025-09-03", retry=False,
                      timeout_ms=round(self.config.timeout * 1000),
                      # failures reach the user as PublishError; the SDK's own lines are noise
                      logger=logging.getLogger("esl_build.notion.sdk"),
                      log_level=logging.ERROR, client=httpx.Client())

    def api(self, lesson_id: str, stage: str) -> Api:
        assert self.config.token is not None
        return Api(self.sdk, limiter_for(self.config.token.reveal(), self.config.rate),
                   lesson_id=lesson_id, stage=stage, backoff=self.config.backoff)

    def settings_for(self, student: str) -> dict[str, Any]:
        """What shapes the pages of ``student``'s lessons (in the import fingerprint): the
        target they go to and the renderer's version."""
        return {"target": self.targets.of(student), "render": RENDER_VERSION}

    # -- properties -------------------------------------------------------------------------
    def properties(self, api: Api, lesson: Lesson, schema: Mapping[str, str]
                   ) -> tuple[dict[str, Any], list[str]]:
        """The page properties of a lesson, typed by the schema, and warnings."""
        fm = lesson.frontmatter
        by_lower = {name.lower(): name for name in schema}
        out: dict[str, Any] = {}
        warnings: list[str] = []
        title = next((name for name, kind in schema.items() if kind == "title"), None)
        if title is None:
            raise PublishError(f"import:{lesson.id}: the data source has no title property")
        out[title] = {"title": text_field(((_span(fm.title)),))}
        values: dict[str, Any] = {"student": fm.student, "level": fm.level,
                                  "topic": list(fm.topic), LESSON_ID_PROPERTY: lesson.id}
        for key, value in fm.properties.items():
            values[key.lower()] = value
            by_lower.setdefault(key.lower(), key)
        for key, value in values.items():
            name = by_lower.get(key)
            if name is None or name not in schema:
                if key in {k.lower() for k in fm.properties}:
                    warnings.append(f"{lesson.path}:{fm.lines.get('properties', 1)}: property "
                                    f"{key!r} is not in the Notion data source; not written")
                continue
            if name == title or value in (None, "", []):
                continue
            kind = schema[name]
            if kind == "relation" and key == "student":
                try:
                    page = self._student(api, str(value))
                except _NoStudents:
                    warnings.append(f"{lesson.path}: the data source's {name!r} relation is "
                                    "left empty: set STUDENTS_DB_ID to the data source of "
                                    "student pages to link it")
                    continue
                if page is None:
                    warnings.append(f"{lesson.path}:{fm.lines.get('student', 1)}: no student "
                                    f"page titled {value!r}; the Student relation is left empty")
                    continue
                out[name] = {"relation": [{"id": page}]}
                continue
            typed = _typed(kind, value)
            if typed is None:
                warnings.append(f"{lesson.path}: property {name!r} has type {kind}, which "
                                "esl-build does not write; not written")
                continue
            out[name] = {kind: typed}
        return out, warnings

    def _student(self, api: Api, name: str) -> str | None:
        source = self.config.students_id
        if not source:
            raise _NoStudents
        with self._lock:
            if name in self._students:
                return self._students[name]
        answer = api.call("find student", api.sdk.data_sources.query, source,
                          filter={"property": "Name", "title": {"equals": name}})
        found = next((str(page["id"]) for page in answer.get("results", [])), None)
        with self._lock:
            self._students[name] = found
        return found

    # -- publish ----------------------------------------------------------------------------
    def publish(self, spec: PageSpec, known: dict[str, Any] | None, *,
                record: Record | None = None) -> dict[str, Any]:
        """Create the lesson's page or bring the recorded one up to date (module docstring).

        ``record`` receives the outputs so far the moment the page exists and after every
        batch of blocks, so a failure later never loses the page. Returns ``pageId``,
        ``url``, ``blocks`` (the published tree), ``studyText`` and ``requests``."""
        lesson = spec.lesson
        api = self.api(lesson.id, "import")
        nodes = render(lesson, spec.preset)
        page_props_key = fingerprint({"fm": _frontmatter_key(lesson)})
        known = dict(known or {}, lesson=lesson.id)
        page_id = known.get("pageId")
        if page_id and (not isinstance(page_id, str) or not sync.ID.match(page_id)):
            raise ManifestCorrupt(f"lessons/{lesson.id}.manifest.json: the recorded Notion page "
                                  f"id {str(page_id)[:60]!r} is not an id")
        page: Mapping[str, Any] = {}
        if not known.get("pageId"):
            target = self.targets.resolve(api, self.targets.of(lesson.frontmatter.student))
            known = {**self._create(api, lesson, target, page_props_key, record),
                     "lesson": lesson.id}
        else:
            page = api.call("read page", api.sdk.pages.retrieve, known["pageId"])
            if page.get("in_trash") or page.get("archived"):
                raise api.fail(f"page {known['pageId']} is in Notion's trash; restore it (or "
                               "remove remote.import/notion from the manifest to create a "
                               "new one)")
            known["url"] = page.get("url") or known.get("url")
            parent = page.get("parent") or {}
            if parent.get("data_source_id"):  # the page stays where it is (docs/notion.md)
                known["dataSource"] = str(parent["data_source_id"])
        if known.get("props") != page_props_key:
            schema = (self.targets.schema(api, known["dataSource"]) if known.get("dataSource")
                      else self.targets.resolve(api, self.targets.of(
                          lesson.frontmatter.student))["schema"])
            props, warnings = self.properties(api, lesson, schema)
            for warning in warnings:
                self._warn(warning)
            api.call("update page properties", api.sdk.pages.update, known["pageId"],
                     properties=props, **_icon_cover(lesson))
            known["props"] = page_props_key
        if "blocks" not in known:
            self._replace_body(api, known["pageId"])
            base: list[sync.Published] = []
            seen: dict[str, sync.Seen] = {}
        else:
            base = self._recorded(lesson, known)
            seen = self._read(api, page, known, base, nodes) if page else {}
        slots = self._merge(lesson, base, nodes, seen, api)
        tree: list[sync.Published] = []
        try:
            sync.apply_slots(sync.Sender(api, line_of=lambda n: f"{lesson.path}:{n.line}"),
                             known["pageId"], slots, tree)
        except Exception:
            if record:  # what the page now holds, so the next run goes on from there
                record({**known, "blocks": [b.to_json() for b in tree], "stamp": None})
            raise
        if api.writes:
            after = api.call("read page", api.sdk.pages.retrieve, known["pageId"])
            known["stamp"] = after.get("last_edited_time")
            known["user"] = (after.get("last_edited_by") or {}).get("id")
        return {**known, "blocks": [b.to_json() for b in tree],
                "studyText": study_text_id(tree), "requests": api.requests,
                "blocksCreated": api.blocks_created}

    def estimate(self, spec: PageSpec, known: dict[str, Any] | None) -> tuple[int, int]:
        """(requests, new blocks) a ``publish`` would cost, assuming nobody edited the page
        since our last write. Pure: nothing is sent."""
        from esl_build.notion.estimate import estimate

        key = fingerprint({"fm": _frontmatter_key(spec.lesson)})
        return estimate(render(spec.lesson, spec.preset), known,
                        properties_changed=(known or {}).get("props") != key)

    @staticmethod
    def _recorded(lesson: Lesson, known: Mapping[str, Any]) -> list[sync.Published]:
        try:
            blocks = known["blocks"]
            if not isinstance(blocks, list):
                raise ValueError("blocks must be a list")
            return [sync.Published.from_json(b) for b in blocks]
        except ValueError as exc:
            raise ManifestCorrupt(f"lessons/{lesson.id}.manifest.json: remote.import/notion."
                                  f"blocks is malformed ({exc}); restore the manifest from git"
                                  ) from None

    def _create(self, api: Api, lesson: Lesson, target: Mapping[str, Any], props_key: str,
                record: Record | None) -> dict[str, Any]:
        found = self._lookup(api, lesson, target)
        if found is None:
            props, warnings = self.properties(api, lesson, target["schema"])
            for warning in warnings:
                self._warn(warning)
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    found = api.call("create page", api.sdk.pages.create,
                                     parent={"type": "data_source_id",
                                             "data_source_id": target["id"]},
                                     properties=props, idempotent=False, **_icon_cover(lesson))
                    break
                except LostWrite as lost:
                    found = self._lookup(api, lesson, target)
                    if found is not None:
                        break
                    if LESSON_ID_PROPERTY not in {k.lower() for k in target["schema"]}:
                        raise api.fail(f"{lost.message}; the page may exist: add a rich-text "
                                       "'Lesson ID' property to the data source so esl-build "
                                       "can find it again, then run again",
                                       retryable=True) from None
                    api.retry_pause(attempt)
            if found is None:
                raise api.fail("create page: no answer after several tries", retryable=True)
            outputs: dict[str, Any] = {"pageId": str(found["id"]), "url": found.get("url"),
                                       "dataSource": target["id"], "props": props_key,
                                       "blocks": []}
        else:  # a page made by a run whose answer or manifest write was lost: adopt it
            outputs = {"pageId": str(found["id"]), "url": found.get("url"),
                       "dataSource": target["id"]}
        if record:
            record(dict(outputs))
        return outputs

    def _lookup(self, api: Api, lesson: Lesson, target: Mapping[str, Any]
                ) -> dict[str, Any] | None:
        name = next((n for n in target["schema"] if n.lower() == LESSON_ID_PROPERTY), None)
        if name is None or target["schema"][name] != "rich_text":
            return None
        answer = api.call("find page", api.sdk.data_sources.query, target["id"],
                          filter={"property": name, "rich_text": {"equals": lesson.id}})
        pages = [p for p in answer.get("results", []) if not p.get("in_trash")]
        return pages[0] if pages else None

    def _replace_body(self, api: Api, page_id: str) -> None:
        """Delete what a page holds (a predecessor's page, adopted once)."""
        for block in sync.Sender(api).list(page_id):
            sync._delete(api, str(block["id"]))

    def _read(self, api: Api, page: Mapping[str, Any], known: Mapping[str, Any],
              base: list[sync.Published], nodes: tuple[Node, ...]) -> dict[str, sync.Seen]:
        """Notion's state of our blocks: all of them when someone else edited the page since
        our last write, else only those the merge is about to change."""
        edited_by = (page.get("last_edited_by") or {}).get("id")
        others = (page.get("last_edited_time") != known.get("stamp")
                  or edited_by != known.get("user"))
        seen: dict[str, sync.Seen] = {}
        if others:
            ours = {b.id for b in sync.walk(base)}
            sender = sync.Sender(api)
            parents = [known["pageId"]] + [b.id for b in sync.walk(base) if b.children]
            listed: set[str] = set()
            for parent in parents:
                if parent != known["pageId"] and parent not in listed:
                    continue  # under a block that is gone
                for block in sender.list(parent):
                    listed.add(str(block["id"]))
                    if str(block["id"]) in ours:
                        seen[str(block["id"])] = sync.Seen(block)
            for block_id in ours - set(seen):
                seen[block_id] = sync.Seen(None)
            return seen
        for block_id in sync.touched(sync.merge(base, nodes, seen)):
            block = api.call("read block", api.sdk.blocks.retrieve, block_id)
            seen[block_id] = sync.Seen(None if block.get("in_trash") or block.get("archived")
                                       else block)
        return seen

    def _merge(self, lesson: Lesson, base: list[sync.Published], nodes: tuple[Node, ...],
               seen: dict[str, sync.Seen], api: Api) -> list[sync.Slot]:
        """The merge's plan for the page; a conflict stops here, before any write."""
        slots = sync.merge(base, nodes, seen, self.config.on_conflict)
        conflicts = [s for slot in slots for s in slot.walk() if s.action == "conflict"]
        if conflicts:
            raise api.fail(_conflict_message(lesson, conflicts))
        for kept in (s for slot in slots for s in slot.walk()):
            if kept.action in ("kept", "gone") and kept.node is not None and \
                    (kept.base is None or kept.base.id in seen):
                shown = sync.text_of(kept.notion) if kept.notion else "(deleted in Notion)"
                self._warn(f"import:{lesson.id}: {lesson.path}:{kept.node.line}: kept the "
                           f"teacher's version of this {kept.node.type} in Notion: {shown!r}; "
                           "change the Markdown to match it")
        return slots

    # -- audio ------------------------------------------------------------------------------
    def link_audio(self, page: dict[str, Any], audio_url: str,
                   known: dict[str, Any] | None, *,
                   local_file: Callable[[], Path] | None = None) -> dict[str, Any]:
        """Put an audio block for ``audio_url`` at the top of the study text (replacing
        only the one we placed before) and fill the ``Audio`` property if the schema has
        one. A URL Notion cannot fetch (local storage) is skipped with a warning;
        ``local_file`` is not used (Notion plays audio from a public URL)."""
        lesson_id = str(page.get("lesson") or page.get("pageId"))
        if not audio_url.startswith(("https://", "http://")):
            self._warn(f"add-audio:{lesson_id}: {audio_url} is a local file, which Notion "
                       "cannot play; skipped (use S3 storage for a public URL)")
            return {"url": audio_url, "pageId": page.get("pageId"),
                    "skipped": "no public URL", "requests": 0}
        api = self.api(lesson_id, "add-audio")
        block = {"type": "external", "external": {"url": audio_url}}
        known = known or {}
        block_id = known.get("blockId") if known.get("pageId") == page.get("pageId") else None
        if block_id and known.get("url") == audio_url:
            return {**known, "requests": 0}
        placed = False
        if block_id:
            try:
                api.call("update audio block", api.sdk.blocks.update, block_id, audio=block)
                placed = True
            except PublishError as error:
                if "archived" not in str(error) and "Could not find" not in str(error):
                    raise
        if not placed:
            parent = page.get("studyText") or page["pageId"]
            made = sync.Sender(api).append(parent, [_audio_node(audio_url)], start=True)
            block_id = made[0].id
        if page.get("dataSource"):
            schema = self.targets.schema(api, str(page["dataSource"]))
        elif self.targets.default:  # recorded before targets were per student
            schema = self.targets.resolve(api, self.targets.default)["schema"]
        else:
            schema = {}
        name = next((n for n, kind in schema.items()
                     if n.lower() == AUDIO_PROPERTY and kind == "url"), None)
        if name:
            api.call("update page properties", api.sdk.pages.update, page["pageId"],
                     properties={name: {"url": audio_url}})
        return {"blockId": block_id, "url": audio_url, "pageId": page.get("pageId"),
                "requests": api.requests}

    # -- durability -------------------------------------------------------------------------
    def durable(self, outputs: dict[str, Any]) -> bool:
        """Trusted: checking would cost a request (a deleted page is found by the next sync)."""
        return True

    def watched(self, outputs: dict[str, Any]) -> tuple[str, ...]:
        return ()


def study_text_id(tree: list[sync.Published]) -> str | None:
    """The id of the study-text toggle in the published tree."""
    return next((b.id for b in sync.walk(tree) if b.role == "study_text"), None)


def _audio_node(url: str) -> Node:
    from esl_build.notion.render import node

    return node("audio", {"type": "external", "external": {"url": url}})


def _span(text: str) -> Any:
    from esl_build.lesson.model import Span

    return Span(text)


def _frontmatter_key(lesson: Lesson) -> dict[str, Any]:
    fm = lesson.frontmatter
    return {"title": fm.title, "student": fm.student, "level": fm.level,
            "topic": list(fm.topic), "icon": fm.icon, "cover": fm.cover, "id": lesson.id,
            "properties": {k: str(v) for k, v in sorted(fm.properties.items())}}


def _icon_cover(lesson: Lesson) -> dict[str, Any]:
    fm = lesson.frontmatter
    extra: dict[str, Any] = {}
    if fm.icon:
        extra["icon"] = {"type": "emoji", "emoji": fm.icon}
    if fm.cover:
        extra["cover"] = {"type": "external", "external": {"url": fm.cover}}
    return extra


def _typed(kind: str, value: Any) -> Any:
    """A frontmatter value as a Notion property value of ``kind``, or None."""
    items = value if isinstance(value, list | tuple) else [value]
    text = ", ".join(str(v) for v in items)
    if kind in ("rich_text", "title"):
        return text_field((_span(text),))
    if kind in ("select", "status"):
        return {"name": str(items[0]).replace(",", " ")[:100]}
    if kind == "multi_select":  # Notion refuses commas in option names: they separate options
        names = [part.strip() for v in items for part in str(v).split(",") if part.strip()]
        return [{"name": n[:100]} for n in dict.fromkeys(names)][:100]
    if kind in ("url", "email", "phone_number"):
        return str(items[0])
    if kind == "number":
        try:
            return float(items[0])
        except (TypeError, ValueError):
            return None
    if kind == "checkbox":
        return bool(items[0]) if not isinstance(items[0], str) else \
            items[0].strip().lower() in ("1", "true", "yes")
    if kind == "date":
        return {"start": str(items[0])}
    return None


def _conflict_message(lesson: Lesson, conflicts: list[sync.Slot]) -> str:
    lines = [f"{len(conflicts)} block(s) changed both in the lesson and in Notion; nothing "
             "was written to this page:"]
    for slot in conflicts:
        where = f"{lesson.path}:{slot.node.line}" if slot.node else lesson.path
        made = slot.node or slot.base
        kind = made.type if made else "block"
        block = f" (block {slot.base.id})" if slot.base else ""
        ours = sync.text_of(slot.node.block()) if slot.node else "(removed from the lesson)"
        theirs = sync.text_of(slot.notion) if slot.notion else "(deleted in Notion)"
        lines += [f"  {where}: {kind}{block}", f"    lesson: {ours}", f"    Notion: {theirs}"]
    task = f"import:{lesson.id}"
    lines += ["  Ways on:",
              f"    take the lesson's version:  esl-build build --force {task}",
              f"                                (doit: NOTION_ON_CONFLICT=force doit {task})",
              f"    keep Notion's version:      esl-build build --keep-notion {task}",
              f"                                (doit: NOTION_ON_CONFLICT=keep-notion doit {task})",
              f"    or edit {lesson.path} to match Notion and build again"]
    return "\n".join(lines)
