"""One frozen ``Settings`` per run, resolved from the environment and flags.

``Settings.resolve`` is the only code that reads environment variables. Everything else is
handed a ``Settings``. Secrets are ``Secret`` objects whose ``repr``/``str`` are masked.

Backends are picked per stage: an explicit ``ESL_BUILD_PUBLISHER`` / ``ESL_BUILD_VOICE`` /
``ESL_BUILD_STORAGE`` wins; otherwise credentials decide (``NOTION_TOKEN`` → notion,
``ELEVENLABS_API_KEY`` → elevenlabs, ``S3_BUCKET`` → s3); otherwise the embedded defaults
(html, espeak, local) are used, which need no credentials and no network.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar, overload

from esl_build.errors import ConfigInvalid
from esl_build.files import shown

PUBLISHERS = ("html", "notion")
VOICES = ("espeak", "elevenlabs")
STORAGES = ("local", "s3")
SERVICE_MODES = ("inline", "queue")
DEFAULT_QUEUE_URL = "redis://localhost:6379/0"
MANIFEST_STORES = ("file", "s3", "postgres")
ADDRESSING_STYLES = ("auto", "path", "virtual")
CHECKSUM_MODES = ("when_supported", "when_required")
DEFAULT_KEY_TEMPLATE = "{prefix}/{lesson}/{sha16}.mp3"
Getter = Callable[[str], str | None]  # a variable's stripped value, None when unset/empty
CONFLICT_MODES = ("stop", "force", "keep-notion")
T = TypeVar("T", int, float)
DAY = 86400.0  # the longest a queue delay may be, in seconds
PRESIGN_MAX = 604800  # seconds: S3 refuses presigned URLs valid longer than 7 days

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
    "NOTION_DB_NAME": "or: the exact title of that data source, found by Notion's search",
    "NOTION_BASE_URL": "Notion API base URL (tests point it at a local fake)",
    "NOTION_RATE_LIMIT": "Notion requests per second per token, bursts allowed (default 3)",
    "NOTION_RETRY_DELAY": "seconds before the first retry of a failed Notion request, doubling "
                          "after (default 0.5)",
    "NOTION_TIMEOUT_SECONDS": "seconds before a Notion request is abandoned (then retried when "
                              "safe, or checked; default 60)",
    "NOTION_ON_CONFLICT": "a block edited in the lesson and in Notion: stop (default), force "
                          "(take the lesson's) or keep-notion (keep Notion's)",
    "STUDENTS_DB_ID": "Notion data source of student pages (the Student relation's target)",
    "ELEVENLABS_API_KEY": "ElevenLabs API key (secret); selects the elevenlabs voice",
    "ELEVENLABS_BASE_URL": "ElevenLabs API base URL (tests point it at a local fake)",
    "ELEVENLABS_MODEL_ID": "ElevenLabs model for monologue mode (default eleven_multilingual_v2)",
    "ELEVENLABS_TTS_MODE": "auto (default: dialogue for dialogues), monologue or dialogue",
    "ELEVENLABS_OUTPUT_FORMAT": "audio requested from ElevenLabs: pcm_<rate> (default pcm_24000)",
    "ELEVENLABS_LANGUAGE": "ISO 639-1 language code sent with each request (default: none)",
    "ELEVENLABS_STABILITY": "voice stability 0..1 sent with each request (default: the voice's)",
    "ELEVENLABS_SEED": "seed 0..4294967295 for best-effort reproducible audio (default: none)",
    "ELEVENLABS_CONCURRENCY": "ElevenLabs requests in flight per process (default 4)",
    "ELEVENLABS_TIMEOUT_SECONDS": "seconds before an ElevenLabs request is abandoned and retried "
    "(default 120)",
    "ELEVENLABS_SILENCE_TAIL_SECONDS": "silence after the last line, 0..10 s (default 0.6)",
    "ESL_BUILD_MAX_CHARACTERS": "refuse to start a build that would bill more characters",
    "S3_BUCKET": "bucket for audio; selects s3 storage",
    "S3_PREFIX": "key prefix for audio objects",
    "AWS_REGION": "AWS region (default us-east-1)",
    "AWS_ENDPOINT_URL_S3": "S3 endpoint URL (MinIO, moto, R2)",
    "S3_KEY_TEMPLATE": "object key of a lesson's audio (default {prefix}/{lesson}/{sha16}.mp3)",
    "S3_PUBLIC_BASE_URL": "public URL of the bucket (a CDN); audio URLs are built on it",
    "S3_PUBLIC_READ": "1/true: upload with the public-read ACL (an error if the bucket forbids "
                      "ACLs); esl-build build --public-read",
    "S3_PRESIGN_SECONDS": "link audio by presigned URLs valid this many seconds, 1 to 604800 "
                          "(they expire in Notion); esl-build build --presign SECONDS",
    "S3_TIMEOUT_SECONDS": "seconds before an S3 request is abandoned and retried (default 60)",
    "S3_ADDRESSING_STYLE": "S3 addressing: auto (default), path (MinIO, moto) or virtual",
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_supported (default) or when_required (servers "
                                        "that reject botocore's default checksums)",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_supported (default) or when_required",
    "ESL_PIPELINE_MANIFEST_STORE": "manifest store: file (default, beside the lessons), s3 or "
                                   "postgres",
    "ESL_PIPELINE_MANIFEST_DSN": "PostgreSQL connection string of the postgres manifest store "
                                 "(secret: it may hold a password)",
    "ESL_PIPELINE_MANIFEST_BUCKET": "bucket of the s3 manifest store (required with it)",
    "ESL_PIPELINE_MANIFEST_PREFIX": "key prefix of the s3 manifest store (e.g. manifests/prod)",
    "ESL_PIPELINE_MANIFEST_ROOT": "folder manifest keys are relative to (default: the project)",
    "ESL_PIPELINE_CONFIG_PROVIDER": "config source: file (default: ESL_PIPELINE_CONFIG_DIR, "
                                    "./configs, the package's defaults) or http",
    "ESL_PIPELINE_CONFIG_ENDPOINT": "base URL of the http config provider (required with it)",
    "ESL_PIPELINE_CONFIG_TOKEN": "bearer token for the http config provider (secret)",
    "ESL_PIPELINE_CONFIG_TENANT": "tenant id sent with every config request (?tenant=…)",
    "ESL_PIPELINE_CONFIG_PRESETS_PATH": "presets path under the endpoint (default presets.json)",
    "ESL_PIPELINE_CONFIG_STUDENTS_PATH": "students path under the endpoint (default "
                                         "students.json: a JSON array of profiles)",
    "ESL_PIPELINE_CONFIG_VOICES_PATH": "voices path under the endpoint (default voices.yml)",
    "ESL_PIPELINE_LEASE_TTL": "seconds a lesson lease (and a TTS cache claim) lasts unless "
                              "renewed (default 60)",
    "ESL_PIPELINE_LEASE_TIMEOUT": "seconds to wait for another worker's lease (default 600)",
    "ESL_BUILD_EVENT_LOG": "file that doit and CLI runs append stage events to (JSON lines)",
    "ESL_BUILD_SERVICE_TOKEN": "bearer token the HTTP worker requires (secret; default: none)",
    "ESL_BUILD_SERVICE_LIVE": "1/true: the HTTP worker runs live jobs (default: dry runs only)",
    "ESL_BUILD_SERVICE_MAX_JOBS": "live jobs the HTTP worker runs at once (default 2)",
    "ESL_BUILD_SERVICE_MODE": "inline (jobs run in the HTTP worker) or queue (live jobs are "
                              "enqueued; default: queue when ESL_BUILD_QUEUE_URL is set)",
    "ESL_BUILD_ROOT": "the lessons repository a queue worker builds (default: its working folder)",
    "ESL_BUILD_QUEUE_URL": "Celery broker URL: redis://host:6379/0 (default) or sqs:// (secret)",
    "ESL_BUILD_QUEUE_STATUS_URL": "Redis URL for job status (default: ESL_BUILD_QUEUE_URL when "
                                  "it is a Redis URL; required with SQS) (secret)",
    "ESL_BUILD_QUEUE_NAME": "queue name, also the prefix of job status keys (default esl-build)",
    "ESL_BUILD_QUEUE_TRANSPORT_OPTIONS": "JSON object of Celery broker transport options "
                                         "(SQS region, predefined_queues, …)",
    "ESL_BUILD_QUEUE_VISIBILITY_TIMEOUT": "seconds before an unacknowledged job is redelivered "
                                          "(Redis, SQS; default 3600: longer than any job)",
    "ESL_BUILD_QUEUE_MAX_ATTEMPTS": "attempts per job, redeliveries included (default 5)",
    "ESL_BUILD_QUEUE_BACKOFF": "first retry delay in seconds, doubled per attempt (default 2)",
    "ESL_BUILD_QUEUE_BACKOFF_MAX": "longest retry delay in seconds (default 300)",
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
    database_name: str | None = None
    base_url: str | None = None
    students_id: str | None = None
    rate: float = 3.0
    backoff: float = 0.5  # seconds before the first retry of a failed request
    on_conflict: str = "stop"
    timeout: float = 60.0


TTS_MODES = ("auto", "monologue", "dialogue")


@dataclass(frozen=True)
class ElevenLabsSettings:
    """How the elevenlabs voice speaks (see docs/elevenlabs.md); checked by ``resolve``."""

    api_key: Secret | None = None
    base_url: str | None = None
    model: str = "eleven_multilingual_v2"
    mode: str = "auto"
    output_format: str = "pcm_24000"
    language: str | None = None
    stability: float | None = None
    seed: int | None = None
    concurrency: int = 4
    silence_tail: float = 0.6
    timeout: float = 120.0


@dataclass(frozen=True)
class S3Settings:
    """Where audio goes and how it is linked. ``prefix`` defaults to ``audio``, so the
    default key ``audio/<lesson>/<sha256[:16]>.mp3`` is the local storage's key too."""

    bucket: str | None = None
    prefix: str = "audio"
    region: str = "us-east-1"
    endpoint_url: str | None = None
    key_template: str = DEFAULT_KEY_TEMPLATE
    public_base_url: str | None = None
    public_read: bool = False
    presign_seconds: int | None = None
    addressing_style: str = "auto"
    request_checksum: str = "when_supported"
    response_checksum: str = "when_supported"
    timeout: float = 60.0
    # Credentials from the pipeline's environment (its secrets provider), so two pipelines in
    # one process can use two accounts; unset: boto3's own credential chain.
    access_key_id: str | None = None
    secret_access_key: Secret | None = None
    session_token: Secret | None = None
    profile: str | None = None


