"""Where the configuration comes from: one ``ConfigProvider`` protocol, two providers.

A provider returns the raw documents (``ConfigDocuments``); ``config.parse_config`` checks
them and builds the frozen ``Config`` that every stage of a run reads (one snapshot per run).

``FileConfigProvider``    ``ESL_PIPELINE_CONFIG_DIR`` (which must exist when set), else
                          ``./configs``, else the package's defaults.
``RemoteConfigProvider``  ``ESL_PIPELINE_CONFIG_PROVIDER=http``: GETs presets, students and
                          voices from ``ESL_PIPELINE_CONFIG_ENDPOINT`` over httpx, with
                          ``Authorization: Bearer <ESL_PIPELINE_CONFIG_TOKEN>``, an optional
                          ``?tenant=<ESL_PIPELINE_CONFIG_TENANT>`` on every request, timeouts,
                          retries (connection errors, 429, 5xx) and ETag caching under
                          ``build/.cache/config/`` (a 304 reuses the cached body).

``identity()`` is what the cache of verified lessons keys on: the files' stamps, or the
fingerprint of the fetched documents, so a changed remote preset is seen on the next run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from esl_build.config import ConfigDocument, ConfigDocuments, read_config_dir
from esl_build.errors import ConfigInvalid
from esl_build.files import atomic_write
from esl_build.fingerprint import fingerprint, sha256_bytes

if TYPE_CHECKING:
    import httpx

    from esl_build.settings import Secret, Settings

PACKAGE_DEFAULTS = Path(__file__).resolve().parent / "scaffold" / "configs"


class ConfigProvider(Protocol):
    """Returns the configuration documents. FileConfigProvider, RemoteConfigProvider."""

    name: str

    def documents(self) -> ConfigDocuments:
        """Presets, student profiles and voices as read now (not yet checked)."""
        ...

    def identity(self) -> Any:
        """A JSON-able value that changes whenever ``documents`` would."""
        ...


class FileConfigProvider:
    """A configuration folder: the first of ``candidates`` that exists."""

    name = "file"

    def __init__(self, candidates: list[Path], *, root: Path, required: Path | None = None):
        if required is not None and not required.is_dir():
            raise ConfigInvalid(f"ESL_PIPELINE_CONFIG_DIR={required} is not a folder")
        self.folder = next((c for c in candidates if c.is_dir()), candidates[-1])
        self.root = root

    def documents(self) -> ConfigDocuments:
        return read_config_dir(self.folder, self.root)

    def identity(self) -> Any:
        from esl_build.state.checked import stamp

        found = sorted(str(p) for p in self.folder.glob("*.*")) + sorted(
            str(p) for p in (self.folder / "students").glob("*.json"))
        return {path: stamp(path) for path in found}


class RemoteConfigProvider:
    """Configuration documents from an HTTP service (see the module docstring)."""

    name = "http"

    def __init__(self, endpoint: str, *, token: Secret | None = None, tenant: str | None = None,
                 presets_path: str = "presets.json", students_path: str = "students.json",
                 voices_path: str = "voices.yml", timeout: float = 10.0, retries: int = 3,
                 cache_dir: Path | None = None, client: httpx.Client | None = None):
        self.endpoint = endpoint.rstrip("/") + "/"  # paths are joined, never replace its path
        self.token = token
        self.tenant = tenant
        self.paths = {"presets": presets_path, "students": students_path,
                      "voices": voices_path}
        self.timeout = timeout
        self.retries = retries
        self.cache_dir = cache_dir
        self._client = client
        self._documents: ConfigDocuments | None = None

    def url(self, what: str) -> str:
        """The URL of one document (``presets``, ``students`` or ``voices``)."""
        url = self.endpoint + self.paths[what].lstrip("/")
        return f"{url}?{urlencode({'tenant': self.tenant})}" if self.tenant else url

    def documents(self) -> ConfigDocuments:
        """The three documents, fetched once per provider (one snapshot per run)."""
        if self._documents is None:
            import httpx

            client = self._client or httpx.Client(timeout=self.timeout)
            try:
                got = {what: self._get(client, what) for what in self.paths}
            finally:
                if self._client is None:
                    client.close()
            self._documents = ConfigDocuments(got["presets"], tuple(
                doc for doc in (got["students"],) if doc is not None), got["voices"])
        return self._documents

    def identity(self) -> Any:
        docs = self.documents()
        return fingerprint([[d.name, d.text] for d in (docs.presets, *docs.students,
                                                       docs.voices) if d is not None])

    def _get(self, client: httpx.Client, what: str) -> ConfigDocument | None:
        import httpx

        url = self.url(what)
        cached = self._cached(url)
        headers = {"Accept": "application/json" if what != "voices" else
                   "application/yaml, text/plain"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.reveal()}"
        if cached:
            headers["If-None-Match"] = cached["etag"]
        problem = ""
        for attempt in range(self.retries):
            if attempt:
                time.sleep(min(2.0, 0.2 * 2 ** (attempt - 1)))
            try:
                answer = client.get(url, headers=headers, timeout=self.timeout)
            except httpx.HTTPError as exc:  # connection refused, timeout: worth retrying
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if answer.status_code == 304 and cached:
                return ConfigDocument(url, str(cached["text"]))
            if answer.status_code == 404:
                return None  # like a missing file: that part of the config is empty
            if answer.status_code in (401, 403):
                raise ConfigInvalid(f"config endpoint {url}: HTTP {answer.status_code}: the "
                                    "service refused ESL_PIPELINE_CONFIG_TOKEN")
            if answer.status_code == 429 or answer.status_code >= 500:
                problem = f"HTTP {answer.status_code}"
                continue
            if answer.status_code != 200:
                raise ConfigInvalid(f"config endpoint {url}: HTTP {answer.status_code}")
            try:
                text = answer.content.decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigInvalid("not UTF-8 text", path=url, line=1) from None
            etag = answer.headers.get("ETag")
            if etag:
                self._store(url, etag, text)
            return ConfigDocument(url, text)
        raise ConfigInvalid(f"config endpoint {url}: {problem} after {self.retries} attempts; "
                            "check ESL_PIPELINE_CONFIG_ENDPOINT and the service")

    def _cache_file(self, url: str) -> Path | None:
        return None if self.cache_dir is None else \
            self.cache_dir / (sha256_bytes(url.encode())[:24] + ".json")

    def _cached(self, url: str) -> dict[str, Any] | None:
        file = self._cache_file(url)
        try:
            saved = json.loads(file.read_text()) if file else None
        except (OSError, ValueError):
            return None
        return saved if isinstance(saved, dict) and saved.get("url") == url else None

    def _store(self, url: str, etag: str, text: str) -> None:
        file = self._cache_file(url)
        if file is not None:
            atomic_write(file, json.dumps({"url": url, "etag": etag, "text": text}).encode())


def config_provider_from(settings: Settings) -> ConfigProvider:
    """The provider the settings select."""
    config = settings.config
    if config.provider == "http" and config.endpoint:
        return RemoteConfigProvider(config.endpoint, token=config.token, tenant=config.tenant,
                                    presets_path=config.presets_path,
                                    students_path=config.students_path,
                                    voices_path=config.voices_path,
                                    cache_dir=settings.build_dir / ".cache" / "config")
    required = settings.config_dir if config.dir_explicit else None
    return FileConfigProvider([settings.config_dir, settings.root / "configs",
                               PACKAGE_DEFAULTS], root=settings.root, required=required)
