"""The HTML publisher: each lesson becomes a static page in the site folder (embedded default).

``publish`` renders ``<site_dir>/<lesson id>.html`` with the jinja2 templates in
``esl_build/templates/`` (autoescaped, so lesson text can never inject markup), from the very
blocks the Notion publisher sends (``esl_build.notion.render``): one renderer decides what a
lesson becomes, so the site and the Notion page cannot drift apart (a construct rendered for
Notion is on the site too; a numbered list counts from 1, as Notion's API has no start). Pages are
deterministic: no timestamps and no absolute paths, so the same lesson, preset and template
version always give the same bytes, and every write is atomic (temp file + ``os.replace``).

The site can be shared on its own (copied, zipped, put on any static host): every link in it is
relative, and audio whose URL is not http(s) (local storage) is copied into the site, to
``<site_dir>/audio/<lesson id>/<sha256[:16]>.mp3``, by ``link_audio``. Audio at an http(s) URL
(a real bucket) is linked as it is.

The lesson audio lives in a marker region, ``<!--esl-build:audio-->…<!--/esl-build:audio-->``,
placed just before the study text (or, on a page without study text, inserted after the title
by the first ``link_audio``). ``link_audio`` rewrites only that region, so linking twice gives
the same bytes and a new URL replaces the old player.

Publishing again keeps the player ``link_audio`` put there, as a Notion page updated in place
keeps its audio block: a content edit does not make add-audio run again. Only the marker region
is carried over from the old file; a page rendered from scratch has no player until
``link_audio`` (``durable`` then reports the add-audio output missing).

Colours are the blocks' Notion colours (``yellow``, ``purple_background``, ...; the renderer
applies the preset), mapped to CSS classes (``fg-yellow``, ``bg-purple``): a block's colour,
or the colour all its text shares, goes on the element holding the text (a heading, even in
a toggle's summary, so it never bleeds into the body; a toggle's label); a colour only some
runs have goes on those runs.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from markupsafe import Markup, escape

from esl_build.errors import ConfigInvalid, PublishError
from esl_build.files import atomic_write, contains, relative_to, shown
from esl_build.fingerprint import sha256_bytes
from esl_build.lesson.model import Span
from esl_build.notion.render import CODE_COLOUR, STUDY_TEXT_ROLE, Node
from esl_build.notion.render import render as render_blocks
from esl_build.services.protocols import PageSpec

if TYPE_CHECKING:
    import jinja2

TEMPLATE_VERSION = 5
"""Bump whenever the templates or this module change what a page looks like (fingerprints)."""

AUDIO_BLOCK_ID = "esl-build-audio"
AUDIO_START, AUDIO_END = "<!--esl-build:audio-->", "<!--/esl-build:audio-->"
_AUDIO_START_BYTES, _AUDIO_END_BYTES = AUDIO_START.encode(), AUDIO_END.encode()
_AUDIO_REGION = re.compile(re.escape(AUDIO_START) + ".*?" + re.escape(AUDIO_END), re.DOTALL)
_TITLE_END = "</header>"  # the lesson header is the page's only <header>; text is escaped

STAGES = ("validate", "import", "tts", "upload", "add-audio")
_STATUS_TEXT = {"done": "✓", "stale": "stale", "failed": "failed", "missing": "–"}

# Notion's colours in light mode: (text colour, background colour).
PALETTE: dict[str, tuple[str, str]] = {
    "gray": ("#787774", "#f1f1ef"), "brown": ("#9f6b53", "#f4eeee"),
    "orange": ("#d9730d", "#fbecdd"), "yellow": ("#cb912f", "#fbf3db"),
    "green": ("#448361", "#edf3ec"), "blue": ("#337ea9", "#e7f3f8"),
    "purple": ("#9065b0", "#f4f0f7"), "pink": ("#c14c8a", "#f9eef3"),
    "red": ("#d44c47", "#fdebec"),
}
_SAFE_SCHEMES = ("http", "https", "mailto")
_LINKABLE_SCHEMES = ("http", "https", "file")
_REMOTE_AUDIO = ("http", "https")  # linked as they are; any other audio is copied into the site
_AUDIO_DIR = "audio"               # the site's folder of audio copies


@dataclass(frozen=True)
class IndexEntry:
    """One row of the site index. ``stages`` maps stage → "done" | "stale" | "failed" | "missing".

    ``page_url`` is what import recorded and ``audio_url`` what add-audio linked (its ``src``):
    a path relative to the project root, or an absolute URL.
    """

    id: str
    title: str
    student: str
    level: str
    topic: str
    page_url: str | None
    audio_url: str | None
    stages: Mapping[str, str]
    failure: str = ""  # why its earliest failed stage failed ("validate: lessons/…:12: …")


@dataclass(frozen=True, slots=True)
class _Run(Span):
    """One rich-text item of a Notion block, for the templates: the lesson's own ``Span``
    annotations, and its colour class."""

    classes: str = ""  # its colour, when the runs around it have another


@dataclass(frozen=True)
class _Node:
    """A rendered Notion block prepared for the templates: lists grouped, anchors and colour
    classes set. ``kind`` is the block's type, or ul/ol/li, or study_text."""

    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)  # the block's JSON, no children
    rich: tuple[_Run, ...] = ()
    children: tuple[_Node, ...] = ()
    anchor: str = ""
    classes: str = ""
    cells: tuple[tuple[tuple[_Run, ...], ...], ...] = ()  # a table's rows
    marker: bool = False      # this study text carries the audio marker region

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.rich)

    @property
    def url(self) -> str:
        return str((self.payload.get("external") or {}).get("url") or "")


