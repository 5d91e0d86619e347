"""Notion publishing benchmark: requests and blocks per lesson, and wall time at 3 requests/s.

Run from the repository root::

    python -m bench.bench_notion               # 20 lessons at the fake's 3 requests/s (~3 min)
    python -m bench.bench_notion --lessons 5   # quicker

Everything runs against ``esl_build.testing.fake_notion.FakeNotion`` through the real
``notion-client`` SDK over HTTP. It measures:

1. per lesson (the bundled lessons, then N generated variants of them): requests sent and
   blocks created for the first publish, a no-op build (doit, through ``esl-build``'s
   tasks: nothing stale, nothing sent) and a one-line edit of the study text;
2. beside them, the predecessor's cost for the same work, computed from its algorithm
   (notion.md §2–§4: every run creates a new page: ``GET /databases`` twice, the student
   search, ``POST /pages`` with up to 50 top-level blocks, appends of 50 more, then the
   colour pass (list the page and each toggle, one PATCH per coloured heading or toggle)
   and add-audio (two lists, one append)); its blocks created are every block, every run;
3. wall time for N lessons published by 4 threads sharing one token at the fake's
   3 requests/s (bursts of 10, like Notion), beside the bound ``requests ÷ 3``.

Targets: one-line edit ≤ 6 requests and 0 blocks created; wall time ≤ 1.2 × the bound.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.rows import Row, at_most, ratio_row
from esl_build.config import load_config
from esl_build.lesson import parse_lesson
from esl_build.lesson.model import Lesson
from esl_build.notion.render import Node, render
from esl_build.services.notion import NotionPublisher
from esl_build.services.protocols import PageSpec
from esl_build.settings import Settings
from esl_build.testing.fake_notion import FakeNotion
from esl_build.testing.repo import LessonsRepo

ROOT = Path(__file__).resolve().parents[1]


def variants(count: int) -> list[tuple[str, str]]:
    """``count`` lessons: the bundled ones, then copies with their own title and id."""
    sources = sorted((ROOT / "lessons").rglob("*.md"))
    out = []
    for n in range(count):
        source = sources[n % len(sources)]
        text = source.read_text(encoding="utf-8")
        lesson_id = f"bench/{source.stem}-{n}"
        out.append((lesson_id, text.replace('title: "', f'title: "({n}) ', 1)))
    return out


def parsed(lesson_id: str, text: str) -> Lesson:
    lesson, problems = parse_lesson(text, path=f"lessons/{lesson_id}.md", lesson_id=lesson_id)
    assert lesson is not None, problems
    return lesson


def one_line_edit(lesson: Lesson, text: str) -> str:
    assert lesson.study_text is not None
    line = lesson.study_text.segments[0].markdown
    return text.replace(line, line.rstrip(".!?") + ", really!", 1)


def predecessor(nodes: tuple[Node, ...]) -> tuple[int, int]:
    """(requests, blocks created) of one predecessor run for these blocks (see the module
    docstring); its reruns cost the same and leave another page."""
    top = len(nodes)
    blocks = sum(n.count() for n in nodes)
    create = 1 if top <= 50 else 1 + math.ceil(top / 50)
    lookups = 3  # databases.retrieve twice, student search
    toggles = [n for n in nodes if n.type == "toggle"]
    inner = sum(1 for t in toggles for c in t.children if c.type == "toggle")
    coloured = sum(1 for n in nodes if n.type in ("heading_2", "heading_3"))
    coloured += sum(1 for t in toggles for c in t.children if c.type == "heading_3")
    coloured += sum(1 for i, n in enumerate(nodes)
                    if n.type == "toggle" and i and nodes[i - 1].type == "heading_2")
    colour = math.ceil(top / 100) + len(toggles) + inner + coloured
    audio = 3
    return lookups + create + colour + audio, blocks + 1


def publish_all(fake: FakeNotion, specs: list[PageSpec], known: list[Any] | None,
                rate: str) -> tuple[list[dict[str, Any]], float]:
    settings = Settings.resolve(ROOT, env={**fake.env, "NOTION_RATE_LIMIT": rate})
    pub = NotionPublisher(settings.notion, warn=lambda message: None)
    start = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(pub.publish, specs, known or [None] * len(specs)))
    return results, time.monotonic() - start


def noop_build_requests() -> int:
    """Requests a second ``doit`` build of the bundled lessons sends (expected: none)."""
    with FakeNotion() as fake, tempfile.TemporaryDirectory() as tmp:
        lessons = {p.relative_to(ROOT / "lessons").as_posix()[:-3]: p.read_text()
                   for p in (ROOT / "lessons").rglob("*.md")}
        repo = LessonsRepo.create(Path(tmp) / "repo", lessons)
        env = {**fake.env, "NOTION_RATE_LIMIT": "1000"}
        assert repo.doit("-n", "2", "-P", "thread", env=env).returncode == 0
        before = len(fake.requests)
        assert repo.doit(env=env).returncode == 0
        return len(fake.requests) - before


def run(count: int) -> dict[str, Any]:
    """Every figure of the benchmark for ``count`` lessons (see the module docstring)."""
    config = load_config(ROOT / "esl_build" / "scaffold" / "configs")
    items = variants(count)
    lessons = [parsed(i, t) for i, t in items]
    specs = [PageSpec(lesson, *config.preset_for(lesson.frontmatter.student))
             for lesson in lessons]
    edited = [PageSpec(parsed(i, one_line_edit(lesson, t)),
                       *config.preset_for(lesson.frontmatter.student))
              for (i, t), lesson in zip(items, lessons, strict=True)]
    noop = noop_build_requests()
    with FakeNotion(rate=3.0, burst=10) as fake:
        first, first_wall = publish_all(fake, specs, None, "3")
        first_requests = len(fake.requests)
        created = fake.blocks_created
        second, edit_wall = publish_all(fake, edited, first, "3")
        figures = {
            "lessons": count, "pages": len(fake.pages()),
            "throttled": sum(1 for r in fake.requests if r.status == 429),
            "first_requests": first_requests, "first_blocks": created,
            "first_wall": first_wall, "noop_requests_per_lesson": noop / 3,
            "edit_requests": len(fake.requests) - first_requests,
            "edit_blocks": fake.blocks_created - created, "edit_wall": edit_wall,
            "edit_worst": max(r["requests"] for r in second)}
    old = [predecessor(render(s.lesson, s.preset)) for s in specs]
    figures["old_requests"] = statistics.mean(r for r, _ in old)
    figures["old_blocks"] = statistics.mean(b for _, b in old)
    return figures


def measure(quick: bool) -> list[Row]:
    """Rows for ``python -m bench``: per-lesson requests and blocks beside the predecessor's,
    and wall time beside the bound the rate sets."""
    f = run(1 if quick else 20)
    n = f["lessons"]
    old_r, old_b = f["old_requests"], f["old_blocks"]
    rows = [
        Row("notion", "first publish: requests/lesson", f["first_requests"] / n, old_r, "req",
            reference_label="predecessor"),
        Row("notion", "first publish: blocks/lesson", f["first_blocks"] / n, old_b, "blocks",
            reference_label="predecessor"),
        Row("notion", "no-op build: requests/lesson", f["noop_requests_per_lesson"], old_r,
            "req", "0", f["noop_requests_per_lesson"] == 0, "predecessor"),
        Row("notion", "one-line edit: requests (worst lesson)", f["edit_worst"], old_r, "req",
            "≤ 6", at_most(f["edit_worst"], 6), "predecessor"),
        Row("notion", "one-line edit: blocks created/lesson", f["edit_blocks"] / n, old_b,
            "blocks", "0", f["edit_blocks"] == 0, "predecessor"),
    ]
    for label, wall, requests in (("first publish", f["first_wall"], f["first_requests"]),
                                  ("one-line edit", f["edit_wall"], f["edit_requests"])):
        rows.append(ratio_row("notion", f"{label}: wall, {n} lessons at 3 req/s", wall,
                              requests / 3, "s", max_ratio=1.2,
                              reference_label="requests ÷ 3"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lessons", type=int, default=20)
    args = parser.parse_args()
    f = run(args.lessons)
    n = f["lessons"]
    old_r, old_b = f["old_requests"], f["old_blocks"]
    print(f"{n} lessons ({f['pages']} pages in the fake; {f['throttled']} requests answered "
          "429)\n")
    print(f"{'per lesson':28} {'esl-build':>12} {'predecessor':>12}")
    for label, ours, theirs in (
            ("first publish: requests", f["first_requests"] / n, old_r),
            ("first publish: blocks", f["first_blocks"] / n, old_b),
            ("no-op build: requests", f["noop_requests_per_lesson"], old_r),
            ("no-op build: blocks", 0.0, old_b),
            ("one-line edit: requests", f["edit_requests"] / n, old_r),
            ("one-line edit: blocks", f["edit_blocks"] / n, old_b)):
        print(f"{label:28} {ours:12.1f} {theirs:12.1f}")
    print()
    ok_wall = True
    for label, wall, requests in (("first publish", f["first_wall"], f["first_requests"]),
                                  ("one-line edit", f["edit_wall"], f["edit_requests"])):
        bound = requests / 3
        ok_wall = ok_wall and wall <= 1.2 * bound
        print(f"{label}: {requests} requests in {wall:.1f} s at 3 req/s; bound "
              f"{bound:.1f} s; ratio {wall / bound:.2f}")
    ok_edit = f["edit_worst"] <= 6 and f["edit_blocks"] == 0
    print(f"\none-line edit ≤ 6 requests (worst {f['edit_worst']}) and 0 blocks: "
          f"{'PASS' if ok_edit else 'FAIL'}")
    print(f"wall time ≤ 1.2 × bound: {'PASS' if ok_wall else 'FAIL'}")


if __name__ == "__main__":
    main()
