"""``S3ManifestStore``: lesson manifests as objects in a bucket, shared by many machines.

Selected by ``ESL_PIPELINE_MANIFEST_STORE=s3`` with ``ESL_PIPELINE_MANIFEST_BUCKET``,
``…_PREFIX`` and ``…_ROOT``. A lesson's key is its manifest's path relative to the root (the
project, unless ``…_ROOT`` says otherwise) under the prefix::

    <prefix>/lessons/b1/unit1.manifest.json        (lesson b1/unit1, root = the project)

so two lessons never share a key (a lessons folder outside the root is an error, never
collapsed to a base name) and two checkouts of one repository share their manifests.

- Writes are conditional: ``If-None-Match: *`` creates, ``If-Match: <etag>`` replaces; a 412
  (or a 409 ``ConditionalRequestConflict``) is a ``WriteConflict``, which ``update`` resolves
  by re-reading and re-applying its change (a per-stage merge), never by overwriting.
- A run lists the prefix once; the listing's ETags are the manifests' stamps, so a no-op
  build whose lessons were verified before sends one LIST and no GET.
- Leases are objects under ``<prefix>/.leases/``: created with ``If-None-Match: *``, renewed
  and taken over (once expired) with ``If-Match``, released by writing them expired.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from esl_build.errors import ConfigInvalid, LeaseHeld, StateError, WriteConflict
from esl_build.files import relative_to
from esl_build.services.s3 import MISSING, error_code, s3_client, storage_error
from esl_build.state import manifest as mf
from esl_build.state.listed import ListedStore
from esl_build.state.stores import Lease, Version, kept_alive, owner_id, places_of

if TYPE_CHECKING:
    from esl_build.settings import Settings

SUFFIX = ".manifest.json"
_CONFLICT = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}


class S3ManifestStore(ListedStore):
    """One manifest object per lesson in ``bucket`` under ``prefix``/``base``; the listing's
    ETags are the stamps (``ListedStore``)."""

    def __init__(self, client: Any, *, bucket: str, prefix: str = "", base: str = "lessons",
                 sources: str = "lessons", lease_ttl: float = 60.0,
                 lease_timeout: float = 600.0, poll: float = 0.2,
                 places: mf.Places | None = None):
        super().__init__(sources)
        self.client = client
        self.bucket = bucket
        self.base = "/".join(part for part in (prefix.strip("/"), base.strip("/")) if part)
        self.lease_base = "/".join(part for part in (prefix.strip("/"), ".leases",
                                                     base.strip("/")) if part)
        self.lease_ttl = lease_ttl
        self.lease_timeout = lease_timeout
        self.poll = poll
        self.places = places  # where local paths in a manifest may point (see mf.loads)

    @classmethod
    def from_settings(cls, settings: Settings, client: Any | None = None) -> S3ManifestStore:
        """The store ``ESL_PIPELINE_MANIFEST_*`` describe (region, endpoint as for audio)."""
        store = settings.manifests
        if not store.bucket:
            raise ConfigInvalid("the S3 manifest store needs ESL_PIPELINE_MANIFEST_BUCKET "
                                "(the bucket that holds the manifests)")
        root = store.root or settings.root
        base = relative_to(settings.lessons_dir, root)
        if base is None:
            raise ConfigInvalid(f"the lessons folder {settings.lessons_dir} is outside "
                                f"ESL_PIPELINE_MANIFEST_ROOT={root}: manifest keys are paths "
                                "relative to that root, so set it to a folder above the lessons")
        return cls(client or s3_client(settings.s3), bucket=store.bucket, prefix=store.prefix,
                   base="" if base == "." else base,
                   sources=settings.relative(settings.lessons_dir),
                   lease_ttl=store.lease_ttl, lease_timeout=store.lease_timeout,
                   places=places_of(settings))

    # -- names --------------------------------------------------------------------------------
    def key(self, lesson_id: str) -> str:
        """The object key of a lesson's manifest."""
        return f"{self.base}/{_safe(lesson_id)}{SUFFIX}" if self.base else \
            f"{_safe(lesson_id)}{SUFFIX}"

    def location(self, lesson_id: str) -> str:
        return f"s3://{self.bucket}/{self.key(lesson_id)}"

    # -- listing --------------------------------------------------------------------------------
    def _list(self) -> dict[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        start = f"{self.base}/" if self.base else ""
        found: dict[str, str] = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start)
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"]
                    if key.endswith(SUFFIX) and not key[len(start):].startswith("."):
                        found[key[len(start):-len(SUFFIX)]] = item["ETag"]
        except (ClientError, BotoCoreError) as exc:
            raise _state_error(exc, f"cannot list s3://{self.bucket}/{start}") from None
        return found

    # -- reads and writes ---------------------------------------------------------------------
    def read_versioned(self, lesson_id: str) -> tuple[mf.Manifest | None, Version]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(lesson_id))
            data = answer["Body"].read()
        except ClientError as exc:
            if error_code(exc) in MISSING:
                self._forget(lesson_id)
                return None, None
            raise _state_error(exc, f"cannot read {self.location(lesson_id)}") from None
        except BotoCoreError as exc:
            raise _state_error(exc, f"cannot read {self.location(lesson_id)}") from None
        etag = str(answer["ETag"])
        doc = mf.loads(data, where=self.location(lesson_id), lesson_id=lesson_id,
                       source=self._source(lesson_id), places=self.places)
        self._remember(lesson_id, etag, doc)
        return doc, etag

    def write(self, lesson_id: str, manifest: mf.Manifest, *, expect: Version) -> Version:
        from botocore.exceptions import BotoCoreError, ClientError

        condition = {"IfMatch": expect} if expect else {"IfNoneMatch": "*"}
        try:
            answer = self.client.put_object(
                Bucket=self.bucket, Key=self.key(lesson_id), Body=mf.dumps(manifest),
                ContentType="application/json", **condition)
        except ClientError as exc:
            if error_code(exc) in _CONFLICT:
                raise WriteConflict(f"{self.location(lesson_id)} changed since it was read"
                                    ) from None
            raise _state_error(exc, f"cannot write {self.location(lesson_id)}") from None
        except BotoCoreError as exc:
            raise _state_error(exc, f"cannot write {self.location(lesson_id)}") from None
        etag = str(answer["ETag"])
        self._remember(lesson_id, etag, json.loads(mf.dumps(manifest)), wrote=True)
        return etag

    def delete(self, lesson_id: str) -> None:
        """Remove a lesson's manifest (tests and migrations)."""
        self.client.delete_object(Bucket=self.bucket, Key=self.key(lesson_id))
        self._forget(lesson_id)

    # -- leases ---------------------------------------------------------------------------------
    def lease_key(self, lesson_id: str) -> str:
        return f"{self.lease_base}/{_safe(lesson_id)}.json"

    @contextlib.contextmanager
    def lease(self, lesson_id: str, timeout: float | None = None) -> Iterator[Lease]:
        """Hold the lesson's lease object, renewed every third of its TTL while held."""
        wait = self.lease_timeout if timeout is None else timeout
        lease, etag = self._acquire(lesson_id, wait)
        state = {"etag": etag}

        def renew() -> None:
            lease.expires_at = time.time() + self.lease_ttl
            try:
                state["etag"] = self._put_lease(lesson_id, lease, {"IfMatch": state["etag"]})
            except WriteConflict:
                lease.lost = True  # it expired and another worker took it over

        def release() -> None:
            lease.expires_at = 0.0  # released: anyone may take it at once
            with contextlib.suppress(WriteConflict):
                self._put_lease(lesson_id, lease, {"IfMatch": state["etag"]})

        with kept_alive(lease, self.lease_ttl, renew, release):
            yield lease

    def _acquire(self, lesson_id: str, wait: float) -> tuple[Lease, str]:
        deadline = time.monotonic() + wait
        owner = owner_id()
        while True:
            lease = Lease(lesson_id, owner, time.time() + self.lease_ttl)
            try:
                return lease, self._put_lease(lesson_id, lease, {"IfNoneMatch": "*"})
            except WriteConflict:
                pass
            held, etag = self._read_lease(lesson_id)
            if etag is not None and float(held.get("expires", 0)) < time.time():
                try:  # expired (released, or its holder was killed): take it over
                    return lease, self._put_lease(lesson_id, lease, {"IfMatch": etag})
                except WriteConflict:
                    continue  # someone else took it first
            if etag is None:
                continue  # released in between
            if time.monotonic() >= deadline:
                left = max(0.0, float(held.get("expires", 0)) - time.time())
                raise LeaseHeld(f"lesson {lesson_id} is held by {held.get('owner', '?')} "
                                f"(lease s3://{self.bucket}/{self.lease_key(lesson_id)}, "
                                f"expires in {left:.0f} s unless renewed); waited {wait:g} s. "
                                "Try again when that build has finished")
            time.sleep(self.poll)

    def _put_lease(self, lesson_id: str, lease: Lease, condition: dict[str, str]) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        body = json.dumps({"lesson": lesson_id, "owner": lease.owner,
                           "expires": lease.expires_at}).encode()
        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=self.lease_key(lesson_id),
                                            Body=body, ContentType="application/json",
                                            **condition)
        except ClientError as exc:
            if error_code(exc) in _CONFLICT:
                raise WriteConflict(f"lease of {lesson_id} changed") from None
            raise _state_error(exc, f"cannot write the lease of {lesson_id}") from None
        except BotoCoreError as exc:
            raise _state_error(exc, f"cannot write the lease of {lesson_id}") from None
        return str(answer["ETag"])

    def _read_lease(self, lesson_id: str) -> tuple[dict[str, Any], str | None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.lease_key(lesson_id))
            held = json.loads(answer["Body"].read())
        except ClientError as exc:
            if error_code(exc) in MISSING:
                return {}, None
            raise _state_error(exc, f"cannot read the lease of {lesson_id}") from None
        except BotoCoreError as exc:
            raise _state_error(exc, f"cannot read the lease of {lesson_id}") from None
        except ValueError:
            held = {}  # a torn or foreign lease object: treat it as expired
            answer = {"ETag": answer["ETag"]}
        return (held if isinstance(held, dict) else {}), str(answer["ETag"])


def _safe(lesson_id: str) -> str:
    parts = lesson_id.split("/")
    if (not lesson_id or "\\" in lesson_id or "\0" in lesson_id
            or any(part in ("", ".", "..") or part.startswith(".") for part in parts)):
        raise StateError(f"lesson id {lesson_id!r} cannot name a manifest key")
    return lesson_id


def _state_error(exc: Exception, doing: str) -> StateError:
    return StateError(str(storage_error(exc, doing)).removeprefix("storage: "))
