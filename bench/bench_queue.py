"""The job queue: jobs per minute through one and two Celery workers, beside ``doit -n 2``.

The same work each time: a fresh copy of the bundled lessons (repeated to ``lessons``
lessons), built by the embedded backends (html, espeak, local), one job per lesson. The
workers (``esl-build worker``, prefork, one job at a time each) are started and ready
before the clock starts; the clock stops when every job's status says succeeded. The
reference is the single-process ``doit -n 2 -P thread`` build of the same lessons."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.rows import Row
from esl_build.testing.repo import LessonsRepo

BUNDLED = Path(__file__).resolve().parent.parent / "lessons"


def _lessons(count: int) -> dict[str, str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(BUNDLED.rglob("*.md"))]
    return {f"copy{n}": texts[n % len(texts)] for n in range(count)}


def _through_queue(folder: Path, redis_url: str, lessons: dict[str, str], workers: int
                   ) -> float:
    from esl_build.queue import JobQueue
    from esl_build.settings import Settings
    from esl_build.testing.queue import QueueWorkers

    repo = LessonsRepo.create(folder / f"queue{workers}", lessons)
    with QueueWorkers(repo, redis_url, count=workers,
                      extra={"ESL_BUILD_QUEUE_NAME": f"bench{workers}"}) as running:
        queue = JobQueue(Settings.resolve(env=running.env).queue)
        started = time.perf_counter()
        ids = [queue.enqueue({"md": f"lessons/{lesson}.md"}) for lesson in lessons]
        pending = set(ids)
        while pending:
            for job in list(pending):
                state = (queue.job_status(job) or {}).get("state")
                if state == "failed":
                    raise RuntimeError(f"job {job} failed: {queue.job_status(job)}")
                if state == "succeeded":
                    pending.discard(job)
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    return len(ids) / elapsed * 60


def measure(quick: bool) -> list[Row]:
    from esl_build.testing.queue import RedisServer

    if not RedisServer.available():
        return [Row("queue", "skipped: redis-server is not installed", None, None, "")]
    lessons = _lessons(4 if quick else 24)
    with tempfile.TemporaryDirectory() as name, RedisServer() as redis:
        folder = Path(name)
        repo = LessonsRepo.create(folder / "doit", lessons)
        started = time.perf_counter()
        done = repo.doit("-n", "2", "-P", "thread")
        if done.returncode:
            raise RuntimeError(done.stdout + done.stderr)
        doit = len(lessons) / (time.perf_counter() - started) * 60
        one = _through_queue(folder, redis.url, lessons, 1)
        two = _through_queue(folder, redis.url, lessons, 2)
    label = "doit -n 2 -P thread"
    return [
        Row("queue", f"jobs per minute, 1 worker ({len(lessons)} lessons)", one, doit,
            "jobs/min", reference_label=label),
        Row("queue", f"jobs per minute, 2 workers ({len(lessons)} lessons)", two, doit,
            "jobs/min", "≥ 0.5x doit -n 2", two >= 0.5 * doit, reference_label=label),
    ]


if __name__ == "__main__":
    for row in measure(quick=True):
        print(row.cells())
