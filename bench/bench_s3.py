"""S3 requests per no-op build and per one-line edit, on the file store and on the S3 store.

    python -m bench.bench_s3 [--lessons N]     the table of docs/storage.md
    python -m bench --only s3                  its rows in the table of every figure

Builds N generated lessons with s3 storage against a local moto server (real HTTP on
127.0.0.1), then runs ``doit`` with nothing to do, then after editing one study-text line of
one lesson. Requests are counted where the server receives them (a WSGI wrapper around moto),
so every process's requests are seen: doit runs in subprocesses, as in CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.rows import Row
from esl_build.testing.moto import CountingMotoServer
from esl_build.testing.repo import LessonsRepo, lesson_text

STEPS = ("first build", "no-op", "one-line edit", "no-op after edit")


def run(store: str, count: int, server: CountingMotoServer, workdir: Path) -> dict[str, Any]:
    import boto3

    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    env = {"AWS_ENDPOINT_URL_S3": server.url, "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "S3_ADDRESSING_STYLE": "path",
           "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
           "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required", "S3_BUCKET": bucket}
    if store == "s3":
        env.update(ESL_PIPELINE_MANIFEST_STORE="s3", ESL_PIPELINE_MANIFEST_BUCKET=bucket)
    boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                 aws_access_key_id="bench", aws_secret_access_key="bench"
                 ).create_bucket(Bucket=bucket)
    lessons = {f"unit{n}": lesson_text((f"Alex: This is lesson number {n}.",
                                        f"Mara: We practise sentence {n} together."),
                                       title=f"Lesson {n}") for n in range(count)}
    repo = LessonsRepo.create(workdir / store, lessons, env=env)
    result: dict[str, Any] = {"store": store}
    for step in STEPS:
        if step == "one-line edit":
            repo.edit("unit0", "This is lesson number 0.", "This is lesson zero.")
        server.requests.clear()
        started = time.perf_counter()
        done = repo.doit()
        if done.returncode:
            sys.exit(f"{store} {step}: doit failed\n{done.stdout}\n{done.stderr}")
        result[step] = (dict(server.requests), time.perf_counter() - started)
    return result


def measure_all(count: int) -> list[dict[str, Any]]:
    """Both stores' steps (see ``run``), against one moto server."""
    server = CountingMotoServer()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return [run(store, count, server, Path(tmp)) for store in ("file", "s3")]
    finally:
        server.stop()


def measure(quick: bool) -> list[Row]:
    """The rows of ``python -m bench``: S3 requests per no-op and per one-line edit, on
    each store. A no-op's reference is one GET per manifest (what reading each lesson's
    manifest would cost); an edit's is what building one lesson afresh costs (the first
    build's requests per lesson)."""
    count = 5 if quick else 20
    rows = []
    for result in measure_all(count):
        store = result["store"]
        total = {step: sum(result[step][0].values()) for step in STEPS}
        per_lesson = total["first build"] / count
        listing = 0 if store == "file" else -(-count // 1000)  # one LIST page per 1,000
        rows += [
            Row("s3", f"S3 requests per no-op, {store} store ({count} lessons)",
                total["no-op"], float(count), "requests",
                "0" if store == "file" else "1 listing per 1,000 lessons",
                total["no-op"] <= listing, reference_label="a GET per manifest"),
            Row("s3", f"S3 requests per one-line edit, {store} store ({count} lessons)",
                total["one-line edit"], per_lesson, "requests",
                reference_label="one lesson's first build"),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", type=int, default=20)
    args = parser.parse_args()
    rows = measure_all(args.lessons)
    print(f"{args.lessons} lessons; S3 requests by method (wall time of the doit run)")
    print("| manifest store | step | requests | by method | seconds |")
    print("|---|---|---:|---|---:|")
    for row in rows:
        for step in STEPS:
            counts, seconds = row[step]
            methods = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"
            print(f"| {row['store']} | {step} | {sum(counts.values())} | {methods} | "
                  f"{seconds:.2f} |")


if __name__ == "__main__":
    main()
