"""``PostgresManifestStore``: lesson manifests as rows of a PostgreSQL table.

Selected by ``ESL_PIPELINE_MANIFEST_STORE=postgres`` with ``ESL_PIPELINE_MANIFEST_DSN`` (a libpq
connection string or URL; it may hold a password, so it is a secret) and optionally
``ESL_PIPELINE_MANIFEST_PREFIX`` (a namespace, so several repositories or tenants share one
database). The same versioned protocol as the file and S3 stores:

- one row per lesson, keyed by (namespace, lessons folder, lesson id), with a ``version``
  counter: a create is ``INSERT … ON CONFLICT DO NOTHING``, a replace is ``UPDATE … WHERE
  version = <the one read>``; zero rows touched is a ``WriteConflict``, which ``update``
  resolves by re-reading and re-applying its change (a per-stage merge);
- a run reads one listing (lesson ids and versions) for the namespace, so a no-op build whose
  lessons were verified before sends one query;
- leases are rows too, with an owner, a token and an expiry: taken by an upsert that only
  succeeds when the row is absent or expired, renewed by the holder while a stage runs,
  released by expiring it; a killed worker's lease simply runs out;
- the tables are created on first use (``CREATE TABLE IF NOT EXISTS``), and a
  ``esl_schema`` row records the schema version for later migrations.

psycopg (3) is imported only when this store is selected.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from esl_build.errors import ConfigInvalid, LeaseHeld, StateError, WriteConflict
from esl_build.files import relative_to
from esl_build.state import manifest as mf
from esl_build.state.listed import ListedStore
from esl_build.state.stores import Lease, Version, kept_alive, owner_id

if TYPE_CHECKING:
    from esl_build.settings import Secret, Settings

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS esl_schema (
    name text PRIMARY KEY,
    version integer NOT NULL
);
CREATE TABLE IF NOT EXISTS esl_manifests (
    namespace text NOT NULL,
    lesson text NOT NULL,
    version bigint NOT NULL,
    body text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, lesson)
);
CREATE TABLE IF NOT EXISTS esl_leases (
    namespace text NOT NULL,
    lesson text NOT NULL,
    owner text NOT NULL,
    token text NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (namespace, lesson)
);
INSERT INTO esl_schema (name, version) VALUES ('manifests', 1) ON CONFLICT (name) DO NOTHING;
"""
_MIGRATE_LOCK = 0x65736C  # pg_advisory_xact_lock key: two first users don't race on DDL