@dataclass
class _PageState:
    """What one render collects while walking the blocks."""

    toc: list[tuple[int, str, str]] = field(default_factory=list)  # (level, anchor, text)
    used: set[str] = field(default_factory=lambda: {AUDIO_BLOCK_ID, "top"})
    marker_placed: bool = False

    def anchor(self, text: str) -> str:
        """A stable, unique id for a heading: its slug, then ``-2``, ``-3``... on repeats."""
        base = re.sub(r"[\W_]+", "-", text.casefold()).strip("-") or "section"
        anchor, n = base, 1
        while anchor in self.used:
            n += 1
            anchor = f"{base}-{n}"
        self.used.add(anchor)
        return anchor


def colour_class(colour: str | None) -> str:
    """The CSS class of a Notion colour name: ``purple`` → ``fg-purple``, ``yellow_background``
    → ``bg-yellow``, ``default``/None → ``""``. Unknown names raise ``ConfigInvalid``."""
    if not colour or colour == "default":
        return ""
    base, _, suffix = colour.partition("_")
    if base not in PALETTE or suffix not in ("", "background"):
        raise ConfigInvalid(f"unknown Notion colour {colour!r} in the preset; use one of "
                            f"default, {', '.join(PALETTE)} or their _background variants")
    return f"bg-{base}" if suffix else f"fg-{base}"


def _safe_url(url: str | None) -> str:
    """``url`` when it is http(s), mailto or relative; "" for anything that could run script."""
    if not url:
        return ""
    scheme = urlsplit(url.strip()).scheme.lower()
    return url.strip() if scheme in ("", *_SAFE_SCHEMES) else ""


def _href(target: str, from_dir: str) -> str:
    """A link to ``target`` from a page in ``from_dir`` (both relative to the project root, or
    both absolute when the site lies outside the project).

    Absolute http(s)/file URLs are kept as they are; paths become relative hrefs.
    """
    scheme = urlsplit(target).scheme.lower()
    if scheme in _LINKABLE_SCHEMES:
        return target
    if scheme or target.startswith("/") != from_dir.startswith("/"):
        raise PublishError(f"cannot link {target!r}: expected an http(s) URL or a path "
                           "relative to the project root")
    return quote(posixpath.relpath(target, from_dir or "."))


def _place_region(text: str, region: str) -> str:
    """``text`` with its audio region replaced by ``region`` (or inserted after the title)."""
    if _AUDIO_REGION.search(text):
        return _AUDIO_REGION.sub(lambda _: region, text, count=1)
    return text.replace(_TITLE_END, f"{_TITLE_END}\n{region}", 1)


def _runs(items: Sequence[Mapping[str, Any]]) -> tuple[tuple[_Run, ...], str]:
    """A rich-text array as runs, and the colour class they all share ("" if none): a shared
    colour goes on the element holding the text (a heading, a toggle's label), as Notion
    shows it, rather than on every run."""
    colours = {(item.get("annotations") or {}).get("color") or "default" for item in items}
    shared = colours.pop() if len(colours) == 1 else "default"
    runs = []
    for item in items:
        ann = item.get("annotations") or {}
        text = item.get("text") or {}
        colour = ann.get("color") or "default"
        if ann.get("code") and colour == CODE_COLOUR:
            colour = shared  # the stylesheet colours code as Notion does
        runs.append(_Run(str(text.get("content", "")), bool(ann.get("bold")),
                         bool(ann.get("italic")), bool(ann.get("strikethrough")),
                         bool(ann.get("code")), (text.get("link") or {}).get("url"),
                         "" if colour == shared else colour_class(colour)))
    return tuple(runs), colour_class(shared)


