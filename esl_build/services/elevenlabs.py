"""The ElevenLabs voice, through the ``elevenlabs`` SDK (2.78). Imported only when selected.

Modes (``ELEVENLABS_TTS_MODE``): ``monologue`` sends one Text-to-Speech request per line
(``ELEVENLABS_MODEL_ID``, default ``eleven_multilingual_v2``), with the neighbouring lines as
``previous_text``/``next_text`` where the model takes them; ``dialogue`` sends Text-to-Dialogue
requests (``eleven_v3``), each a chunk of consecutive turns; ``auto`` (the default) uses
dialogue for a study text with two or more speakers.

Chunks are cut where the content says so: after a turn whose text hashes to an *anchor*
(about one turn in ``ANCHOR_EVERY``), or earlier when the next turn would take the chunk past
``DIALOGUE_CHUNK_CHARACTERS`` or 10 voices. Editing one turn therefore changes its own chunk
(and, if it becomes or stops being an anchor, merges or splits it with the next); every other
chunk keeps its boundaries, its cache key and its paid-for audio.

The SDK (and httpx) are imported on the first request, so planning, dry runs and no-op
builds with this voice load neither.

Audio is requested as PCM (``ELEVENLABS_OUTPUT_FORMAT``, default ``pcm_24000``): no decoder is
needed and the MP3 is encoded once per lesson.

Throughput and faults. Requests in flight are limited per API key across every thread of the
process (``ELEVENLABS_CONCURRENCY``, default 4) by a ``ConcurrencyLimiter`` kept in
``_LIMITERS``, the one piece of process-wide mutable state in esl-build: lessons built by
``doit -n 4 -P thread`` share one budget, as the account does. A 429
``too_many_concurrent_requests`` lowers the limit (it climbs back after successes) and the
request waits its turn; ``system_busy``, 5xx and timeouts back off exponentially (honouring
``Retry-After``) for up to ``ATTEMPTS`` tries; any other 4xx fails at once with ElevenLabs'
message. The SDK's streaming calls never retry by themselves, so there is one retry loop.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from esl_build.config import Config
from esl_build.errors import ConfigInvalid, VoiceError
from esl_build.fingerprint import fingerprint
from esl_build.lesson.model import Lesson
from esl_build.services.protocols import Pcm, SpeechRequest, Turn, speech_key
from esl_build.settings import ElevenLabsSettings
from esl_build.voices.casting import VoiceChoice, cast, speakers_of
from esl_build.voices.catalog import (
    Catalog,
    VoiceMap,
    catalog_bytes,
    load_catalog,
    student_voices,
    voice_map,
)

if TYPE_CHECKING:
    from elevenlabs.base_client import BaseElevenLabs
    from elevenlabs.core.api_error import ApiError
    from elevenlabs.core.request_options import RequestOptions

T = TypeVar("T")

DIALOGUE_MODEL = "eleven_v3"
# Characters per request by model (GET /v1/models, max_characters_request_subscribed_user).
MODEL_LIMITS = {"eleven_v3": 3_000, "eleven_multilingual_v2": 10_000,
                "eleven_flash_v2_5": 40_000, "eleven_turbo_v2_5": 40_000,
                "eleven_flash_v2": 30_000, "eleven_turbo_v2": 30_000}
UNKNOWN_MODEL_LIMIT = 3_000
NO_CONTEXT_MODELS = frozenset({"eleven_v3"})  # previous_text/next_text not taken
# The SDK documents 2,000 characters per dialogue request as the reliable size.
DIALOGUE_CHUNK_CHARACTERS = 2_000
DIALOGUE_VOICES = 10
ANCHOR_EVERY = 6
ATTEMPTS = 5          # tries for system_busy, 5xx and timeouts
THROTTLED_TRIES = 60  # tries for too_many_concurrent_requests (each one waits its turn)
BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
# The SDK reads audio in 1 KB pieces by default: a minute of PCM is then 2,800 trips
# through Python per request.
STREAM: RequestOptions = {"chunk_size": 1 << 16}


class ConcurrencyLimiter:
    """Requests in flight for one API key in this process, adapting to the account's limit.

    ``slot()`` waits while ``limit`` requests are in flight. ``throttled()`` (after a 429
    ``too_many_concurrent_requests``) lowers the limit to one less than was in flight;
    ``succeeded()`` raises it by one after ``2 × limit`` successes, up to ``ceiling``."""

    def __init__(self, ceiling: int):
        self.ceiling = self.limit = max(1, ceiling)
        self.active = 0
        self.peak = 0
        self._successes = 0
        self._changed = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._changed:
            while self.active >= self.limit:
                self._changed.wait()
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield
        finally:
            with self._changed:
                self.active -= 1
                self._changed.notify_all()

    def throttled(self) -> None:
        with self._changed:
            self.limit = max(1, min(self.limit, self.active - 1))
            self._successes = 0

    def succeeded(self) -> None:
        with self._changed:
            self._successes += 1
            if self.limit < self.ceiling and self._successes >= 2 * self.limit:
                self.limit += 1
                self._successes = 0
                self._changed.notify_all()


_LIMITERS: dict[str, ConcurrencyLimiter] = {}  # per API key (hashed) and base URL
_LIMITERS_LOCK = threading.Lock()


def limiter_for(api_key: str, base_url: str | None, ceiling: int) -> ConcurrencyLimiter:
    """The process's limiter for this key and endpoint (created with ``ceiling`` once)."""
    name = hashlib.sha256(f"{base_url}\0{api_key}".encode()).hexdigest()
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault(name, ConcurrencyLimiter(ceiling))


