"""The life cycle the test servers share: listen on a free port of 127.0.0.1, serve from a
daemon thread, stop, and work as a context manager."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackHandler(BaseHTTPRequestHandler):
    """What every test server's handler shares: keep-alive HTTP/1.1, quiet, and no Nagle
    (headers and body leave in two writes; with Nagle on, the body waits for the client's
    delayed ACK of the headers, 40 ms per answer; servers turn it off)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer:
    """A base for an HTTP server of our own on 127.0.0.1. A subclass's ``start`` builds its
    handler class and calls ``_listen``; ``stop``, ``with`` and ``url`` come from here."""

    _server: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def _listen(self, handler: type[BaseHTTPRequestHandler],
                server: type[ThreadingHTTPServer] = ThreadingHTTPServer) -> Self:
        self._server = server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._server is None:
            raise RuntimeError(f"the {type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"