def _view(nodes: Sequence[Node], state: _PageState) -> tuple[_Node, ...]:
    """Prepare sibling blocks for the templates (see ``_Node``)."""
    out: list[_Node] = []
    for item in nodes:
        if item.type in ("bulleted_list_item", "numbered_list_item"):
            runs, classes = _runs(item.payload.get("rich_text") or [])
            li = _Node("li", item.payload, runs, _view(item.children, state), classes=classes)
            kind = "ol" if item.type == "numbered_list_item" else "ul"
            last = out[-1] if out else None
            if last is not None and last.kind == kind:
                out[-1] = _Node(kind, children=(*last.children, li))
            else:
                out.append(_Node(kind, children=(li,)))
        else:
            out.append(_view_one(item, state))
    return tuple(out)


def _view_one(item: Node, state: _PageState) -> _Node:
    payload = item.payload
    runs, classes = _runs(payload.get("rich_text") or payload.get("caption") or [])
    kind = STUDY_TEXT_ROLE if item.role == STUDY_TEXT_ROLE else item.type
    if kind.startswith("heading_"):
        level = int(kind[-1])
        text = "".join(run.text for run in runs)
        anchor = state.anchor(text)
        state.toc.append((level, anchor, text))
        classes = " ".join(c for c in (colour_class(payload.get("color")), classes) if c)
        return _Node(kind, payload, runs, _view(item.children, state), anchor, classes)
    if kind == STUDY_TEXT_ROLE:
        marker, state.marker_placed = not state.marker_placed, True
        return _Node(kind, payload, runs, _view(item.children, state), marker=marker)
    cells = tuple(tuple(_runs(cell)[0] for cell in row.payload.get("cells") or [])
                  for row in item.children) if kind == "table" else ()
    children = () if kind == "table" else _view(item.children, state)
    return _Node(kind, payload, runs, children, classes=classes, cells=cells)


