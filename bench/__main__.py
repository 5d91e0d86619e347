"""``python -m bench``: every performance and cost figure of esl-build in one table.

Each row is a figure measured in this run beside a reference measured in the same run (the
stock-doit graph, the predecessor's behaviour replayed against the same fakes, or a bound such
as requests ÷ rate limit), so a slower or faster machine moves both and the ratio stays put::

    python -m bench                 # the full run (about 10 minutes on a 2-core machine)
    python -m bench --quick         # a smaller run for CI (under a minute)
    python -m bench --only noop     # some suites only (comma-separated names)
    python -m bench --compare bench/results.json   # what moved since an earlier run

Results are also written as JSON (``bench/results.json`` by default, ``--out`` to change).

A suite is a module ``bench/bench_<name>.py`` with ``measure(quick: bool) -> list[Row]``;
``SUITES`` lists them in table order. A suite whose module cannot run here (a missing extra)
reports one row saying why instead of failing the whole table.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

from bench.rows import Row

SUITES = ("noop", "parse", "notion", "tts", "s3", "queue", "service")
DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"


def run_suites(names: list[str], quick: bool) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        started = time.perf_counter()
        print(f"-- {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.bench_{name}")
        except ModuleNotFoundError as error:
            if error.name != f"bench.bench_{name}":
                raise
            rows.append(Row(name, "suite not written yet", None, None, "", ok=None))
            continue
        measure = getattr(module, "measure", None)
        if measure is None:
            rows.append(Row(name, "suite has no measure()", None, None, "", ok=None))
            continue
        try:
            with contextlib.redirect_stdout(sys.stderr):  # a suite's own chatter: stderr
                rows += measure(quick)
        except Exception as error:  # one broken suite must not hide the others' figures
            traceback.print_exc()
            rows.append(Row(name, f"suite failed: {error}", None, None, "", ok=False))
        print(f"   {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return rows


def print_table(rows: list[Row]) -> None:
    headers = ("suite", "figure", "measured", "reference", "ratio", "target", "ok")
    table = [headers] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    for index, line in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def compare(rows: list[Row], old_path: Path) -> None:
    old = {(r["suite"], r["figure"]): r for r in json.loads(old_path.read_text())["rows"]}
    print(f"\n== compared with {old_path} ==")
    for row in rows:
        before = old.get((row.suite, row.figure))
        if before is None or before.get("value") is None or row.value is None:
            continue
        if before["value"] == row.value:
            continue
        change = (row.value - before["value"]) / before["value"] * 100 if before["value"] else 0
        print(f"{row.suite:<8} {row.figure:<48} {before['value']:>12.4g} -> {row.value:<12.4g}"
              f" ({change:+.0f} %)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for CI")
    parser.add_argument("--only", default="", help=f"comma-separated suites of {SUITES}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--compare", type=Path, help="an earlier results.json to compare with")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SUITES)
    unknown = sorted(set(names) - set(SUITES))
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    started = time.perf_counter()
    rows = run_suites(names, args.quick)
    print_table(rows)
    elapsed = time.perf_counter() - started
    print(f"\n{len(rows)} rows in {elapsed:.0f} s ({'quick' if args.quick else 'full'} run)")
    if args.compare:
        compare(rows, args.compare)
    args.out.write_text(json.dumps({
        "quick": args.quick, "seconds": round(elapsed, 1), "python": platform.python_version(),
        "machine": platform.machine(), "rows": [row.to_json() for row in rows]}, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 1 if any(row.ok is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
