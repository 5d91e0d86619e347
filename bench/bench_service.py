"""The HTTP worker: dry-run jobs per second through it, and a no-op live job's latency.

A real uvicorn server on 127.0.0.1 over a generated lessons repository (built once first).
References from the same run, with the same concurrency: the same dry runs called in-process
from 4 threads (what HTTP, JSON and the job table add), and the same no-op job called
in-process (median of as many calls)."""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.rows import Row
from esl_build.testing.repo import LessonsRepo, lesson_text


def measure(quick: bool) -> list[Row]:
    import httpx

    from esl_build import create_pipeline
    from esl_build.service import BackgroundServer, create_app

    lessons, jobs = (5, 60) if quick else (20, 400)
    with tempfile.TemporaryDirectory() as folder:
        repo = LessonsRepo.create(Path(folder) / "repo", {
            f"unit{n}": lesson_text((f"Alex: Lesson {n}.", "Mara: Good.")) for n in
            range(lessons)})
        pipeline = create_pipeline(cwd=repo.root, secrets={})
        for n in range(lessons):
            pipeline.new_assignment({"md": f"unit{n}"})

        def dry_in_process(n: int) -> None:
            pipeline.new_assignment({"md": f"unit{n % lessons}", "dry_run": True})

        dry_in_process(0)  # warm up
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(dry_in_process, range(jobs)))
        direct = jobs / (time.perf_counter() - started)

        app = create_app(pipeline, live=True, max_jobs=2)
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
            def dry(n: int) -> None:
                answer = client.post("/jobs", json={"md": f"unit{n % lessons}",
                                                    "dryRun": True})
                assert answer.status_code == 200 and answer.json()["state"] == "succeeded"

            dry(0)  # warm up
            started = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(dry, range(jobs)))
            http = jobs / (time.perf_counter() - started)

            latencies, samples = [], 5 if quick else 20
            for n in range(samples):
                started = time.perf_counter()
                job_id = client.post("/jobs", json={"md": f"unit{n % lessons}"}).json()["jobId"]
                while client.get(f"/jobs/{job_id}").json()["state"] not in ("succeeded",
                                                                             "failed"):
                    time.sleep(0.002)
                latencies.append((time.perf_counter() - started) * 1000)
        direct_latencies = []
        for n in range(samples):
            started = time.perf_counter()
            pipeline.new_assignment({"md": f"unit{n % lessons}"})
            direct_latencies.append((time.perf_counter() - started) * 1000)
    median = _median(latencies)
    direct_noop = _median(direct_latencies)
    return [
        Row("service", "dry-run jobs per second over HTTP (4 clients)", http, direct, "jobs/s",
            reference_label="in-process, 4 threads"),
        Row("service", "no-op live job latency (POST → succeeded, median)", median,
            direct_noop, "ms", "≤ 250 ms", median <= 250, reference_label="in-process"),
    ]


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


if __name__ == "__main__":
    for row in measure(quick=True):
        print(row.cells())