@dataclass(frozen=True)
class ConfigSettings:
    """Where presets, students and voices come from (see ``esl_build.config_provider``)."""

    provider: str = "file"
    dir_explicit: bool = False  # ESL_PIPELINE_CONFIG_DIR was set: it must exist
    endpoint: str | None = None
    token: Secret | None = None
    tenant: str | None = None
    presets_path: str = "presets.json"
    students_path: str = "students.json"
    voices_path: str = "voices.yml"


@dataclass(frozen=True)
class ManifestStoreSettings:
    """Which manifest store, and (for s3) where its keys live."""

    kind: str = "file"
    bucket: str | None = None
    dsn: Secret | None = None  # the postgres store's connection string
    prefix: str = ""
    root: Path | None = None  # manifest keys are relative to it (default: the project root)
    lease_ttl: float = 60.0
    lease_timeout: float = 600.0


@dataclass(frozen=True)
class ServiceSettings:
    """The HTTP worker's deployment settings (``esl-build serve``)."""

    token: Secret | None = None
    live: bool = False
    max_jobs: int = 2
    mode: str = "inline"


@dataclass(frozen=True)
class QueueSettings:
    """The job queue's settings (``esl_build.queue``, ``esl-build worker``).

    ``url`` is the Celery broker (a ``Secret``: a URL may hold a password); ``status_url``
    the Redis that keeps job status; ``root`` the lessons repository a worker builds."""

    url: Secret = field(default_factory=lambda: Secret(DEFAULT_QUEUE_URL))
    status_url: Secret | None = None
    name: str = "esl-build"
    transport_options: dict[str, object] = field(default_factory=dict)
    visibility_timeout: int = 3600
    max_attempts: int = 5
    backoff: float = 2.0
    backoff_max: float = 300.0
    root: Path | None = None


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
    max_characters: int | None = None
    run_id: str = field(default_factory=lambda: "r-" + uuid.uuid4().hex[:8])
    notion: NotionSettings = NotionSettings()
    elevenlabs: ElevenLabsSettings = ElevenLabsSettings()
    s3: S3Settings = S3Settings()
    manifests: ManifestStoreSettings = ManifestStoreSettings()
    config: ConfigSettings = ConfigSettings()
    event_log: Path | None = None
    service: ServiceSettings = ServiceSettings()
    queue: QueueSettings = QueueSettings()

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
            strict=_flag(get("ESL_BUILD_STRICT")),
            run_id=get("ESL_BUILD_RUN_ID") or "r-" + uuid.uuid4().hex[:8],
            notion=NotionSettings(token=secret("NOTION_TOKEN"), database_id=get("NOTION_DB_ID"),
                                  data_source_id=get("NOTION_DATA_SOURCE_ID"),
                                  database_name=get("NOTION_DB_NAME"),
                                  base_url=get("NOTION_BASE_URL"),
                                  students_id=get("STUDENTS_DB_ID"),
                                  rate=_number("NOTION_RATE_LIMIT", get, float, 0, default=3.0,
                                               above=True),
                                  backoff=_number("NOTION_RETRY_DELAY", get, float, 0,
                                                  default=0.5, above=True, unit="seconds"),
                                  on_conflict=_choose("NOTION_ON_CONFLICT", get, CONFLICT_MODES,
                                                      "stop"),
                                  timeout=_number("NOTION_TIMEOUT_SECONDS", get, float, 0.01,
                                                  3600, default=60.0, unit="seconds")),
            max_characters=_number("ESL_BUILD_MAX_CHARACTERS", get, int, 0, None),
            elevenlabs=_elevenlabs(get, secret("ELEVENLABS_API_KEY")),
            s3=S3Settings(bucket=get("S3_BUCKET"),
                          prefix=(get("S3_PREFIX") or "audio").strip("/"),
                          region=get("AWS_REGION") or "us-east-1",
                          endpoint_url=get("AWS_ENDPOINT_URL_S3"),
                          key_template=get("S3_KEY_TEMPLATE") or DEFAULT_KEY_TEMPLATE,
                          public_base_url=(get("S3_PUBLIC_BASE_URL") or "").rstrip("/") or None,
                          public_read=_flag(get("S3_PUBLIC_READ")),
                          presign_seconds=_number("S3_PRESIGN_SECONDS", get, int, 1, PRESIGN_MAX,
                                                  unit="seconds"),
                          addressing_style=_choose("S3_ADDRESSING_STYLE", get,
                                                   ADDRESSING_STYLES, "auto"),
                          request_checksum=_choose("AWS_REQUEST_CHECKSUM_CALCULATION", get,
                                                   CHECKSUM_MODES, "when_supported"),
                          response_checksum=_choose("AWS_RESPONSE_CHECKSUM_VALIDATION", get,
                                                    CHECKSUM_MODES, "when_supported"),
                          timeout=_number("S3_TIMEOUT_SECONDS", get, float, 0.01, 3600,
                                          default=60.0, unit="seconds"),
                          access_key_id=get("AWS_ACCESS_KEY_ID"),
                          secret_access_key=secret("AWS_SECRET_ACCESS_KEY"),
                          session_token=secret("AWS_SESSION_TOKEN"),
                          profile=get("AWS_PROFILE")),
            manifests=_manifest_store(root, get),
            config=_config_source(get, secret),
            event_log=(root / log).resolve() if (log := get("ESL_BUILD_EVENT_LOG")) else None,
            service=ServiceSettings(token=secret("ESL_BUILD_SERVICE_TOKEN"),
                                    live=_flag(get("ESL_BUILD_SERVICE_LIVE")),
                                    max_jobs=_number("ESL_BUILD_SERVICE_MAX_JOBS", get, int, 1, 64,
                                                     default=2),
                                    mode=_choose("ESL_BUILD_SERVICE_MODE", get, SERVICE_MODES,
                                                 "queue" if get("ESL_BUILD_QUEUE_URL")
                                                 else "inline")),
            queue=_queue(get, root),
        )
        return settings.with_(**flags) if flags else settings