class HtmlPublisher:
    """Publishes lessons as static HTML pages under ``site_dir`` (no credentials, no network)."""

    name = "html"
    remote = False

    def __init__(self, site_dir: Path, project_root: Path):
        self.site_dir = Path(site_dir)
        self.project_root = Path(project_root)
        self.settings: dict[str, Any] = {"templateVersion": TEMPLATE_VERSION}

    def settings_for(self, student: str) -> dict[str, Any]:
        """Every student's pages are made alike."""
        return self.settings

    @cached_property
    def _env(self) -> jinja2.Environment:
        # Built (and jinja2 imported) on first render: up-to-date checks never need it.
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(Path(__file__).parent.parent / "templates"),
            autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined)
        env.filters["safe_url"] = _safe_url
        env.globals.update(palette=PALETTE, audio_start=Markup(AUDIO_START),
                           audio_end=Markup(AUDIO_END), audio_block_id=AUDIO_BLOCK_ID)
        return env

    # -- paths ------------------------------------------------------------------------------

    def _page_path(self, lesson_id: str) -> Path:
        parts = lesson_id.split("/")
        if (not lesson_id or "\\" in lesson_id or any(p in ("", ".", "..") for p in parts)
                or lesson_id == "index"):
            raise PublishError(f"lesson id {lesson_id!r} cannot name a page in the site "
                               "(no empty or '..' parts, backslashes, or the name 'index')")
        return self.site_dir.joinpath(*parts[:-1], parts[-1] + ".html")

    def _project_path(self, path: Path) -> str:
        """``path`` relative to the project root, posix (the form recorded in manifests)."""
        return shown(path, self.project_root)

    # -- publish ----------------------------------------------------------------------------

    def render(self, spec: PageSpec) -> bytes:
        """The page of ``spec`` as bytes, without audio (what ``publish`` writes)."""
        lesson = spec.lesson
        state = _PageState()
        nodes = _view(render_blocks(lesson, spec.preset), state)
        html = self._env.get_template("page.html.j2").render(
            lesson=lesson, fm=lesson.frontmatter, nodes=nodes, toc=state.toc,
            index_href=posixpath.relpath("index.html", posixpath.dirname(lesson.id) or "."))
        return html.encode()

    def publish(self, spec: PageSpec, known: dict[str, Any] | None, *,
                record: object = None) -> dict[str, Any]:
        """Write the lesson's page (no audio; see the module docstring). ``record`` is not
        needed: the page is one atomic write.

        Returns ``pageId`` (``html:<lesson id>``, or the one in ``known``), ``url`` (the page
        path relative to the project root) and ``sha256`` (of the written bytes).
        """
        path = self._page_path(spec.lesson.id)
        data = self.render(spec)
        linked = _AUDIO_REGION.search(path.read_text(encoding="utf-8")) if path.is_file() else None
        if linked and AUDIO_BLOCK_ID in linked.group(0):
            # Like a Notion page updated in place, the page keeps the player add-audio put
            # there: new content, same audio, and add-audio need not run again.
            data = _place_region(data.decode(), linked.group(0)).encode()
        self._write(path, data)
        page_id = known["pageId"] if known and known.get("pageId") else f"html:{spec.lesson.id}"
        return {"pageId": page_id, "url": self._project_path(path),
                "sha256": sha256_bytes(data)}

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        # Unchanged files are not rewritten: their mtime stays put for servers and watchers.
        if path.is_file() and path.read_bytes() == data:
            return
        try:
            atomic_write(path, data)
        except OSError as exc:
            raise PublishError(f"cannot write {path}: {exc.strerror}") from None

    # -- audio ------------------------------------------------------------------------------

    def _audio_region(self, href: str, url: str) -> str:
        macros = self._env.get_template("_macros.html.j2").module
        player = macros.audio_player  # type: ignore[attr-defined]
        return f"{AUDIO_START}{player(href, AUDIO_BLOCK_ID, url)}{AUDIO_END}"

    def _lesson_of(self, page_url: str) -> str:
        """The lesson id of a page of the site: ``build/site/b1/unit1.html`` → ``b1/unit1``."""
        relative = self._site_relative(page_url)
        if relative is None or not relative.endswith(".html"):
            raise PublishError(f"page {page_url} is not a page of the site "
                               f"{self._project_path(self.site_dir)}; run import again")
        return relative.removesuffix(".html")

    def _site_relative(self, path: str) -> str | None:
        """``path`` (relative to the project root) relative to the site, or None when it does
        not name a place inside the site (paths come from manifests: untrusted)."""
        if ".." in path.replace("\\", "/").split("/"):
            return None
        relative = relative_to(os.path.join(self.project_root, path), self.site_dir)
        return relative if relative not in (None, ".") else None

    def _copy_audio(self, lesson_id: str, local_file: Callable[[], Path]) -> Path:
        """Copy the lesson's MP3 into the site, named by its content; return the copy."""
        try:
            data = local_file().read_bytes()
        except OSError as exc:
            raise PublishError(f"cannot copy the audio of {lesson_id} into the site: "
                               f"{exc.strerror}") from None
        copy = self.site_dir.joinpath(_AUDIO_DIR, *lesson_id.split("/"),
                                      f"{sha256_bytes(data)[:16]}.mp3")
        self._write(copy, data)
        return copy

    def _prune_audio(self, lesson_id: str, keep: Path | None) -> None:
        """Remove the lesson's audio copies other than ``keep``: the site holds what it plays.

        Only files directly in the lesson's folder: ``audio/b1/`` holds lesson ``b1``'s copies,
        ``audio/b1/unit1/`` those of ``b1/unit1``."""
        folder = self.site_dir.joinpath(_AUDIO_DIR, *lesson_id.split("/"))
        for old in folder.glob("*.mp3"):
            if old != keep:
                old.unlink(missing_ok=True)

    def link_audio(self, page: dict[str, Any], audio_url: str, known: dict[str, Any] | None,
                   *, local_file: Callable[[], Path] | None = None) -> dict[str, Any]:
        """Put the player for ``audio_url`` in the page's audio region, replacing any old one.

        ``page`` is the import outputs. An http(s) ``audio_url`` is linked as it is; any other
        (local storage's path or ``file://`` URL) is copied into the site from ``local_file()``
        (the lesson's MP3 on disk) as ``audio/<lesson id>/<sha256[:16]>.mp3`` and linked
        relatively, so the site works wherever it is copied. Returns ``blockId``, ``url``
        (``audio_url``), ``src`` (what the player plays: the copy's path relative to the
        project root, or the URL), ``page`` (the page path) and ``sha256`` (of the page).
        """
        path = self.project_root / page["url"]
        if not path.is_file():
            raise PublishError(f"page {page['url']} of {page.get('pageId', '?')} is missing; "
                               "run import again before add-audio")
        lesson_id = self._lesson_of(page["url"])
        if not contains(self.site_dir, path):  # inside the site by name, but through a symlink
            raise PublishError(f"page {page['url']!r} of {page.get('pageId', '?')} leads out "
                               f"of {self._project_path(self.site_dir)}/; run import again")
        scheme = urlsplit(audio_url).scheme.lower()
        copy = None
        if scheme in _REMOTE_AUDIO:
            src = audio_url
        elif scheme not in ("", "file") or local_file is None:
            raise PublishError(f"cannot link {audio_url!r} into {page['url']}: expected an "
                               "http(s) URL, or local audio to copy into the site")
        else:
            copy = self._copy_audio(lesson_id, local_file)
            src = self._project_path(copy)
        region = self._audio_region(_href(src, posixpath.dirname(page["url"])), audio_url)
        text = _place_region(path.read_text(encoding="utf-8"), region)
        if region not in text:
            raise PublishError(f"page {page['url']} has neither an audio region nor a title "
                               "header; run import again")
        data = text.encode()
        self._write(path, data)
        self._prune_audio(lesson_id, copy)
        return {"blockId": AUDIO_BLOCK_ID, "url": audio_url, "src": src, "page": page["url"],
                "sha256": sha256_bytes(data)}

    # -- durability -------------------------------------------------------------------------

    def _audio_copy(self, outputs: dict[str, Any]) -> str | None:
        """The file of the audio copy named by add-audio outputs, or None for an http(s) URL."""
        src = outputs.get("src")
        if not isinstance(src, str) or urlsplit(src).scheme.lower() in _REMOTE_AUDIO:
            return None
        return os.path.join(self.project_root, src)

    def durable(self, outputs: dict[str, Any]) -> bool:
        """Import outputs: the page file exists. Add-audio outputs (with ``blockId``): the page
        named by ``page`` exists and still holds the player for ``url``, and the audio copy it
        plays (``src``) is still in the site."""
        if "blockId" not in outputs:
            return os.path.isfile(os.path.join(self.project_root, outputs["url"]))
        page = outputs.get("page")
        page_url = page.get("url") if isinstance(page, dict) else page
        src = outputs.get("src")
        if not page_url or not isinstance(src, str):
            return False  # src: records made before audio was copied into the site
        copy = self._audio_copy(outputs)
        if copy is not None and not (self._site_relative(src) and os.path.isfile(copy)):
            return False
        try:
            with open(os.path.join(self.project_root, page_url), "rb") as page_file:
                data = page_file.read()
        except OSError:
            return False
        start = data.find(_AUDIO_START_BYTES)
        region = data[start:data.find(_AUDIO_END_BYTES, start)] if start >= 0 else b""
        return f'data-audio-url="{escape(outputs["url"])}"'.encode() in region

    def watched(self, outputs: dict[str, Any]) -> tuple[str, ...]:
        """The files ``durable`` reads: the page (import or add-audio outputs) and the audio
        copy (add-audio outputs)."""
        page = outputs.get("page") if "blockId" in outputs else outputs.get("url")
        files = (os.path.join(self.project_root, page),) if isinstance(page, str) else ()
        copy = self._audio_copy(outputs) if "blockId" in outputs else None
        return (*files, copy) if copy else files

    # -- index ------------------------------------------------------------------------------

    def refresh_index(self, entries: Sequence[IndexEntry]) -> None:
        """Write ``<site_dir>/index.html``: every lesson with its stage statuses, by id."""
        site = self._project_path(self.site_dir)
        rows = []
        for entry in sorted(entries, key=lambda e: e.id):
            statuses = [(stage, entry.stages.get(stage, "missing")) for stage in STAGES]
            unknown = [status for _, status in statuses if status not in _STATUS_TEXT]
            if unknown:
                raise ValueError(f"{entry.id}: unknown stage status {unknown[0]!r}")
            rows.append({
                "entry": entry,
                "page_href": _href(entry.page_url, site) if entry.page_url else "",
                "audio_href": _href(entry.audio_url, site) if entry.audio_url else "",
                "statuses": [(stage, status, _STATUS_TEXT[status]) for stage, status in statuses],
            })
        html = self._env.get_template("index.html.j2").render(rows=rows, stages=STAGES)
        self._write(self.site_dir / "index.html", html.encode())