class PostgresManifestStore(ListedStore):
    """One row per lesson manifest in ``esl_manifests`` under ``namespace``; the rows'
    version numbers are the stamps (``ListedStore``)."""

    def __init__(self, dsn: Secret, *, namespace: str = "", sources: str = "lessons",
                 lease_ttl: float = 60.0, lease_timeout: float = 600.0, poll: float = 0.2):
        super().__init__(sources)
        self._dsn = dsn
        self.namespace = namespace
        self.lease_ttl = lease_ttl
        self.lease_timeout = lease_timeout
        self.poll = poll
        self._conn: Any = None
        self._conn_lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresManifestStore:
        """The store ``ESL_PIPELINE_MANIFEST_*`` describe."""
        store = settings.manifests
        if store.dsn is None:
            raise ConfigInvalid("ESL_PIPELINE_MANIFEST_STORE=postgres needs "
                                "ESL_PIPELINE_MANIFEST_DSN (e.g. postgresql://user@host/db)")
        root = store.root or settings.root
        base = relative_to(settings.lessons_dir, root)
        if base is None:
            raise ConfigInvalid(f"the lessons folder {settings.lessons_dir} is outside "
                                f"ESL_PIPELINE_MANIFEST_ROOT={root}: set it to a folder above "
                                "the lessons")
        namespace = "/".join(p for p in (store.prefix, "" if base == "." else base) if p)
        return cls(store.dsn, namespace=namespace,
                   sources=settings.relative(settings.lessons_dir),
                   lease_ttl=store.lease_ttl, lease_timeout=store.lease_timeout)

    # -- the connection -------------------------------------------------------------------
    def _connect(self) -> Any:
        import psycopg

        try:
            conn = psycopg.connect(self._dsn.reveal(), autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StateError(f"cannot connect to the manifest database: {_reason(exc, self._dsn)}"
                             ) from None
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            conn.execute(_SCHEMA)
        found = conn.execute("SELECT version FROM esl_schema WHERE name = 'manifests'").fetchone()
        if found and found[0] > SCHEMA_VERSION:
            conn.close()
            raise StateError(f"the manifest database has schema version {found[0]}; this "
                             f"esl-build knows {SCHEMA_VERSION}: upgrade esl-build")
        return conn

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """Run one statement on the shared connection; psycopg errors become StateError."""
        import psycopg

        with self._conn_lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            try:
                return self._conn.execute(sql, params)
            except psycopg.OperationalError as exc:
                self._conn = None  # reconnect next time
                raise StateError(f"manifest database: {_reason(exc, self._dsn)}") from None
            except psycopg.Error as exc:
                raise StateError(f"manifest database: {_reason(exc, self._dsn)}") from None

    def close(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- names ----------------------------------------------------------------------------
    def location(self, lesson_id: str) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"postgres:esl_manifests/{where}{lesson_id}"

    # -- reads and writes -----------------------------------------------------------------
    def _list(self) -> dict[str, int]:
        rows = self._query("SELECT lesson, version FROM esl_manifests WHERE namespace = %s",
                           (self.namespace,)).fetchall()
        return {lesson: version for lesson, version in rows}

    def read_versioned(self, lesson_id: str) -> tuple[mf.Manifest | None, Version]:
        row = self._query("SELECT body, version FROM esl_manifests "
                          "WHERE namespace = %s AND lesson = %s",
                          (self.namespace, lesson_id)).fetchone()
        if row is None:
            self._forget(lesson_id)
            return None, None
        body, version = row
        doc = mf.loads(body.encode(), where=self.location(lesson_id), lesson_id=lesson_id,
                       source=self._source(lesson_id))
        self._remember(lesson_id, version, doc)
        return doc, str(version)

    def write(self, lesson_id: str, manifest: mf.Manifest, *, expect: Version) -> Version:
        body = mf.dumps(manifest).decode()
        if expect is None:
            done = self._query("INSERT INTO esl_manifests (namespace, lesson, version, body) "
                               "VALUES (%s, %s, 1, %s) ON CONFLICT DO NOTHING",
                               (self.namespace, lesson_id, body)).rowcount
            version = 1
        else:
            version = int(expect) + 1
            done = self._query("UPDATE esl_manifests SET body = %s, version = %s, "
                               "updated_at = now() WHERE namespace = %s AND lesson = %s "
                               "AND version = %s",
                               (body, version, self.namespace, lesson_id, int(expect))).rowcount
        if done != 1:
            raise WriteConflict(f"{self.location(lesson_id)} changed since it was read")
        self._remember(lesson_id, version, json.loads(body), wrote=True)
        return str(version)

    def delete(self, lesson_id: str) -> None:
        """Remove a lesson's manifest (tests and migrations)."""
        self._query("DELETE FROM esl_manifests WHERE namespace = %s AND lesson = %s",
                    (self.namespace, lesson_id))
        self._forget(lesson_id)

    # -- leases ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def lease(self, lesson_id: str, timeout: float | None = None) -> Iterator[Lease]:
        """Hold the lesson's lease row, renewed every third of its TTL while held."""
        wait = self.lease_timeout if timeout is None else timeout
        token = uuid.uuid4().hex
        lease = self._acquire(lesson_id, token, wait)

        def renew() -> None:
            expires = time.time() + self.lease_ttl
            kept = self._query("UPDATE esl_leases SET expires_at = %s WHERE namespace = %s "
                               "AND lesson = %s AND token = %s",
                               (expires, self.namespace, lesson_id, token)).rowcount
            if kept == 1:
                lease.expires_at = expires
            else:
                lease.lost = True  # it expired and another worker took it over

        def release() -> None:  # anyone may take it at once
            self._query("UPDATE esl_leases SET expires_at = 0 WHERE namespace = %s "
                        "AND lesson = %s AND token = %s", (self.namespace, lesson_id, token))

        with kept_alive(lease, self.lease_ttl, renew, release):
            yield lease

    def _acquire(self, lesson_id: str, token: str, wait: float) -> Lease:
        deadline = time.monotonic() + wait
        owner = owner_id()
        while True:
            now = time.time()
            expires = now + self.lease_ttl
            taken = self._query(
                "INSERT INTO esl_leases AS l (namespace, lesson, owner, token, expires_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (namespace, lesson) DO UPDATE "
                "SET owner = EXCLUDED.owner, token = EXCLUDED.token, "
                "expires_at = EXCLUDED.expires_at WHERE l.expires_at < %s",
                (self.namespace, lesson_id, owner, token, expires, now)).rowcount
            if taken == 1:
                return Lease(lesson_id, owner, expires)
            if time.monotonic() >= deadline:
                row = self._query("SELECT owner, expires_at FROM esl_leases WHERE "
                                  "namespace = %s AND lesson = %s",
                                  (self.namespace, lesson_id)).fetchone()
                holder, until = row if row else ("another worker", time.time())
                raise LeaseHeld(f"lesson {lesson_id} is held by {holder} (lease "
                                f"{self.location(lesson_id)}, expires in "
                                f"{max(0.0, until - time.time()):.0f} s unless renewed); "
                                f"waited {wait:g} s. Try again when that build has finished")
            time.sleep(self.poll)


def _reason(exc: Exception, dsn: Secret | None = None) -> str:
    """A psycopg error's first line, with the connection string (which may hold a password)
    and any password in it masked."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if dsn is not None:
        secret = dsn.reveal()
        text = text.replace(secret, "***")
        for password in re.findall(r"password=(\S+)|://[^:/@]*:([^@]+)@", secret):
            for part in password:
                if part:
                    text = text.replace(part, "***")
    return text