def _elevenlabs(get: Callable[[str], str | None], key: Secret | None) -> ElevenLabsSettings:
    output_format = (get("ELEVENLABS_OUTPUT_FORMAT") or "pcm_24000").lower()
    codec, _, rate = output_format.partition("_")
    if codec != "pcm" or not rate.isdigit():
        raise ConfigInvalid(f"ELEVENLABS_OUTPUT_FORMAT={output_format!r}: esl-build assembles "
                            "PCM without ffmpeg, so ask for pcm_16000, pcm_22050, pcm_24000 "
                            "or pcm_44100 (the MP3 is encoded once, locally)")
    language = get("ELEVENLABS_LANGUAGE")
    if language is not None and not (len(language) == 2 and language.isalpha()):
        raise ConfigInvalid(f"ELEVENLABS_LANGUAGE={language!r} is not a two-letter ISO 639-1 "
                            "code such as en or de")
    return ElevenLabsSettings(
        api_key=key, base_url=get("ELEVENLABS_BASE_URL"),
        model=get("ELEVENLABS_MODEL_ID") or "eleven_multilingual_v2",
        mode=_choose("ELEVENLABS_TTS_MODE", get, TTS_MODES, "auto"),
        output_format=output_format, language=language.lower() if language else None,
        stability=_number("ELEVENLABS_STABILITY", get, float, 0, 1),
        seed=_number("ELEVENLABS_SEED", get, int, 0, 4_294_967_295),
        concurrency=_number("ELEVENLABS_CONCURRENCY", get, int, 1, 64, default=4),
        silence_tail=_number("ELEVENLABS_SILENCE_TAIL_SECONDS", get, float, 0, 10,
                             default=0.6, unit="seconds"),
        timeout=_number("ELEVENLABS_TIMEOUT_SECONDS", get, float, 0.01, 3600, default=120.0,
                        unit="seconds"))


