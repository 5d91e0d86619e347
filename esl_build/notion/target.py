"""Where a lesson's page goes: a Notion data source named by the student's profile or by the
environment, found once per run (docs/notion.md, "Choosing the target").

A target is written as data, the form the import fingerprint holds: ``{"dataSource": id}``,
``{"database": id}`` (a database with exactly one data source) or ``{"databaseName": title}``
(a data source's exact title, found with ``POST /search`` filtered to data sources). The first
that applies: the student's own profile (``dataSourceId``, else ``dbId``, else ``dbName``),
the environment (``NOTION_DATA_SOURCE_ID``, ``NOTION_DB_ID``, ``NOTION_DB_NAME``, in that
order), the ``Default`` profile. ``resolve`` turns a target into its data source id and schema
with the fewest requests, once per run and target (an error too: every lesson with that target
gets the same one, and Notion is asked once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from esl_build.config import Config
from esl_build.errors import ConfigInvalid
from esl_build.notion.client import Api
from esl_build.settings import NotionSettings

WAYS = ("NOTION_DATA_SOURCE_ID or NOTION_DB_ID (or NOTION_DB_NAME; or dataSourceId, dbId or "
        "dbName in the student's profile, configs/students/*.json)")
_FIELDS = (("dataSourceId", "dataSource"), ("dbId", "database"), ("dbName", "databaseName"))


def target_in(fields: Mapping[str, Any]) -> dict[str, str] | None:
    """The target a profile (or the environment, in profile terms) names: its first field
    of dataSourceId, dbId, dbName that is set."""
    for name, kind in _FIELDS:
        value = fields.get(name)
        if isinstance(value, str) and value.strip():
            return {kind: value.strip()}
    return None


class Targets:
    """The targets of one run: which one a student's lessons go to, and what each is."""

    def __init__(self, settings: NotionSettings, profiles: Callable[[], Config] | None = None):
        self.default = target_in({"dataSourceId": settings.data_source_id,
                                  "dbId": settings.database_id,
                                  "dbName": settings.database_name})
        """The environment's target (None when it names none)."""
        if self.default is None and not any(  # no lesson could go anywhere: say so now
                target_in(profile) for profile in (profiles().students.values() if profiles
                                                   else ())):
            raise ConfigInvalid(f"the notion publisher needs {WAYS}; or unset NOTION_TOKEN or "
                                "set ESL_BUILD_PUBLISHER=html to use the embedded html "
                                "publisher (see docs/notion.md)")
        self._profiles = profiles
        self._lock = threading.Lock()
        self._resolved: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
        self._schemas: dict[str, dict[str, str]] = {}

    def of(self, student: str) -> dict[str, str]:
        """Where ``student``'s lessons go: the student's own profile, else the environment,
        else the ``Default`` profile. Pure: nothing is sent."""
        config = self._profiles() if self._profiles else None
        own = target_in(config.profile_of(student)) if config else None
        fallback = target_in(config.profile_of("default")) if config else None
        target = own or self.default or fallback
        if target is None:
            raise ConfigInvalid(f"no Notion target for the lessons of student {student!r}: "
                                f"set {WAYS}")
        return target

    def resolve(self, api: Api, target: Mapping[str, str]) -> dict[str, Any]:
        """The data source ``target`` names: ``{"id": …, "schema": {name: type}}``."""
        key = tuple(sorted(target.items()))
        with self._lock:
            if key not in self._resolved:
                try:
                    source_id = self._source_of(api, target)
                except ConfigInvalid as error:
                    self._resolved[key] = {"error": error}
                    raise
                self._resolved[key] = {"id": source_id,
                                       "schema": self._schema_locked(api, source_id)}
            found = self._resolved[key]
        if "error" in found:
            raise found["error"]
        return found

    def schema(self, api: Api, source_id: str) -> dict[str, str]:
        """A data source's properties, name → type (read once per run)."""
        with self._lock:
            return self._schema_locked(api, source_id)

    def _schema_locked(self, api: Api, source_id: str) -> dict[str, str]:
        if source_id not in self._schemas:
            source = api.call("read data source", api.sdk.data_sources.retrieve, source_id)
            self._schemas[source_id] = {name: str(prop.get("type")) for name, prop in
                                        (source.get("properties") or {}).items()}
        return self._schemas[source_id]

    @staticmethod
    def _source_of(api: Api, target: Mapping[str, str]) -> str:
        if "dataSource" in target:
            return target["dataSource"]
        if "database" in target:
            database = api.call("read database", api.sdk.databases.retrieve,
                                target["database"])
            sources = database.get("data_sources") or []
            if len(sources) != 1:
                names = ", ".join(f"{s.get('name')!r} ({s.get('id')})" for s in sources) or "none"
                raise ConfigInvalid(f"Notion database {target['database']} has {len(sources)} "
                                    f"data sources ({names}); name the one that receives "
                                    "lessons (NOTION_DATA_SOURCE_ID, or dataSourceId in the "
                                    "student profile)")
            return str(sources[0]["id"])
        name = target["databaseName"].strip()
        found = [source for source in _search_sources(api, name)
                 if _title(source).strip() == name]
        if len(found) != 1:
            raise ConfigInvalid(
                f"Notion data source named {name!r}: " + (
                    f"{len(found)} are titled so ({', '.join(str(s['id']) for s in found)}); "
                    "set NOTION_DATA_SOURCE_ID (or dataSourceId in the student profile) to "
                    "the one that receives lessons" if found else
                    "none is titled so, or it is not shared with the integration (••• → "
                    "Connections); check NOTION_DB_NAME or dbName"))
        return str(found[0]["id"])


def _search_sources(api: Api, name: str) -> list[dict[str, Any]]:
    """Every data source Notion's search finds for ``name`` (following the cursor)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        extra: dict[str, Any] = {"start_cursor": cursor} if cursor else {}
        answer = api.call("find data source", api.sdk.search, query=name, page_size=100,
                          filter={"property": "object", "value": "data_source"}, **extra)
        found += [r for r in answer.get("results", [])
                  if not r.get("in_trash") and not r.get("archived")]
        cursor = answer.get("next_cursor")
        if not answer.get("has_more") or not cursor:
            return found


def _title(source: Mapping[str, Any]) -> str:
    return "".join(str(item.get("plain_text") or (item.get("text") or {}).get("content", ""))
                   for item in source.get("title") or [])