class ElevenLabsVoice:
    """The ``Voice`` protocol over ElevenLabs (see the module docstring).

    ``client`` is an ``elevenlabs.ElevenLabs``; by default one is made from ``settings`` on
    first use, so planning (dry runs, ``esl-build plan``) never opens a connection."""

    name = "elevenlabs"
    remote = True

    def __init__(self, settings: ElevenLabsSettings, config: Config, config_dir: Path,
                 root: Path, client: BaseElevenLabs | None = None):
        if settings.api_key is None:
            raise ConfigInvalid("the elevenlabs voice needs ELEVENLABS_API_KEY; unset "
                                "ESL_BUILD_VOICE (or set it to espeak) to build offline")
        self._settings = settings
        self._config = config
        self._config_dir, self._root = config_dir, root
        self._client = client
        self._client_lock = threading.Lock()
        self._random = random.Random()
        self.max_concurrency = settings.concurrency
        self.rate = int(settings.output_format.partition("_")[2])
        self.limiter = limiter_for(settings.api_key.reveal(), settings.base_url,
                                   settings.concurrency)
        self.settings: dict[str, Any] = {  # what shapes the audio (no key, no concurrency)
            "mode": settings.mode, "model": settings.model, "dialogueModel": DIALOGUE_MODEL,
            "format": settings.output_format, "language": settings.language,
            "stability": settings.stability, "seed": settings.seed}

    # -- casting ------------------------------------------------------------------------------
    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog(self._config_dir, self._root)

    @cached_property
    def voice_map(self) -> VoiceMap:
        return voice_map(self._config.voices, self._config_dir, self._root)

    def _student(self, student: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
        profile = (self._config.students.get(student.strip().lower())
                   or self._config.students.get("default"))
        where = self._config_dir.relative_to(self._root).as_posix() + "/students" \
            if self._config_dir.is_relative_to(self._root) else str(self._config_dir)
        return profile, student_voices(profile or {}, f"{where} ({student or 'default'})")

    def casting_digest(self, student: str) -> str:
        profile, voices = self._student(student)
        return fingerprint({"map": [dict(self.voice_map.speakers), self.voice_map.default,
                                    self.voice_map.auto],
                            "student": [voices, (profile or {}).get("accentPreference")],
                            "catalog": self.catalog.digest})

    def cast(self, lesson: Lesson, recorded: Mapping[str, Any] | None = None
             ) -> dict[str, VoiceChoice]:
        profile, voices = self._student(lesson.frontmatter.student)
        return cast(lesson, voice_map=self.voice_map, student=profile, student_voices=voices,
                    catalog=self.catalog, recorded=recorded)

    # -- requests -----------------------------------------------------------------------------
    def mode_for(self, lesson: Lesson) -> str:
        """``monologue`` or ``dialogue`` for this lesson (``auto`` follows its study text)."""
        if self._settings.mode != "auto":
            return self._settings.mode
        return "dialogue" if lesson.study_text and lesson.study_text.kind == "dialogue" \
            else "monologue"

    def requests(self, lesson: Lesson, voices: Mapping[str, str]) -> list[SpeechRequest]:
        study = lesson.study_text
        missing = [s for s in speakers_of(lesson) if s not in voices]
        if missing:
            raise VoiceError(f"{lesson.path}: no voice for {', '.join(map(repr, missing))}")
        turns = [Turn(voices[s.speaker or ""], s.text, s.line)
                 for s in (study.segments if study else ()) if s.text.strip()]
        mode = self.mode_for(lesson)
        model = DIALOGUE_MODEL if mode == "dialogue" else self._settings.model
        limit = MODEL_LIMITS.get(model, UNKNOWN_MODEL_LIMIT)
        for turn in turns:
            if len(turn.text) > limit:
                raise VoiceError(f"{lesson.path}:{turn.line}: this line has {len(turn.text)} "
                                 f"characters; {model} takes at most {limit} per request: "
                                 "split it into shorter lines")
        if mode == "dialogue":
            return [SpeechRequest(chunk, "dialogue") for chunk in
                    chunk_turns(turns, min(limit, DIALOGUE_CHUNK_CHARACTERS))]
        context = model not in NO_CONTEXT_MODELS
        return [SpeechRequest((turn,), "monologue",
                              turns[i - 1].text if context and i else None,
                              turns[i + 1].text if context and i + 1 < len(turns) else None)
                for i, turn in enumerate(turns)]

    def request_key(self, request: SpeechRequest) -> str:
        return speech_key(self._shaping(request.mode), request)

    def _shaping(self, mode: str) -> dict[str, Any]:
        s = self._settings
        return {"backend": self.name, "format": s.output_format, "language": s.language,
                "model": DIALOGUE_MODEL if mode == "dialogue" else s.model,
                "stability": s.stability, "seed": s.seed}

    # -- the API ------------------------------------------------------------------------------
    @property
    def client(self) -> BaseElevenLabs:
        """The SDK's generated client: every endpoint we call, without the extras the
        ``elevenlabs.client.ElevenLabs`` subclass adds (realtime websockets, flows, music),
        whose import would double the time to the first request."""
        with self._client_lock:
            if self._client is None:
                import httpx
                from elevenlabs.base_client import BaseElevenLabs

                key = self._settings.api_key
                assert key is not None  # checked in __init__
                self._client = BaseElevenLabs(
                    api_key=key.reveal(), base_url=self._settings.base_url,
                    timeout=self._settings.timeout,
                    httpx_client=httpx.Client(timeout=self._settings.timeout))
            return self._client

    def synthesize(self, request: SpeechRequest) -> Pcm:
        from elevenlabs import DialogueInput, VoiceSettings
        from elevenlabs.types import ToDialogueSettingsResponseModel

        s = self._settings
        if request.mode == "dialogue":
            def call() -> bytes:
                with self.client.text_to_dialogue.with_raw_response.convert(
                        inputs=[DialogueInput(text=t.text, voice_id=t.voice_id)
                                for t in request.turns],
                        model_id=DIALOGUE_MODEL, output_format=s.output_format,
                        language_code=s.language,
                        settings=(ToDialogueSettingsResponseModel(stability=s.stability)
                                  if s.stability is not None else None),
                        seed=s.seed, request_options=STREAM) as response:
                    return b"".join(response.data)
        else:
            [turn] = request.turns

            def call() -> bytes:
                with self.client.text_to_speech.with_raw_response.convert(
                        turn.voice_id, text=turn.text, model_id=s.model,
                        output_format=s.output_format,
                        language_code=s.language,
                        voice_settings=(VoiceSettings(stability=s.stability)
                                        if s.stability is not None else None),
                        seed=s.seed, previous_text=request.previous_text,
                        next_text=request.next_text, request_options=STREAM) as response:
                    return b"".join(response.data)
        data = self._retrying(call)
        return Pcm(data[: len(data) - len(data) % 2], self.rate)

    def check_budget(self, characters: int) -> None:
        """Refuse when the subscription has fewer characters left than ``characters``."""
        if characters <= 0:
            return
        try:
            subscription = self._retrying(lambda: self.client.user.subscription.get())
        except VoiceError as error:
            if "missing_permissions" in str(error):  # a key restricted to text to speech
                return
            raise
        left = subscription.character_limit - subscription.character_count
        if characters > left:
            raise VoiceError(f"this build would bill {characters} characters but the "
                             f"ElevenLabs subscription has {left} left "
                             f"({subscription.character_count} of "
                             f"{subscription.character_limit} used); nothing was sent")

    def list_voices(self) -> list[dict[str, Any]]:
        """Every voice of the account (``GET /v1/voices``) as plain dicts."""
        response = self._retrying(lambda: self.client.voices.get_all())
        return [{"voice_id": v.voice_id, "name": v.name, "category": v.category,
                 "labels": dict(v.labels or {}), "preview_url": v.preview_url}
                for v in response.voices]

    def sync_catalog(self) -> tuple[Path, int, bool]:
        """Rewrite ``configs/elevenlabs.voices.json`` from the account's voices.

        Returns (path, number of voices, whether the file changed)."""
        from esl_build.files import atomic_write
        from esl_build.voices.catalog import CATALOG_FILE

        voices = self.list_voices()
        data = catalog_bytes(voices)
        path = self._config_dir / CATALOG_FILE
        changed = not path.is_file() or path.read_bytes() != data
        if changed:
            atomic_write(path, data)
        return path, len(voices), changed

    def _retrying(self, call: Callable[[], T]) -> T:
        """``call()`` under the limiter, retried as the module docstring says."""
        import httpx
        from elevenlabs.core.api_error import ApiError

        attempts = throttles = 0
        while True:
            with self.limiter.slot():
                try:
                    result = call()
                except ApiError as exc:
                    failure = _Failure.of_api(exc)
                except httpx.TimeoutException:
                    failure = _Failure("retry", "timeout", f"no answer within "
                                       f"{self._settings.timeout:g} s", None, None, None)
                except httpx.TransportError as exc:
                    failure = _Failure("retry", "connection", f"cannot reach ElevenLabs at "
                                       f"{self._settings.base_url or 'api.elevenlabs.io'}: "
                                       f"{type(exc).__name__}", None, None, None)
                else:
                    self.limiter.succeeded()
                    return result
                if failure.kind == "throttled":
                    self.limiter.throttled()
            if failure.kind == "throttled" and throttles < THROTTLED_TRIES:
                throttles += 1
                delay = failure.retry_after or 0.05 + 0.15 * self._random.random()
            elif failure.kind == "retry" and attempts + 1 < ATTEMPTS:
                attempts += 1
                delay = failure.retry_after or min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS
                                                   * 2 ** (attempts - 1))
                delay *= 0.5 + 0.5 * self._random.random()
            else:
                raise failure.error(attempts + throttles + 1)
            time.sleep(delay)


