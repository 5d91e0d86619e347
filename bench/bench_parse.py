"""Lessons parsed and validated per second: ``python -m bench.bench_parse [SECONDS]``.

Reads ``lessons/*.md`` (recursively) when the repo has any, else the test fixture lessons in
``tests/fixtures/lessons``. Each file is parsed repeatedly for about SECONDS (default 1.0);
the figure is the median of five rounds (and the best one), in CPU time, which is steadier
than wall time on a busy machine.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from bench.rows import Row
from esl_build.lesson import parse_lesson

REPO = Path(__file__).resolve().parents[1]


def lesson_files() -> list[Path]:
    own = sorted((REPO / "lessons").rglob("*.md")) if (REPO / "lessons").is_dir() else []
    return own or sorted((REPO / "tests" / "fixtures" / "lessons").glob("*.md"))


def rate(text: str, seconds: float) -> tuple[float, float]:
    """(median, best) lessons/second over five rounds of about ``seconds / 5`` each."""
    rounds = []
    for _ in range(5):
        count, started = 0, time.process_time()
        while (elapsed := time.process_time() - started) < seconds / 5:
            parse_lesson(text, path="bench.md", lesson_id="bench")
            count += 1
        rounds.append(count / elapsed)
    return statistics.median(rounds), max(rounds)


def main(argv: list[str]) -> int:
    seconds = float(argv[0]) if argv else 1.0
    files = lesson_files()
    if not files:
        print("no lessons found", file=sys.stderr)
        return 1
    width = max(len(path.name) for path in files)
    total_bytes = total_time = 0.0
    for path in files:
        text = path.read_text("utf-8")
        per_second, best = rate(text, seconds)
        size = len(text.encode())
        total_bytes += size
        total_time += 1 / per_second
        print(f"{path.name:<{width}}  {size:>7,} bytes  {per_second:>8,.0f} lessons/s "
              f"(best round {best:,.0f})")
    print(f"{'all':<{width}}  {total_bytes / len(files):>7,.0f} bytes  "
          f"{len(files) / total_time:>8,.0f} lessons/s (mean size, harmonic mean rate)")
    return 0


def _frontmatter_rate(text: str, seconds: float) -> float:
    """Lessons per second for the floor every parser pays: YAML-loading the frontmatter."""
    import yaml

    head = text.split("\n---", 1)[0].removeprefix("---")
    count, started = 0, time.process_time()
    while (elapsed := time.process_time() - started) < seconds:
        yaml.safe_load(head)
        count += 1
    return count / elapsed


def measure(quick: bool) -> list[Row]:
    """Rows for ``python -m bench``: ms to parse and validate a lesson, beside the time the
    YAML frontmatter alone takes to load (the unavoidable part)."""
    seconds = 0.5 if quick else 2.0
    rows = []
    for path in lesson_files():
        text = path.read_text("utf-8")
        median, _ = rate(text, seconds)
        floor = _frontmatter_rate(text, seconds / 5)
        rows.append(Row("parse", f"parse+validate {path.name} ({len(text.encode()):,} B)",
                        1000 / median, 1000 / floor, "ms", reference_label="YAML frontmatter"))
    return rows


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
