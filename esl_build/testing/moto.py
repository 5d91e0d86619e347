"""A moto S3 server on 127.0.0.1 that counts the requests it receives (tests, benchmarks).

Requests are counted where the server receives them, so those of every process (doit
workers, subprocesses) are seen. Needs the ``moto[server]`` test extra.
"""

from __future__ import annotations

from collections import Counter
from threading import Lock
from typing import Any


class CountingMotoServer:
    """A moto server on 127.0.0.1 that counts requests by method."""

    def __init__(self) -> None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self.requests: Counter[str] = Counter()
        lock = Lock()
        moto_app = DomainDispatcherApplication(create_backend_app)

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            with lock:
                self.requests[environ["REQUEST_METHOD"]] += 1
            return moto_app(environ, start_response)


        class Counting(ThreadedMotoServer):
            def _server_entry(self) -> None:
                self._server = make_server("127.0.0.1", 0, app, True,
                                           request_handler=MotoRequestHandler)
                self._server_ready_event.set()
                self._server.serve_forever()

        self._moto = Counting(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._moto.stop()
