"""TTS cost and throughput benchmark, against the fake ElevenLabs server (no network).

Run from the repository root::

    python -m bench.bench_tts              # both parts
    python -m bench.bench_tts --lessons 20 --latency 0.3 --concurrency 5

Part 1, characters billed, on the bundled lessons (``lessons/``), in monologue and in auto
(dialogue for dialogues) mode: first build, no-op, a one-line edit (the café dialogue's
"Oat milk" line) and a voice swap (Tom ↔ Sofia in ``configs/voices.yml``). Beside each, what
the predecessor bills for the same work (tts.md §3/§4): the whole text of every lesson it
voices again, since it deletes its line files after joining and keeps no dialogue cache (its
monologue no-op is free: the final file is reused).

Part 2, wall time: N generated dialogue lessons (distinct text) built with
``doit -n N -P thread`` (every lesson at once) at ``ELEVENLABS_CONCURRENCY`` = the fake's
limit and the given latency per request. The bound is the time the API alone needs:
ceil(requests / concurrency) × latency; start-up, planning, assembly and encoding must hide
behind it or count against the ratio. Beside it: when the first request arrived and the last
was answered (from the fake's clock), so the ratio's remainder is shown where it goes; and the
same build with no latency (the CPU work alone).

PASS/FAIL lines check the targets (one-line edit ≤ 1.1 × the line's characters in monologue
mode; wall time ≤ 1.2 × the bound); nothing is raised.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.rows import Row, ratio_row
from esl_build.testing.fake_elevenlabs import VOICES, FakeElevenLabs
from esl_build.testing.repo import LessonsRepo
from esl_build.voices.catalog import catalog_bytes

REPO = Path(__file__).resolve().parent.parent
EDIT = ("Sofia: Oat milk, please. And could you make it extra hot?",
        "Sofia: Oat milk, please. And could you make it very hot?")


def repo_with(root: Path, fake: FakeElevenLabs, lessons: dict[str, str], **env: str
              ) -> LessonsRepo:
    repo = LessonsRepo.create(root, lessons, env={**fake.env, "ESL_BUILD_LOCAL_BUCKET": "bucket",
                                                  **env})
    repo.path("configs/elevenlabs.voices.json").write_bytes(catalog_bytes(list(VOICES)))
    return repo


def built(repo: LessonsRepo, *args: str) -> float:
    start = time.perf_counter()
    run = repo.doit(*args)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"build failed:\n{run.stdout}\n{run.stderr}")
    return elapsed


def spoken_characters(repo: LessonsRepo) -> dict[str, int]:
    """Lesson id → characters of its whole study text (what the predecessor bills)."""
    from esl_build.project import Project
    from esl_build.settings import Settings

    project = Project(Settings.resolve(repo.root, env={}))
    totals = {}
    for lesson_id in project.lesson_ids():
        study = project.lesson(lesson_id).study_text
        totals[lesson_id] = sum(len(s.text) for s in study.segments) if study else 0
    return totals


def part_costs(mode: str) -> bool:
    """Print the characters billed in ``mode``; whether the one-line-edit target holds."""
    costs = measure_costs(mode)
    print(f"\n## characters billed, {mode} mode (bundled lessons: "
          f"{costs['whole']} characters of study text)\n")
    print("| step | esl-build | predecessor |\n|---|---:|---:|")
    for name, ours, theirs in costs["rows"]:
        print(f"| {name} | {ours} | {theirs} |")
    print(f"\none-line edit: {costs['edited']} billed for a {costs['edit_line']}-character line "
          f"({costs['edited'] / costs['edit_line']:.2f}×); voice swap: {costs['swap']} billed for "
          f"{costs['swapped']} characters of the two speakers' lines")
    if mode == "monologue":
        ok = costs["edited"] <= 1.1 * costs["edit_line"]
        print(f"{'PASS' if ok else 'FAIL'}: one-line edit ≤ 1.1 × the line's characters")
        return ok
    return True


def measure_costs(mode: str) -> dict[str, Any]:
    """Characters billed on the bundled lessons for first build, no-op, one-line edit and voice
    swap, beside the predecessor's for the same work."""
    bundled = {p.relative_to(REPO / "lessons").with_suffix("").as_posix(): p.read_text("utf-8")
               for p in sorted((REPO / "lessons").rglob("*.md"))}
    with FakeElevenLabs() as fake, tempfile.TemporaryDirectory() as tmp:
        repo = repo_with(Path(tmp) / "repo", fake, bundled, ELEVENLABS_TTS_MODE=mode)
        repo.path("configs/voices.yml").write_text(
            "auto: true\nTom: fake-voice-hugh-0004\nSofia: fake-voice-ruth-0003\n")
        whole = spoken_characters(repo)
        dialogues = {"a2/dialogue-cafe"}  # the predecessor's dialogue mode has no cache
        rows = []

        def step(name: str, predecessor: int) -> int:
            before = fake.characters_billed
            built(repo)
            rows.append((name, fake.characters_billed - before, predecessor))
            return fake.characters_billed - before

        step("first build", sum(whole.values()))
        step("no-op", 0 if mode == "monologue" else sum(whole[d] for d in dialogues))
        repo.edit("a2/dialogue-cafe", *EDIT)
        edit_line = len(EDIT[1].split(": ", 1)[1])
        edited = step("one-line edit", whole["a2/dialogue-cafe"] - len(EDIT[0]) + len(EDIT[1]))
        text = repo.path("lessons/a2/dialogue-cafe.md").read_text("utf-8")
        swapped = sum(len(line.split(": ", 1)[1]) for line in text.splitlines()
                      if line.startswith(("Tom: ", "Sofia: ")))
        repo.path("configs/voices.yml").write_text(
            "auto: true\nTom: fake-voice-ruth-0003\nSofia: fake-voice-hugh-0004\n")
        swap = step("voice swap", whole["a2/dialogue-cafe"] - len(EDIT[0]) + len(EDIT[1]))
    return {"whole": sum(whole.values()), "rows": rows, "edited": edited,
            "edit_line": edit_line, "swap": swap, "swapped": swapped}


