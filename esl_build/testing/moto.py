"""A moto S3 server on 127.0.0.1 that counts the requests it receives (tests, benchmarks).

Requests are counted where the server receives them, so those of every process (doit
workers, subprocesses) are seen. Needs the ``moto[server]`` test extra.

moto records a bucket's object ownership but does not act on it; this server does, as S3
does: on a bucket whose ownership is ``BucketOwnerEnforced`` (set by
``PutBucketOwnershipControls`` or ``CreateBucket``'s ``ObjectOwnership``), a request that
sets an ACL other than ``bucket-owner-full-control`` is refused with ``400
AccessControlListNotSupported`` and changes nothing. Buckets are found by path-style
addressing (``S3_ADDRESSING_STYLE=path``), which is how esl-build's tests reach moto.
"""

from __future__ import annotations

import re
from collections import Counter
from threading import Lock
from typing import Any

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_REFUSED = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
            b"<Code>AccessControlListNotSupported</Code>"
            b"<Message>The bucket does not allow ACLs</Message></Error>")


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
        self.access_keys: Counter[str] = Counter()  # the key id each request was signed with
        lock = Lock()
        moto_app = DomainDispatcherApplication(create_backend_app)

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            signed = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
            with lock:
                self.requests[environ["REQUEST_METHOD"]] += 1
                if signed:
                    self.access_keys[signed.group(1)] += 1
            if _sets_forbidden_acl(environ):
                start_response("400 Bad Request", [("Content-Type", "application/xml"),
                                                   ("Content-Length", str(len(_REFUSED)))])
                return [_REFUSED]
            return moto_app(environ, start_response)

        class Quiet(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass  # counted above; a line per request would drown a benchmark's output

        class Counting(ThreadedMotoServer):
            def _server_entry(self) -> None:
                self._server = make_server("127.0.0.1", 0, app, True,
                                           request_handler=Quiet)
                self._server_ready_event.set()
                self._server.serve_forever()

        self._moto = Counting(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._moto.stop()


def _sets_forbidden_acl(environ: dict[str, Any]) -> bool:
    """A request that sets an ACL (``x-amz-acl`` or a grant header) on a bucket whose object
    ownership is ``BucketOwnerEnforced``."""
    acl = environ.get("HTTP_X_AMZ_ACL")
    grants = any(name.startswith("HTTP_X_AMZ_GRANT_") for name in environ)
    if environ["REQUEST_METHOD"] not in ("PUT", "POST") or not (grants or (
            acl and acl != "bucket-owner-full-control")):
        return False
    bucket = environ.get("PATH_INFO", "").lstrip("/").split("/", 1)[0]
    return bool(bucket) and _ownership(bucket) == "BucketOwnerEnforced"


def _ownership(bucket: str) -> str | None:
    """The object ownership moto holds for ``bucket`` (in any account), or None."""
    from moto.s3.models import s3_backends

    for account in list(s3_backends):
        found = s3_backends[account]["global"].buckets.get(bucket)
        if found is not None:
            rule: object = found.ownership_rule  # typed a dict by moto; it holds the name
            return rule if isinstance(rule, str) else None
    return None