@overload
def _number(name: str, get: Getter, kind: Callable[[str], T], low: float,
            high: float | None = None, *, default: T, above: bool = False,
            unit: str = "") -> T: ...


@overload
def _number(name: str, get: Getter, kind: Callable[[str], T], low: float,
            high: float | None = None, *, default: None = None, above: bool = False,
            unit: str = "") -> T | None: ...


def _number(name: str, get: Getter, kind: Callable[[str], T], low: float,
            high: float | None = None, *, default: T | None = None, above: bool = False,
            unit: str = "") -> T | None:
    """The variable as ``kind`` (int: whole numbers only) from ``low`` (excluded when
    ``above``) to ``high`` (None: no upper bound); ``default`` when unset. Anything else is a
    ``ConfigInvalid`` naming the variable, its value and the accepted range."""
    text = get(name)
    if text is None:
        return default
    try:
        value: T | None = kind(text)
    except ValueError:
        value = None
    if (value is None or not math.isfinite(value) or value < low or (above and value == low)
            or (high is not None and value > high)):
        noun = ("a whole number" if kind is int else "a number") + (f" of {unit}" if unit
                                                                    else "")
        least, most = _bound(low), _bound(high)
        if above:
            bounds = f"greater than {least}" + (f" and at most {most}" if most else "")
        else:
            bounds = f"from {least} to {most}" if most else f"of at least {least}"
        raise ConfigInvalid(f"{name}={text!r} must be {noun} {bounds}")
    return value