class _Failure:
    """What one failed call means for the next (kind: throttled, retry or fatal)."""

    def __init__(self, kind: str, code: str, message: str, status: int | None,
                 retry_after: float | None, request_id: str | None):
        self.kind, self.code, self.message = kind, code, message
        self.status, self.retry_after, self.request_id = status, retry_after, request_id

    @classmethod
    def of_api(cls, exc: ApiError) -> _Failure:
        status = exc.status_code or 0
        body: Any = exc.body
        detail = body.get("detail", body) if isinstance(body, dict) else body
        if isinstance(detail, dict):
            code = str(detail.get("status") or detail.get("code") or "")
            message = str(detail.get("message") or detail)
        elif isinstance(detail, list):  # a 422 validation error: [{"loc", "msg"}, ...]
            code, message = "validation_error", "; ".join(
                str(item.get("msg", item)) if isinstance(item, dict) else str(item)
                for item in detail)
        else:
            code, message = "", str(detail or f"HTTP {status}")
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        try:
            retry_after: float | None = float(headers.get("retry-after", ""))
        except ValueError:
            retry_after = None
        if status == 429 and code == "too_many_concurrent_requests":
            kind = "throttled"
        elif status == 429 or status >= 500 or status in (408, 409):
            kind = "retry"
        else:
            kind = "fatal"
        return cls(kind, code, message, status, retry_after, headers.get("request-id"))

    def error(self, tries: int) -> VoiceError:
        status = f"HTTP {self.status} " if self.status else ""
        code = f"{status}{self.code}".strip()
        after = f" after {tries} tries" if tries > 1 else ""
        return VoiceError(f"ElevenLabs: {self.message} ({code}){after}",
                          retryable=self.kind != "fatal", request_id=self.request_id)


def chunk_turns(turns: list[Turn], max_characters: int) -> list[tuple[Turn, ...]]:
    """Consecutive turns in chunks of at most ``max_characters`` and ``DIALOGUE_VOICES``
    voices, cut after anchor turns (see the module docstring): a local edit moves no other
    chunk's boundaries."""
    chunks: list[tuple[Turn, ...]] = []
    current: list[Turn] = []
    for turn in turns:
        voices = {t.voice_id for t in current} | {turn.voice_id}
        if current and (sum(len(t.text) for t in current) + len(turn.text) > max_characters
                        or len(voices) > DIALOGUE_VOICES):
            chunks.append(tuple(current))
            current = []
        current.append(turn)
        if _anchor(turn.text):
            chunks.append(tuple(current))
            current = []
    if current:
        chunks.append(tuple(current))
    return chunks


def _anchor(text: str) -> bool:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % ANCHOR_EVERY == 0
