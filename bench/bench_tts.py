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
    print(f"\n## characters billed, {mode} mode (bundled lessons: "
          f"{sum(whole.values())} characters of study text)\n")
    print("| step | esl-build | predecessor |\n|---|---:|---:|")
    for name, ours, theirs in rows:
        print(f"| {name} | {ours} | {theirs} |")
    print(f"\none-line edit: {edited} billed for a {edit_line}-character line "
          f"({edited / edit_line:.2f}×); voice swap: {swap} billed for {swapped} characters "
          "of the two speakers' lines")
    if mode == "monologue":
        ok = edited <= 1.1 * edit_line
        print(f"{'PASS' if ok else 'FAIL'}: one-line edit ≤ 1.1 × the line's characters")
        return ok
    return True


def dialogue_lesson(n: int) -> str:
    from esl_build.testing.repo import lesson_text

    lines = tuple(f"{('Alex', 'Mara', 'Sam')[k % 3]}: In lesson {n}, this is turn {k}, a "
                  "sentence of ordinary length for a dialogue." for k in range(24))
    return lesson_text(lines, title=f"Dialogue {n}", labels=("Alex", "Mara", "Sam"))


def part_wall_time(lessons: int, latency: float, concurrency: int,
                   seconds_per_character: float) -> bool:
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
    api = math.ceil(requests / concurrency) * latency
    measured = timings[latency]
    first, last = spans[latency]
    ratio = measured / api
    print(f"\n## wall time: {lessons} dialogue lessons, {requests} requests, concurrency "
          f"{concurrency}, {latency * 1000:.0f} ms per request, "
          f"{seconds_per_character * 1000:g} ms of audio per character\n")
    print(f"bound (the API alone): ceil({requests}/{concurrency}) × {latency:g} s = {api:.2f} s; "
          f"measured {measured:.2f} s = {ratio:.2f}× the bound")
    print(f"  before the first request {first:.2f} s (interpreter, doit, validate, plan, "
          f"subscription); requests {last - first:.2f} s ({(last - first) / api:.2f}× the "
          f"bound); after the last answer {measured - last:.2f} s (assembly, upload, exit)")
    print(f"  the same build with no latency (CPU work alone): {timings[0.0]:.2f} s; peak in "
          f"flight {peak}; refused by the fake {refused}")
    ok = ratio <= 1.2
    print(f"{'PASS' if ok else 'FAIL'}: wall time ≤ 1.2 × the bound")
    return ok


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