def _bound(number: float | None) -> str:
    """A bound as a message shows it: 4294967295, 0.01 (no exponent, no ".0")."""
    if number is None:
        return ""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def _choose(name: str, get: Getter, allowed: tuple[str, ...], default: str) -> str:
    value = (get(name) or default).lower()
    if value not in allowed:
        raise ConfigInvalid(f"{name}={value!r} is not one of: {', '.join(allowed)}")
    return value


def _flag(value: str | None) -> bool:
    return (value or "").lower() in {"1", "true", "yes"}


def _manifest_store(root: Path, get: Getter) -> ManifestStoreSettings:
    kind = _choose("ESL_PIPELINE_MANIFEST_STORE", get, MANIFEST_STORES, "file")
    bucket = get("ESL_PIPELINE_MANIFEST_BUCKET")
    dsn = get("ESL_PIPELINE_MANIFEST_DSN")
    if kind == "postgres" and not dsn:
        raise ConfigInvalid("ESL_PIPELINE_MANIFEST_STORE=postgres needs "
                            "ESL_PIPELINE_MANIFEST_DSN (e.g. postgresql://user@host:5432/db)")
    if kind == "s3" and not bucket:
        raise ConfigInvalid("ESL_PIPELINE_MANIFEST_STORE=s3 needs ESL_PIPELINE_MANIFEST_BUCKET "
                            "(the bucket that holds the manifests)")
    manifest_root = get("ESL_PIPELINE_MANIFEST_ROOT")
    return ManifestStoreSettings(
        kind=kind, bucket=bucket, dsn=Secret(dsn) if dsn else None,
        prefix=(get("ESL_PIPELINE_MANIFEST_PREFIX") or "").strip("/"),
        root=(root / manifest_root).resolve() if manifest_root else None,
        lease_ttl=_number("ESL_PIPELINE_LEASE_TTL", get, float, 0, default=60.0, above=True,
                          unit="seconds"),
        lease_timeout=_number("ESL_PIPELINE_LEASE_TIMEOUT", get, float, 0, default=600.0,
                              above=True, unit="seconds"))


