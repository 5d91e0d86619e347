"""A seeded fault-injecting HTTP proxy on 127.0.0.1, in front of any HTTP server.

``FaultProxy(upstream_url, rate=0.2, seed=1)`` listens on a free port and forwards each
request to ``upstream_url`` (real HTTP both ways), except that with probability ``rate``
(drawn from ``seed``) it injects one fault instead:

``429``        answered 429 with ``Retry-After``; nothing forwarded
``5xx``        answered one of ``statuses`` (500, 502, 503, 529; S3 has no 529: give it
               504 instead); nothing forwarded
``lost``       forwarded (the upstream *applies* it), then answered 502: the answer was lost
``slow``       forwarded, then answered only after ``slow`` seconds (past the client's
               timeout: the client gives up while the upstream has applied it)
``drop``       the connection is closed without an answer, before or after forwarding

It puts faults in front of servers that have none (moto) and the same faults in front of
every fake, so a test states one fault rate for all services. What it did is kept:
``requests`` (every request, with its fault and whether the upstream received it) and
``count(method, pattern)``. ``trigger(...)`` runs a callback on the k-th request matching a
pattern, before or after forwarding it (a test kills a build there)::

    with FaultProxy(moto.url, rate=0.2, seed=3, error_style="s3") as proxy:
        env["AWS_ENDPOINT_URL_S3"] = proxy.url
"""

from __future__ import annotations

import http.client
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from esl_build.testing.loopback import LoopbackHandler, LoopbackServer

FAULTS = ("429", "5xx", "lost", "slow", "drop")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection",
               "te", "trailer", "upgrade", "content-length"}


@dataclass
class ProxiedRequest:
    """One request as the proxy received it, and what it did with it."""

    method: str
    path: str
    body: bytes
    fault: str = ""          # "" (passed through) or one of FAULTS
    forwarded: bool = False  # the upstream received (and so may have applied) it
    answered: bool = False   # the client was sent the upstream's answer in full


@dataclass
class _Trigger:
    matches: Callable[[ProxiedRequest], bool]
    k: int
    after: bool
    action: Callable[[], None]
    seen: int = 0
    fired: bool = False


@dataclass
class FaultProxy(LoopbackServer):
    """The proxy. Use it as a context manager, or call ``start()`` and ``stop()``."""

    upstream: str
    rate: float = 0.0
    seed: int = 0
    faults: tuple[str, ...] = FAULTS
    statuses: tuple[int, ...] = (500, 502, 503, 529)
    slow: float = 1.0                 # seconds a ``slow`` answer is held back
    retry_after: str = "1"
    error_style: str = "json"         # "json" (Notion, ElevenLabs) or "s3" (XML)
    requests: list[ProxiedRequest] = field(default_factory=list)
    _random: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _triggers: list[_Trigger] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        return self._listen(Handler, _QuietServer)

    # -- what tests use ---------------------------------------------------------------------
    def count(self, method: str | None = None, pattern: str = "") -> int:
        """Requests received whose method is ``method`` (any if None) and path matches."""
        with self._lock:
            return sum(1 for r in self.requests
                       if (method is None or r.method == method) and re.search(pattern, r.path))

    def injected(self) -> dict[str, int]:
        """How many of each fault were injected."""
        with self._lock:
            counts = dict.fromkeys(self.faults, 0)
            for request in self.requests:
                if request.fault:
                    counts[request.fault] += 1
            return counts

    def applied_unanswered(self) -> list[ProxiedRequest]:
        """Requests the upstream received whose answer never reached the client."""
        with self._lock:
            return [r for r in self.requests if r.forwarded and not r.answered]

    def trigger(self, matches: Callable[[ProxiedRequest], bool], k: int,
                action: Callable[[], None], *, after: bool = False) -> None:
        """Call ``action`` on the ``k``-th request (1-based) that ``matches``, before it is
        forwarded (it is then never forwarded, nor answered) or, with ``after``, once the
        upstream has answered it (the answer is then not passed on: the connection drops)."""
        with self._lock:
            self._triggers.append(_Trigger(matches, k, after, action))

    def fired(self) -> bool:
        """Whether every trigger has fired."""
        with self._lock:
            return all(t.fired for t in self._triggers)

    # -- the handler's side -----------------------------------------------------------------
    def _receive(self, method: str, path: str, body: bytes
                 ) -> tuple[ProxiedRequest, _Trigger | None]:
        with self._lock:
            record = ProxiedRequest(method, path, body)
            self.requests.append(record)
            hit = None
            for t in self._triggers:
                if not t.fired and t.matches(record):
                    t.seen += 1
                    if t.seen == t.k:
                        t.fired, hit = True, t
            if hit is None and self.rate and self._random.random() < self.rate:
                record.fault = self._random.choice(self.faults)
            return record, hit

    def _choice(self, options: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._random.choice(options)

    def _error_body(self, status: int, code: str) -> tuple[str, bytes]:
        message = f"injected by the fault proxy: {code}"
        if self.error_style == "s3":
            s3_code = {429: "SlowDown", 503: "SlowDown"}.get(status, "InternalError")
            return "application/xml", (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{s3_code}</Code>'
                f"<Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
            ).encode()
        import json

        return "application/json", json.dumps(
            {"object": "error", "status": status, "code": code, "message": message,
             "detail": {"status": code, "message": message}}).encode()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a killed build, a timed-out request) is expected here."""


class _Handler(LoopbackHandler):
    owner: FaultProxy
    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        proxy = self.owner
        body = self._body()
        record, hit = proxy._receive(self.command, self.path, body)
        if hit is not None and not hit.after:
            hit.action()
            self._drop()
            return
        fault = record.fault
        if fault == "429":
            self._error(429, "rate_limited", {"Retry-After": proxy.retry_after})
            return
        if fault == "5xx":
            self._error(proxy._choice(proxy.statuses), "service_unavailable")
            return
        drop_first = fault == "drop" and proxy._choice((True, False))
        if drop_first:
            self._drop()
            return
        try:
            status, headers, answer = self._forward(body)
        except OSError:
            self._error(502, "bad_gateway")
            return
        record.forwarded = True
        if hit is not None:
            hit.action()
            self._drop()
            return
        if fault == "drop":
            self._drop()
            return
        if fault == "lost":
            self._error(502, "bad_gateway")
            return
        if fault == "slow":
            time.sleep(proxy.slow)
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            self.wfile.flush()
        except OSError:  # the client gave up (a slow answer past its timeout)
            self.close_connection = True
            return
        record.answered = fault != "slow"  # a slow answer arrives after the client gave up

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        target = urlsplit(self.owner.upstream)
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port,
                                                timeout=60)
        try:
            connection.putrequest(self.command, self.path, skip_host=True,
                                  skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    connection.putheader(name, value)
            if body or self.command in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            answer = response.read()
            keep = [(k, v) for k, v in response.getheaders()
                    if k.lower() not in _HOP_BY_HOP or
                    (self.command == "HEAD" and k.lower() == "content-length")]
            return response.status, keep, answer
        finally:
            connection.close()

    def _error(self, status: int, code: str, headers: dict[str, str] | None = None) -> None:
        kind, payload = self.owner._error_body(status, code)
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        try:
            import socket

            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
