"""Job status in Redis: one hash per job, written by ``enqueue`` and by the worker running it.

Keys are ``<queue name>:job:<job id>``; each field holds a JSON value. A job is kept for
``KEEP_SECONDS`` after its last change. Only the worker that holds a job's message writes
its status (at most one at a time: late acknowledgement redelivers a message only when its
worker is gone), so plain field writes are enough; ``attempts`` is a Redis counter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from esl_build.errors import InfrastructureError

KEEP_SECONDS = 7 * 24 * 3600
STATES = ("queued", "running", "succeeded", "failed")
TERMINAL = ("succeeded", "failed")

__all__ = ["KEEP_SECONDS", "STATES", "TERMINAL", "JobStore", "now"]


def now() -> str:
    """The current UTC time as status timestamps show it (ISO 8601, milliseconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class JobStore:
    """Status of the jobs of one queue, in the Redis at ``url``."""

    def __init__(self, url: str, prefix: str):
        import redis

        self._redis = redis.Redis.from_url(url, socket_connect_timeout=5,
                                           health_check_interval=30)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.prefix = prefix

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        try:
            yield
        except self._errors as error:
            # redis-py's messages name host and port, never the password
            raise InfrastructureError(f"job status store unreachable: {error}",
                                      retryable=True) from None

    def create(self, job_id: str, fields: dict[str, Any]) -> bool:
        """Record a new job; False when a job with this id exists."""
        key = self._key(job_id)
        with self._reaching():
            if not self._redis.hsetnx(key, "job_id", json.dumps(job_id)):
                return False
            self._write(key, fields)
        return True

    def update(self, job_id: str, **fields: Any) -> None:
        """Set some fields of a job (``updated_at`` too)."""
        with self._reaching():
            self._write(self._key(job_id), fields)

    def start(self, job_id: str, **fields: Any) -> int:
        """Mark the job running; the number of this attempt (1 for the first)."""
        key = self._key(job_id)
        with self._reaching():
            pipe = self._redis.pipeline()
            pipe.hsetnx(key, "job_id", json.dumps(job_id))
            pipe.hsetnx(key, "created_at", json.dumps(now()))
            pipe.hincrby(key, "attempts", 1)
            attempts = int(pipe.execute()[2])
            self._write(key, {"state": "running", "started_at": now(), "finished_at": None,
                              "next_attempt_at": None, **fields})
        return attempts

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job's fields, or None when there is no such job."""
        with self._reaching():
            raw = self._redis.hgetall(self._key(job_id))
        if not raw:
            return None
        return {(k.decode() if isinstance(k, bytes) else k): json.loads(v)
                for k, v in raw.items()}

    def delete(self, job_id: str) -> None:
        with self._reaching():
            self._redis.delete(self._key(job_id))

    def close(self) -> None:
        self._redis.close()

    def _write(self, key: str, fields: dict[str, Any]) -> None:
        values = {name: json.dumps(value) for name, value in
                  {**fields, "updated_at": now()}.items() if name != "attempts"}
        pipe = self._redis.pipeline()
        pipe.hset(key, mapping=values)  # type: ignore[arg-type]
        pipe.expire(key, KEEP_SECONDS)
        pipe.execute()