def _config_source(get: Getter, secret: Callable[[str], Secret | None]) -> ConfigSettings:
    kind = (get("ESL_PIPELINE_CONFIG_PROVIDER") or "file").lower()
    kind = {"remote": "http", "local": "file", "filesystem": "file"}.get(kind, kind)
    if kind not in ("file", "http"):
        raise ConfigInvalid(f"ESL_PIPELINE_CONFIG_PROVIDER={kind!r} is not one of: file, http")
    endpoint = get("ESL_PIPELINE_CONFIG_ENDPOINT")
    if kind == "http" and not endpoint:
        raise ConfigInvalid("ESL_PIPELINE_CONFIG_PROVIDER=http needs "
                            "ESL_PIPELINE_CONFIG_ENDPOINT (the config service's base URL)")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigInvalid(f"ESL_PIPELINE_CONFIG_ENDPOINT={endpoint!r} must be an http(s) URL")
    return ConfigSettings(
        provider=kind, dir_explicit=get("ESL_PIPELINE_CONFIG_DIR") is not None,
        endpoint=endpoint, token=secret("ESL_PIPELINE_CONFIG_TOKEN"),
        tenant=get("ESL_PIPELINE_CONFIG_TENANT"),
        presets_path=get("ESL_PIPELINE_CONFIG_PRESETS_PATH") or "presets.json",
        students_path=get("ESL_PIPELINE_CONFIG_STUDENTS_PATH") or "students.json",
        voices_path=get("ESL_PIPELINE_CONFIG_VOICES_PATH") or "voices.yml")


def _queue(get: Callable[[str], str | None], root: Path) -> QueueSettings:
    url = get("ESL_BUILD_QUEUE_URL") or DEFAULT_QUEUE_URL
    status = get("ESL_BUILD_QUEUE_STATUS_URL") or (
        url if url.startswith(("redis://", "rediss://")) else None)
    options: dict[str, object] = {}
    if text := get("ESL_BUILD_QUEUE_TRANSPORT_OPTIONS"):
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise ConfigInvalid(f"ESL_BUILD_QUEUE_TRANSPORT_OPTIONS is not JSON: {error}"
                                ) from None
        if not isinstance(parsed, dict):
            raise ConfigInvalid("ESL_BUILD_QUEUE_TRANSPORT_OPTIONS must be a JSON object")
        options = parsed
    queue_root = get("ESL_BUILD_ROOT")
    return QueueSettings(
        url=Secret(url), status_url=Secret(status) if status else None,
        name=get("ESL_BUILD_QUEUE_NAME") or "esl-build", transport_options=options,
        visibility_timeout=int(_number("ESL_BUILD_QUEUE_VISIBILITY_TIMEOUT", get, float, 1,
                                       DAY, default=3600.0, unit="seconds")),
        max_attempts=_number("ESL_BUILD_QUEUE_MAX_ATTEMPTS", get, int, 1, 64, default=5),
        backoff=_number("ESL_BUILD_QUEUE_BACKOFF", get, float, 0, DAY, default=2.0,
                        unit="seconds"),
        backoff_max=_number("ESL_BUILD_QUEUE_BACKOFF_MAX", get, float, 0, DAY, default=300.0,
                            unit="seconds"),
        root=(root / queue_root).resolve() if queue_root else None)
