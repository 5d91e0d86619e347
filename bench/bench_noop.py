"""No-op build benchmark: esl-build's doit graph vs the same graph on doit's stock json backend.

Run from the repository root::

    python -m bench.bench_noop                    # sizes 10,100,1000
    python -m bench.bench_noop --sizes 10,100     # quicker
    python -m bench.bench_noop --keep             # keep the temp repos (paths are printed)

For each size N it

1. builds a temp lessons repository (``dodo.py`` and ``configs/`` copied from this repo, N
   lessons generated from one small valid template, each with its own title and one study-text
   line of its own), runs one full build (``doit -n 2 -P thread``), then times a no-op ``doit``
   (best of 3 and median, wall clock, subprocess) and checks that nothing ran;
2. builds the same task graph (same task names and ``task_dep`` edges, trivial python actions,
   ``file_dep`` on the lesson file) on doit's stock ``json`` backend and times its no-op run the
   same way;
3. prints a table and checks the targets (ours within 1.5x of stock and under 1 s at N=1000,
   growth linear or better) — PASS/FAIL is printed, nothing is raised;
4. profiles one no-op run at the largest size under cProfile and prints the top esl_build
   entries by cumulative time.

Nothing under ``esl_build/`` is touched; the benchmark only drives the ``doit`` CLI.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.rows import Row as RowOut
from bench.rows import ratio_row

REPO = Path(__file__).resolve().parent.parent
FALLBACK_TEMPLATE = REPO / "tests" / "fixtures" / "lessons" / "mixed-speaker-forms.md"
RAN = re.compile(r"^(?:\.  |\[\d+/\d+\] )(\S+)", re.MULTILINE)  # "task ran" (doit's, ours)
FAILED = re.compile(r"^(F|E)  ", re.MULTILINE)   # doit's "task failed / errored" lines
TARGET_RATIO = 1.5
TARGET_SECONDS = 1.0
TARGET_SIZE = 1000
PROFILE_PATH = Path("/tmp/noop.prof")
# Variables that would pick a remote backend or move folders: the bench uses the embedded
# defaults (html publisher, espeak voice, local storage), which need no network.
ENV_PREFIXES = ("ESL_BUILD_", "ESL_PIPELINE_", "NOTION_", "ELEVENLABS_", "S3_", "AWS_")


# -- helpers ----------------------------------------------------------------------------------
def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # let the temp dodo.py be cached like a real repo
    return env


def doit_exe() -> str:
    exe = shutil.which("doit")
    if exe is None:
        candidate = Path(sys.executable).with_name("doit")
        if candidate.exists():
            return str(candidate)
        sys.exit("bench_noop: the `doit` command is not on PATH (pip install -e . first)")
    return exe


def run(cmd: list[str], cwd: Path, *,
        timeout: float = 1800) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout)
    return time.perf_counter() - start, proc


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# -- the lessons ------------------------------------------------------------------------------
def template_lesson() -> Path:
    """A small valid lesson: the smallest lessons/**/*.md of this repo, else a test fixture."""
    candidates = [p for p in (REPO / "lessons").rglob("*.md")
                  if ":::study-text" in p.read_text(encoding="utf-8", errors="replace")]
    if candidates:
        return min(candidates, key=lambda p: (p.stat().st_size, p.as_posix()))
    if FALLBACK_TEMPLATE.exists():
        return FALLBACK_TEMPLATE
    sys.exit("bench_noop: no template lesson (lessons/**/*.md or "
             f"{FALLBACK_TEMPLATE}) found")


def make_lesson(template: str, index: int, *, keep_lines: int = 2) -> str:
    """The template with its own title and its own first study-text line.

    The study text is cut to its first ``keep_lines`` spoken lines so the first build (which
    synthesises every line) stays fast; the rest of the lesson is kept as it is."""
    out, titled, in_study, spoken = [], False, False, 0
    for line in template.splitlines():
        if not titled and line.startswith("title:"):
            line = f'title: "Bench Lesson {index}"'
            titled = True
        elif line.startswith(":::study-text"):
            in_study = True
        elif in_study and line.startswith(":::"):
            in_study = False
        elif in_study and line.strip():
            spoken += 1
            if spoken > keep_lines:
                continue
            if spoken == 1:
                line = line.rstrip() + f" Number {index}."
        elif in_study and spoken >= keep_lines:
            continue  # blank lines after the last kept line
        out.append(line)
    if not (titled and spoken):
        sys.exit("bench_noop: the template lesson needs a `title:` line and a :::study-text block")
    return "\n".join(out) + "\n"


def write_lessons(lessons_dir: Path, template: str, n: int) -> list[str]:
    lessons_dir.mkdir(parents=True, exist_ok=True)
    ids = [f"lesson-{i:04d}" for i in range(1, n + 1)]
    for i, lesson_id in enumerate(ids, 1):
        (lessons_dir / f"{lesson_id}.md").write_text(make_lesson(template, i), encoding="utf-8")
    return ids


# -- the stock graph --------------------------------------------------------------------------
STOCK_DODO = textwrap.dedent('''\
    """Same task graph as esl-build (names, task_dep), stock json backend, trivial actions."""
    from pathlib import Path

    STAGES = ("validate", "import", "tts", "upload", "add-audio")
    UPSTREAM = {"validate": (), "import": ("validate",), "tts": ("validate",),
                "upload": ("tts",), "add-audio": ("import", "upload")}
    DOIT_CONFIG = {"backend": "json", "dep_file": ".doit.json",
                   "default_tasks": [*STAGES, "index"]}


    def nothing():
        return None


    def lesson_ids():
        root = Path("lessons")
        return sorted(p.relative_to(root).as_posix()[:-3] for p in root.rglob("*.md"))


    def _stage_tasks(stage):
        yield {"basename": stage, "name": None, "doc": stage}
        for lesson_id in lesson_ids():
            yield {
                "basename": stage,
                "name": lesson_id,
                "doc": f"{stage} lessons/{lesson_id}.md",
                "actions": [(nothing, [])],
                "file_dep": [f"lessons/{lesson_id}.md"],
                "task_dep": [f"{up}:{lesson_id}" for up in UPSTREAM[stage]],
                "verbosity": 2,
            }


    def task_validate():
        yield from _stage_tasks("validate")


    def task_import():
        yield from _stage_tasks("import")


    def task_tts():
        yield from _stage_tasks("tts")


    def task_upload():
        yield from _stage_tasks("upload")


    def task_add_audio():
        yield from _stage_tasks("add-audio")


    def task_index():
        return {"actions": [nothing], "task_dep": ["import", "add-audio"],
                "file_dep": [f"lessons/{i}.md" for i in lesson_ids()], "verbosity": 2}
    ''')


# -- timing -----------------------------------------------------------------------------------
@dataclass
class Timing:
    runs: list[float] = field(default_factory=list)
    ok: bool = True
    problem: str = ""

    @property
    def best(self) -> float:
        return min(self.runs) if self.runs else math.nan

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else math.nan


def first_build(cwd: Path, cmd: list[str], label: str) -> tuple[bool, float]:
    seconds, proc = run(cmd, cwd)
    ok = proc.returncode == 0 and not FAILED.search(proc.stdout)
    ran = len(RAN.findall(proc.stdout))
    print(f"  {label}: first build {'ok' if ok else 'FAILED'} in {seconds:.1f}s "
          f"({ran} tasks ran)", flush=True)
    if not ok:
        print(f"    | exit {proc.returncode}")
        print(textwrap.indent(tail(proc.stdout) + "\n" + tail(proc.stderr), "    | "))
    return ok, seconds


def time_noop(cwd: Path, cmd: list[str], repeat: int, label: str) -> Timing:
    timing = Timing()
    for attempt in range(1, repeat + 1):
        seconds, proc = run(cmd, cwd)
        timing.runs.append(seconds)
        ran = RAN.findall(proc.stdout)
        if proc.returncode != 0 or ran:
            timing.ok = False
            shown = ", ".join(ran[:8]) + (f", ... ({len(ran)} in all)" if len(ran) > 8 else "")
            timing.problem += (f"\n    run {attempt}: exit {proc.returncode}; ran: {shown or '-'}"
                               + ("" if proc.returncode == 0 else
                                  "\n" + textwrap.indent(tail(proc.stderr, 10), "    | ")))
    runs = ", ".join(f"{s:.3f}" for s in timing.runs)
    print(f"  {label}: no-op best {timing.best:.3f}s median {timing.median:.3f}s [{runs}]"
          + ("" if timing.ok else "  -- NOT A NO-OP:" + timing.problem), flush=True)
    return timing


@dataclass
class Row:
    n: int
    ours: Timing
    stock: Timing
    build_ok: bool
    stock_build_ok: bool
    ours_repo: Path
    build_seconds: float = 0.0

    @property
    def per_lesson_ms(self) -> float:
        return self.ours.best / self.n * 1000

    @property
    def ratio(self) -> float:
        return self.ours.best / self.stock.best


def bench_size(n: int, template: str, repeat: int, jobs: int, workdir: Path) -> Row:
    doit = doit_exe()
    print(f"\n== N={n} ==", flush=True)

    ours = workdir / f"ours-{n}"
    ours.mkdir()
    shutil.copy2(REPO / "dodo.py", ours / "dodo.py")
    shutil.copytree(REPO / "configs", ours / "configs")
    write_lessons(ours / "lessons", template, n)
    build_ok, build_seconds = first_build(ours, [doit, "-n", str(jobs), "-P", "thread"], "ours ")
    ours_timing = time_noop(ours, [doit], repeat, "ours ")
    if not build_ok:
        ours_timing.ok = False

    stock = workdir / f"stock-{n}"
    stock.mkdir()
    (stock / "dodo.py").write_text(STOCK_DODO, encoding="utf-8")
    shutil.copytree(ours / "lessons", stock / "lessons",
                    ignore=shutil.ignore_patterns("*.manifest.json"))
    stock_ok, _ = first_build(stock, [doit, "-n", str(jobs), "-P", "thread"], "stock")
    stock_timing = time_noop(stock, [doit], repeat, "stock")
    if not stock_ok:
        stock_timing.ok = False
    return Row(n, ours_timing, stock_timing, build_ok, stock_ok, ours, build_seconds)


# -- report -----------------------------------------------------------------------------------
def print_table(rows: list[Row]) -> None:
    print("\n== no-op build (wall clock, best of runs; median in brackets) ==")
    header = (f"{'N':>6}  {'ours s':>16}  {'ms/lesson':>9}  {'stock s':>16}  "
              f"{'ours/stock':>10}  valid")
    print(header)
    print("-" * len(header))
    for r in rows:
        valid = "yes" if (r.ours.ok and r.stock.ok) else "NO"
        print(f"{r.n:>6}  {r.ours.best:>7.3f} [{r.ours.median:>6.3f}]  {r.per_lesson_ms:>9.2f}  "
              f"{r.stock.best:>7.3f} [{r.stock.median:>6.3f}]  {r.ratio:>9.2f}x  {valid}")


def check_targets(rows: list[Row]) -> None:
    print("\n== targets ==")
    at = next((r for r in rows if r.n == TARGET_SIZE), None)
    note = ""
    if at is None:
        at = max(rows, key=lambda r: r.n)
        note = f" (N={TARGET_SIZE} not run; checked at N={at.n})"
    verdict = "PASS" if at.ratio <= TARGET_RATIO else "FAIL"
    print(f"{verdict}  ours within {TARGET_RATIO}x of stock at N={at.n}: "
          f"{at.ratio:.2f}x ({at.ours.best:.3f}s vs {at.stock.best:.3f}s){note}")
    verdict = "PASS" if at.ours.best < TARGET_SECONDS else "FAIL"
    print(f"{verdict}  ours under {TARGET_SECONDS:.0f} s at N={at.n}: {at.ours.best:.3f}s{note}")
    if not all(r.ours.ok and r.stock.ok for r in rows):
        print("FAIL  every no-op run was a real no-op (see NOT A NO-OP above)")
    else:
        print("PASS  every build succeeded and every timed run was a no-op (no '.  ' lines)")

    ordered = sorted(rows, key=lambda r: r.n)
    trend = " -> ".join(f"{r.per_lesson_ms:.2f} ms (N={r.n})" for r in ordered)
    print(f"      per-lesson ms trend (ours): {trend}")
    stock_trend = " -> ".join(f"{r.stock.best / r.n * 1000:.2f} ms" for r in ordered)
    print(f"      per-lesson ms trend (stock): {stock_trend}")
    if len(ordered) < 2:
        print("SKIP  growth linear or better (needs two sizes)")
        return
    pieces, worst = [], 0.0
    for a, b in itertools.pairwise(ordered):
        exponent = math.log(b.ours.best / a.ours.best) / math.log(b.n / a.n)
        marginal = (b.ours.best - a.ours.best) / (b.n - a.n) * 1000
        stock_marginal = (b.stock.best - a.stock.best) / (b.n - a.n) * 1000
        pieces.append(f"N {a.n}->{b.n}: exponent {exponent:.2f}, marginal {marginal:.2f} "
                      f"ms/lesson (stock {stock_marginal:.2f})")
        worst = max(worst, exponent)
    for piece in pieces:
        print(f"      {piece}")
    verdict = "PASS" if worst <= 1.1 else "FAIL"
    print(f"{verdict}  growth linear or better (time ~ N^k with k <= 1.1 between sizes; "
          f"worst k = {worst:.2f})")


def profile(row: Row, top: int) -> None:
    print(f"\n== where the no-op time goes (N={row.n}, one run under cProfile) ==")
    cmd = [sys.executable, "-m", "cProfile", "-o", str(PROFILE_PATH), doit_exe()]
    seconds, proc = run(cmd, row.ours_repo)
    if proc.returncode != 0 or not PROFILE_PATH.exists():
        print(f"profile run failed (exit {proc.returncode}):\n{tail(proc.stderr)}")
        return
    print(f"(profiled run: {seconds:.2f}s wall, profile in {PROFILE_PATH}; "
          f"{len(RAN.findall(proc.stdout))} task(s) ran)")
    stats = pstats.Stats(str(PROFILE_PATH))
    entries = stats.stats  # type: ignore[attr-defined]
    total = max((ct for (_, _, name), (_, _, _, ct, _) in entries.items()
                 if name == "<module>"), default=0.0)

    def fmt(key, value) -> str:
        filename, line, name = key
        _, nc, tt, ct, _ = value
        short = _short(filename)
        return (f"{ct:>8.3f} {ct / total * 100 if total else 0:>5.1f}% {tt:>8.3f} {nc:>9}  "
                f"{short}:{line}({name})")

    head = f"{'cum s':>8} {'cum%':>6} {'own s':>8} {'calls':>9}  function"
    ours = sorted(((k, v) for k, v in entries.items() if "esl_build" in k[0]),
                  key=lambda kv: kv[1][3], reverse=True)
    print(f"\n-- top {top} esl_build entries by cumulative time (total {total:.3f}s) --")
    print(head)
    for key, value in ours[:top]:
        print(fmt(key, value))

    print("\n-- top 12 entries by own time (any module), for context --")
    print(head)
    for key, value in sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)[:12]:
        print(fmt(key, value))

    print("\n-- doit phases (cumulative) --")
    wanted = {("loader.py", "load_tasks"), ("control.py", "__init__"),
              ("cmd_run.py", "_execute"), ("runner.py", "run_all"),
              ("runner.py", "select_task"), ("dependency.py", "get_status"),
              ("dependency.py", "__init__"), ("reporter.py", "complete_run")}
    for key, value in sorted(entries.items(), key=lambda kv: kv[1][3], reverse=True):
        if (Path(key[0]).name, key[2]) in wanted and "doit" in key[0]:
            print(fmt(key, value))


def _short(filename: str) -> str:
    for marker in ("esl_build/", "site-packages/", "lib/python3"):
        if marker in filename:
            return filename[filename.index(marker):]
    return filename


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000",
                        help="comma-separated lesson counts (default 10,100,1000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed no-op runs per size")
    parser.add_argument("--jobs", type=int, default=2, help="doit -n for the first build")
    parser.add_argument("--top", type=int, default=15, help="profile entries to print")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument("--keep", action="store_true", help="keep the temp repositories")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})

    template_path = template_lesson()
    template = template_path.read_text(encoding="utf-8")
    workdir = Path(tempfile.mkdtemp(prefix="esl-bench-noop-"))
    print(f"esl-build no-op benchmark: sizes {sizes}, {args.repeat} timed runs each, "
          f"python {sys.version.split()[0]}")
    print(f"template lesson: {template_path}")
    print(f"temp repos under: {workdir}")
    started = time.perf_counter()
    try:
        rows = [bench_size(n, template, args.repeat, args.jobs, workdir) for n in sizes]
        print_table(rows)
        check_targets(rows)
        if not args.no_profile:
            profile(max(rows, key=lambda r: r.n), args.top)
    finally:
        if args.keep:
            print(f"\nkept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nbench total: {time.perf_counter() - started:.0f}s")
    return 0


def measure(quick: bool) -> list[RowOut]:
    """Rows for ``python -m bench``: the no-op rebuild beside the stock-doit graph."""
    sizes = (10, 50) if quick else (10, 100, 1000)
    template = template_lesson().read_text(encoding="utf-8")
    workdir = Path(tempfile.mkdtemp(prefix="esl-bench-noop-"))
    try:
        rows = [bench_size(n, template, 2 if quick else 3, 2, workdir) for n in sizes]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out = []
    for r in rows:
        row = ratio_row("noop", f"no-op rebuild, {r.n} lessons (best of runs)", r.ours.best,
                        r.stock.best, "s", max_ratio=TARGET_RATIO, reference_label="stock doit")
        if not (r.ours.ok and r.stock.ok):
            row = RowOut(row.suite, row.figure + " — NOT A NO-OP", row.value, row.reference,
                         row.unit, row.target, False, row.reference_label)
        out.append(row)
    return out


if __name__ == "__main__":
    sys.exit(main())