def dialogue_lesson(n: int) -> str:
    from esl_build.testing.repo import lesson_text

    lines = tuple(f"{('Alex', 'Mara', 'Sam')[k % 3]}: In lesson {n}, this is turn {k}, a "
                  "sentence of ordinary length for a dialogue." for k in range(24))
    return lesson_text(lines, title=f"Dialogue {n}", labels=("Alex", "Mara", "Sam"))


def part_wall_time(lessons: int, latency: float, concurrency: int,
                   seconds_per_character: float) -> bool:
    """Print the wall time beside the bound; whether the target holds."""
    w = measure_wall_time(lessons, latency, concurrency, seconds_per_character)
    print(f"\n## wall time: {lessons} dialogue lessons, {w['requests']} requests, concurrency "
          f"{concurrency}, {latency * 1000:.0f} ms per request, "
          f"{seconds_per_character * 1000:g} ms of audio per character\n")
    print(f"bound (the API alone): ceil({w['requests']}/{concurrency}) × {latency:g} s = "
          f"{w['bound']:.2f} s; measured {w['measured']:.2f} s = "
          f"{w['measured'] / w['bound']:.2f}× the bound")
    print(f"  before the first request {w['first']:.2f} s (interpreter, doit, validate, plan, "
          f"subscription); requests {w['last'] - w['first']:.2f} s "
          f"({(w['last'] - w['first']) / w['bound']:.2f}× the bound); after the last answer "
          f"{w['measured'] - w['last']:.2f} s (assembly, upload, exit)")
    print(f"  the same build with no latency (CPU work alone): {w['no_latency']:.2f} s; peak in "
          f"flight {w['peak']}; refused by the fake {w['refused']}")
    ok = w["measured"] / w["bound"] <= 1.2
    print(f"{'PASS' if ok else 'FAIL'}: wall time ≤ 1.2 × the bound")
    return ok


def measure_wall_time(lessons: int, latency: float, concurrency: int,
                      seconds_per_character: float) -> dict[str, Any]:
    """The wall time of a ``doit -n lessons -P thread`` build of ``lessons`` generated dialogue
    lessons, beside the API's own bound ceil(requests / concurrency) × latency."""
    texts = {f"d{n:02d}": dialogue_lesson(n) for n in range(lessons)}
    timings, spans = {}, {}
    requests = peak = refused = 0
    for run_latency in (0.0, latency):
        with FakeElevenLabs(max_concurrency=concurrency,
                            seconds_per_character=seconds_per_character) as fake, \
                tempfile.TemporaryDirectory() as tmp:
            repo = repo_with(Path(tmp) / "repo", fake, texts,
                             ELEVENLABS_CONCURRENCY=str(concurrency))
            fake.latency = run_latency
            start = time.monotonic()
            timings[run_latency] = built(repo, "-n", str(lessons), "-P", "thread")
            asked = fake.synthesis_requests
            spans[run_latency] = (min(r["at"] for r in asked) - start,
                                  max(fake.billed_at) - start)
            requests = len(fake.billed_at)
            refused = len(asked) - requests
            peak = fake.peak_concurrency
    first, last = spans[latency]
    return {"requests": requests, "bound": math.ceil(requests / concurrency) * latency,
            "measured": timings[latency], "first": first, "last": last,
            "no_latency": timings[0.0], "peak": peak, "refused": refused}


def measure(quick: bool) -> list[Row]:
    """Rows for ``python -m bench``: characters billed beside the predecessor's, and the wall
    time beside the API's bound."""
    rows: list[Row] = []
    for mode in ("monologue",) if quick else ("monologue", "auto"):
        costs = measure_costs(mode)
        for name, ours, theirs in costs["rows"]:
            target, ok = ("0", ours == 0) if name == "no-op" else ("", None)
            rows.append(Row("tts", f"{mode}: characters billed, {name}", ours, theirs, "chars",
                            target, ok, "predecessor"))
        if mode == "monologue":
            rows.append(ratio_row("tts", f"{mode}: one-line edit, billed ÷ the line",
                                  costs["edited"], costs["edit_line"], "chars", max_ratio=1.1,
                                  reference_label="the line"))
        rows.append(Row("tts", f"{mode}: voice swap, billed ÷ the two speakers' lines",
                        costs["swap"], costs["swapped"], "chars", reference_label="their lines"))
    lessons = 6 if quick else 20
    wall = measure_wall_time(lessons, 0.3, 5, 0.05)
    rows.append(ratio_row("tts", f"wall: {lessons} dialogue lessons, {wall['requests']} requests "
                          "at concurrency 5, 300 ms each", wall["measured"], wall["bound"], "s",
                          max_ratio=1.2, reference_label="ceil(requests/5) × 0.3 s"))
    rows.append(Row("tts", "wall: the request phase alone", wall["last"] - wall["first"],
                    wall["bound"], "s", reference_label="the same bound"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lessons", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--audio-per-character", type=float, default=0.05,
                        help="seconds of audio the fake answers per character")
    parser.add_argument("--skip-costs", action="store_true")
    args = parser.parse_args()
    if not args.skip_costs:
        part_costs("monologue")
        part_costs("auto")
    part_wall_time(args.lessons, args.latency, args.concurrency, args.audio_per_character)


if __name__ == "__main__":
    main()
