"""One frozen ``Settings`` per run, resolved from the environment and flags.

``Settings.resolve`` is the only code that reads environment variables. Everything else is
handed a ``Settings``. Secrets are ``Secret`` objects whose ``repr``/``str`` are masked.

Backends are picked per stage: an explicit ``ESL_BUILD_PUBLISHER`` / ``ESL_BUILD_VOICE`` /
``ESL_BUILD_STORAGE`` wins; otherwise credentials decide (``NOTION_TOKEN`` → notion,
``ELEVENLABS_API_KEY`` → elevenlabs, ``S3_BUCKET`` → s3); otherwise the embedded defaults
(html, espeak, local) are used, which need no credentials and no network.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from esl_build.errors import ConfigInvalid
from esl_build.files import shown

PUBLISHERS = ("html", "notion")
VOICES = ("espeak", "elevenlabs")
STORAGES = ("local", "s3")

# Every variable esl-build reads, with a one-line description (docs/configuration.md and the
# CLI's `esl-build env` are generated from this table, so it stays complete).
ENV_VARS: dict[str, str] = {
    "ESL_BUILD_PUBLISHER": "publisher backend: html (default without NOTION_TOKEN) or notion",
    "ESL_BUILD_VOICE": "voice backend: espeak (default without ELEVENLABS_API_KEY) or elevenlabs",
    "ESL_BUILD_STORAGE": "storage backend: local (default without S3_BUCKET) or s3",
    "ESL_BUILD_LESSONS_DIR": "folder holding the lessons (default: lessons)",
    "ESL_BUILD_BUILD_DIR": "folder for build outputs (default: build)",
    "ESL_BUILD_LOCAL_BUCKET": "folder used as the bucket by local storage (default: build/bucket)",
    "ESL_BUILD_STRICT": "1/true: lesson warnings are errors",
    "ESL_BUILD_RUN_ID": "run id recorded in manifests (default: a random id per run)",
    "ESL_PIPELINE_CONFIG_DIR": "folder with presets.json, voices.yml, students/ (default: configs)",
    "NOTION_TOKEN": "Notion integration token (secret); selects the notion publisher",
    "NOTION_DB_ID": "Notion database that receives lesson pages",
    "NOTION_DATA_SOURCE_ID": "Notion data source that receives lesson pages",
    "NOTION_BASE_URL": "Notion API base URL (tests point it at a local fake)",
    "ELEVENLABS_API_KEY": "ElevenLabs API key (secret); selects the elevenlabs voice",
    "ELEVENLABS_BASE_URL": "ElevenLabs API base URL (tests point it at a local fake)",
    "ELEVENLABS_MODEL_ID": "ElevenLabs model (default eleven_multilingual_v2)",
    "S3_BUCKET": "bucket for audio; selects s3 storage",
    "S3_PREFIX": "key prefix for audio objects",
    "AWS_REGION": "AWS region (default us-east-1)",
    "AWS_ENDPOINT_URL_S3": "S3 endpoint URL (MinIO, moto, R2)",
}


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` are masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The secret itself: pass it to an SDK, never to a log or message."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class NotionSettings:
    token: Secret | None = None
    database_id: str | None = None
    data_source_id: str | None = None
    base_url: str | None = None


@dataclass(frozen=True)
class ElevenLabsSettings:
    api_key: Secret | None = None
    base_url: str | None = None
    model: str = "eleven_multilingual_v2"


@dataclass(frozen=True)
class S3Settings:
    bucket: str | None = None
    prefix: str = ""
    region: str = "us-east-1"
    endpoint_url: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything a build needs to know, resolved once. Paths are absolute."""

    root: Path
    lessons_dir: Path
    build_dir: Path
    config_dir: Path
    local_bucket: Path
    publisher: str = "html"
    voice: str = "espeak"
    storage: str = "local"
    strict: bool = False
    run_id: str = field(default_factory=lambda: "r-" + uuid.uuid4().hex[:8])
    notion: NotionSettings = NotionSettings()
    elevenlabs: ElevenLabsSettings = ElevenLabsSettings()
    s3: S3Settings = S3Settings()

    @property
    def site_dir(self) -> Path:
        return self.build_dir / "site"

    @property
    def backends(self) -> dict[str, str]:
        """Stage → backend name, as printed once per run and recorded in manifests."""
        return {"validate": "esl-build", "import": self.publisher, "tts": self.voice,
                "upload": self.storage, "add-audio": self.publisher}

    def relative(self, path: Path) -> str:
        """``path`` relative to the project root, posix style (for manifests and messages)."""
        return shown(path, self.root)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def resolve(cls, root: Path | str | None = None, env: Mapping[str, str] | None = None,
                **flags: object) -> Settings:
        """Build the settings from ``env`` (default ``os.environ``) and explicit ``flags``."""
        env = os.environ if env is None else env
        root = Path(root or os.getcwd()).resolve()

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def folder(name: str, default: str) -> Path:
            return (root / (get(name) or default)).resolve()

        def secret(name: str) -> Secret | None:
            value = get(name)
            return Secret(value) if value else None

        build_dir = folder("ESL_BUILD_BUILD_DIR", "build")
        settings = cls(
            root=root,
            lessons_dir=folder("ESL_BUILD_LESSONS_DIR", "lessons"),
            build_dir=build_dir,
            config_dir=folder("ESL_PIPELINE_CONFIG_DIR", "configs"),
            local_bucket=folder("ESL_BUILD_LOCAL_BUCKET", str(build_dir / "bucket")),
            publisher=_choose("ESL_BUILD_PUBLISHER", get, PUBLISHERS,
                              "notion" if get("NOTION_TOKEN") else "html"),
            voice=_choose("ESL_BUILD_VOICE", get, VOICES,
                          "elevenlabs" if get("ELEVENLABS_API_KEY") else "espeak"),
            storage=_choose("ESL_BUILD_STORAGE", get, STORAGES,
                            "s3" if get("S3_BUCKET") else "local"),
            strict=(get("ESL_BUILD_STRICT") or "").lower() in {"1", "true", "yes"},
            run_id=get("ESL_BUILD_RUN_ID") or "r-" + uuid.uuid4().hex[:8],
            notion=NotionSettings(token=secret("NOTION_TOKEN"), database_id=get("NOTION_DB_ID"),
                                  data_source_id=get("NOTION_DATA_SOURCE_ID"),
                                  base_url=get("NOTION_BASE_URL")),
            elevenlabs=ElevenLabsSettings(api_key=secret("ELEVENLABS_API_KEY"),
                                          base_url=get("ELEVENLABS_BASE_URL"),
                                          model=get("ELEVENLABS_MODEL_ID")
                                          or "eleven_multilingual_v2"),
            s3=S3Settings(bucket=get("S3_BUCKET"), prefix=(get("S3_PREFIX") or "").strip("/"),
                          region=get("AWS_REGION") or "us-east-1",
                          endpoint_url=get("AWS_ENDPOINT_URL_S3")),
        )
        return settings.with_(**flags) if flags else settings


def _choose(name: str, get: Callable[[str], str | None], allowed: tuple[str, ...],
            default: str) -> str:
    value = (get(name) or default).lower()
    if value not in allowed:
        raise ConfigInvalid(f"{name}={value!r} is not one of: {', '.join(allowed)}")
    return value
