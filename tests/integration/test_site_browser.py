"""The built site in a real browser: headless Chromium opens the bundled lessons' site, served
from a copy of build/site on 127.0.0.1, and a reader's clicks work.

Chromium is driven over the DevTools protocol through ``--remote-debugging-pipe`` (JSON
messages ending in NUL on file descriptors 3 and 4): no websocket package, no debugging port,
no network. Screenshots of the index and a lesson page go to the test's temporary folder, and
also to ``$ESL_BUILD_SCREENSHOTS/screenshot-{index,lesson}.png`` when that variable is set
(``ESL_BUILD_SCREENSHOTS=docs python -m pytest tests/integration/test_site_browser.py``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from esl_build.testing.repo import LessonsRepo

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe")
TIMEOUT = 30.0

pytestmark = [pytest.mark.slow,  # a build and a browser: about 15 s
              pytest.mark.skipif(CHROMIUM is None,
                                 reason="chromium not installed (apt-get install chromium)")]


class Browser:
    """One headless Chromium and one tab, spoken to over the DevTools pipe."""

    def __init__(self, binary: str, profile: Path):
        to_browser, self._commands = os.pipe()
        self._replies, from_browser = os.pipe()

        def wire() -> None:  # in the child: the pipe ends become fds 3 (read) and 4 (write)
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        # preexec_fn, not pass_fds: Chromium wants the pipe ends at fds 3 and 4 exactly.
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=wire, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1100, "height": 1300, "deviceScaleFactor": 1, "mobile": False})

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)  # type: ignore[no-any-return]

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]  # type: ignore[no-any-return]
            self._events.append(reply)

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A command to the tab."""
        return self.call(method, params, self.session)

    def wait_for(self, event: str) -> dict[str, Any]:
        while True:
            for i, message in enumerate(self._events):
                if message.get("method") == event:
                    return self._events.pop(i)
            self._events.append(self._read())

    def open(self, url: str) -> None:
        self._events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True, "timeout": TIMEOUT * 1000})
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (scrolled into view first)."""
        x, y = self.eval(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: "center"}}); const r = e.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def screenshot(self, path: Path, *, width: int, height: int, top: str = "") -> None:
        """A ``width`` × up to ``height`` PNG of the page, from the element that the JavaScript
        expression ``top`` gives, or from the top."""
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        y = self.eval(f"""(() => {{ const e = {top};
            return e ? Math.max(0, e.getBoundingClientRect().top + window.scrollY - 16) : 0;
            }})()""") if top else 0
        page = self.eval("document.documentElement.scrollHeight")
        clip = {"x": 0, "y": y, "width": width, "height": min(height, page - y), "scale": 1}
        data = self.send("Page.captureScreenshot", {"format": "png", "clip": clip,
                                                    "captureBeyondViewport": True})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):  # already gone
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """The bundled lessons built with the embedded defaults; a copy of build/site on its own,
    served on 127.0.0.1; (its base URL, the lesson ids)."""
    work = tmp_path_factory.mktemp("browser")
    repo = LessonsRepo(work / "repo")
    shutil.copytree(ROOT / "lessons", repo.root / "lessons",
                    ignore=shutil.ignore_patterns("*.manifest.json"))
    shutil.copytree(ROOT / "configs", repo.root / "configs")
    shutil.copyfile(ROOT / "dodo.py", repo.root / "dodo.py")
    run = repo.doit("-n", "2", "-P", "thread")
    assert run.returncode == 0, run.stdout + run.stderr
    lessons = sorted(p.relative_to(repo.root / "lessons").with_suffix("").as_posix()
                     for p in (repo.root / "lessons").rglob("*.md"))
    shared = work / "shared-site"
    shutil.copytree(repo.root / "build/site", shared)
    shutil.rmtree(repo.root)  # the site must not need the project it was built in
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_QuietHandler, directory=str(shared)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", lessons
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    assert CHROMIUM is not None
    chromium = Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


def screenshots(tmp_path: Path) -> list[Path]:
    """Where a screenshot goes: the test's folder, and $ESL_BUILD_SCREENSHOTS if set."""
    folders = [tmp_path]
    if os.environ.get("ESL_BUILD_SCREENSHOTS"):
        folders.append(Path(os.environ["ESL_BUILD_SCREENSHOTS"]))
    return folders


def player_duration(browser: Browser) -> float:
    """Load the lesson player's audio (it is ``preload="none"``) and return its duration."""
    return float(browser.eval("""new Promise((resolve, reject) => {
        const audio = document.querySelector("#esl-build-audio audio");
        audio.addEventListener("loadedmetadata", () => resolve(audio.duration));
        audio.addEventListener("error", () => reject(new Error("audio: " + audio.error.code)));
        audio.load();
    })"""))


def test_the_index_links_every_lesson_and_every_link_loads(site, browser, tmp_path):
    base, lessons = site
    browser.open(base + "index.html")
    links = browser.eval("[...document.querySelectorAll('tbody tr td:first-child a')]"
                         ".map(a => a.href)")
    assert sorted(links) == [f"{base}{lesson_id}.html" for lesson_id in lessons]
    statuses = browser.eval("Promise.all([...document.querySelectorAll('a[href], audio[src]')]"
                            ".map(e => fetch(e.href || e.src).then(r => r.status)))")
    assert statuses and set(statuses) == {200}
    for folder in screenshots(tmp_path):
        browser.screenshot(folder / "screenshot-index.png", width=1400, height=900)
    assert (tmp_path / "screenshot-index.png").stat().st_size > 10_000


def test_every_lesson_page_plays_its_mp3(site, browser):
    base, lessons = site
    for lesson_id in lessons:
        browser.open(f"{base}{lesson_id}.html")
        assert player_duration(browser) > 1, lesson_id
        assert browser.eval("document.querySelector('#esl-build-audio audio').currentSrc") \
            .startswith(base + "audio/" + lesson_id + "/")


def test_toggles_open_when_clicked(site, browser, tmp_path):
    base, lessons = site
    browser.open(f"{base}{lessons[0]}.html")
    closed = browser.eval("document.querySelectorAll('details:not([open])').length")
    assert closed > 0
    browser.eval("document.querySelectorAll('details:not([open])').forEach("
                 "(d, i) => d.setAttribute('data-test-id', i))")
    for i in range(closed):
        browser.click(f"details[data-test-id='{i}'] > summary")
        assert browser.eval(f"document.querySelector(\"details[data-test-id='{i}']\").open")
    study = "details.study-text"
    assert browser.eval(f"document.querySelector('{study}').open")
    browser.click(f"{study} > summary")
    assert not browser.eval(f"document.querySelector('{study}').open")
    browser.open(f"{base}{lessons[0]}.html")  # as a reader sees it, the audio's length known
    player_duration(browser)
    player_section = ("[...document.querySelectorAll('h2')].filter(h => h.compareDocumentPosition"
                      "(document.getElementById('esl-build-audio')) & "
                      "Node.DOCUMENT_POSITION_FOLLOWING).pop()")  # the heading above the player
    for folder in screenshots(tmp_path):
        browser.screenshot(folder / "screenshot-lesson.png", width=1000, height=1100,
                           top=player_section)
    assert (tmp_path / "screenshot-lesson.png").stat().st_size > 10_000
