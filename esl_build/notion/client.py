"""Every Notion request esl-build sends goes through ``Api.call``: paced, retried, counted.

Pacing: one ``Limiter`` (a token bucket, ``rate`` requests/s on average, bursts of ``burst``)
per token, shared by every thread of the process. Notion limits a connection, not a thread,
so the limiters live in a registry keyed by the token's SHA-256 (never the token itself):
the one piece of process-global mutable state in esl-build, by design.

Retries: a 429 is always retried after ``Retry-After`` (the request was not applied); 500,
502, 503, 504, 529, timeouts and dropped connections are retried with exponential backoff
when the call is idempotent (reads, ``PATCH /blocks/{id}``, deletes). For a write that is not
(create a page, append children) ``LostWrite`` is raised instead: the caller checks whether
Notion applied it before sending it again, so a lost answer never duplicates a page or block.

Errors become ``PublishError`` naming the lesson, the stage and Notion's message (and its
request id); the token never appears (the SDK's exceptions don't carry it, and we add none).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from esl_build.errors import PublishError

RETRYABLE_STATUS = frozenset({500, 502, 503, 504, 529})
MAX_ATTEMPTS = 8


class Limiter:
    """A token bucket: ``acquire`` blocks until a request may be sent."""

    def __init__(self, rate: float, burst: int = 3):
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._then = time.monotonic()
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(float(self.burst),
                                   self._tokens + (now - self._then) * self.rate)
                self._then = now
                wait = max(self._paused_until - now, 0.0)
                if not wait and self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = wait or (1 - self._tokens) / self.rate
            time.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Hold every thread using this token for ``seconds`` (after a 429)."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)
            self._tokens = 0.0


_limiters: dict[tuple[str, float], Limiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(token: str, rate: float) -> Limiter:
    """The process's limiter for ``token`` (created on first use; keyed by its hash)."""
    key = (hashlib.sha256(token.encode()).hexdigest(), rate)
    with _limiters_lock:
        if key not in _limiters:
            _limiters[key] = Limiter(rate, burst=max(1, round(rate)))
        return _limiters[key]


class LostWrite(Exception):
    """A non-idempotent write got no usable answer: it may or may not have been applied."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Api:
    """Calls on one SDK client for one lesson's stage, counting what they send."""

    def __init__(self, sdk: Any, limiter: Limiter, *, lesson_id: str, stage: str,
                 backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep):
        self.sdk, self.limiter = sdk, limiter
        self.lesson_id, self.stage = lesson_id, stage
        self.backoff, self.sleep = backoff, sleep
        self.requests = 0
        self.writes = 0  # requests that may change something (not GET)
        self.blocks_created = 0

    def fail(self, message: str, *, retryable: bool = False,
             request_id: str | None = None) -> PublishError:
        """A ``PublishError`` naming this lesson and stage."""
        return PublishError(f"{self.stage}:{self.lesson_id}: Notion: {message}",
                            retryable=retryable, request_id=request_id)

    def call(self, what: str, fn: Callable[..., Any], *args: Any, idempotent: bool = True,
             **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` paced and retried; ``what`` names the call in errors."""
        import httpx
        from notion_client.errors import APIResponseError, HTTPResponseError, RequestTimeoutError

        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
            self.requests += 1
            self.writes += not what.startswith(("read", "list", "find"))
            try:
                return fn(*args, **kwargs)
            except HTTPResponseError as exc:  # APIResponseError, or a non-JSON error body
                status, headers, request_id = exc.status, exc.headers, exc.request_id
                message = _message(exc) if isinstance(exc, APIResponseError) \
                    else f"HTTP {exc.status}"
            except (RequestTimeoutError, httpx.TimeoutException):
                status, message, request_id, headers = 0, "request timed out", None, None
            except httpx.TransportError as exc:
                status, request_id, headers = 0, None, None
                message = f"connection failed ({type(exc).__name__})"
            if status == 429:
                delay = _retry_after(headers) if headers is not None else None
                delay = self.backoff * 2 ** min(attempt, 6) if delay is None else delay
                self.limiter.pause(min(delay, 60.0))
                if attempt < MAX_ATTEMPTS * 2:
                    continue
            elif status in RETRYABLE_STATUS or status == 0:
                if not idempotent:
                    raise LostWrite(f"{what}: {message}")
                if attempt < MAX_ATTEMPTS:
                    self.sleep(min(self.backoff * 2 ** (attempt - 1), 8.0)
                               * random.uniform(0.75, 1.25))
                    continue
            raise self.fail(f"{what}: {message}", retryable=status in RETRYABLE_STATUS
                            or status in (0, 429), request_id=request_id)

    def retry_pause(self, attempt: int) -> None:
        """Wait before sending a write again whose answer was lost."""
        self.sleep(min(self.backoff * 2 ** (attempt - 1), 8.0))


def _message(exc: Any) -> str:
    body = exc.body
    if isinstance(body, str):
        import json

        try:
            data = json.loads(body)
        except ValueError:
            return body[:200]
        return str(data.get("message") or data.get("code") or body[:200])
    if isinstance(body, dict):
        return str(body.get("message") or body.get("code"))
    return str(exc)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None
