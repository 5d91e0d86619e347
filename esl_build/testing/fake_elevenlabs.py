"""A fake ElevenLabs API on 127.0.0.1, for esl-build's tests and for trying a setup offline.

It answers the calls esl-build makes, through the real ``elevenlabs`` SDK, over real HTTP::

    POST /v1/text-to-speech/{voice_id}[/stream]   one line  → audio in ``output_format``
    POST /v1/text-to-dialogue[/stream]            turns     → audio in ``output_format``
    GET  /v1/voices, /v2/voices                   the fake's voice catalog
    GET  /v1/models                               models with their per-request limits
    GET  /v1/user/subscription                    characters used and the plan's limit

It is as strict as the service where it matters to us: the ``xi-api-key`` header must be the
fake's key (401 otherwise), voices must exist, text must be non-empty and under the model's
per-request limit, a dialogue takes at most 10 distinct voices, and more requests in flight
than ``max_concurrency`` get ``429 too_many_concurrent_requests``. Errors carry ElevenLabs'
body shape ``{"detail": {"status": ..., "message": ...}}``.

Audio is real and deterministic: a quiet tone per turn, 50 ms per character (the field
``seconds_per_character``), in the requested
format (``pcm_<rate>`` raw s16le, ``wav_<rate>``, or ``mp3_<rate>_<kbps>`` via lameenc).

What it received is counted: ``characters_billed`` (what a successful request costs, as
ElevenLabs bills it: the characters of ``text`` / of every turn), ``requests`` (every
synthesis request body, answered or not, with its arrival time ``at``, and every subscription
look-up, in order), ``billed`` (text → times billed) and ``billed_at`` (when each request was
billed; both times ``time.monotonic()``). Faults are injectable: ``fail_next(status, code, times)``,
``latency`` (seconds per request) and ``hold()`` (requests block until ``release()``, for
killing a build mid-flight).

    with FakeElevenLabs() as fake:
        env = fake.env  # ELEVENLABS_API_KEY (a sentinel) and ELEVENLABS_BASE_URL
"""

from __future__ import annotations

import io
import json
import math
import socket
import sys
import threading
import time
import uuid
import wave
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from esl_build.testing.loopback import LoopbackHandler, LoopbackServer

SENTINEL_KEY = "sk-fake-elevenlabs-0123456789abcdef"
SECONDS_PER_CHARACTER = 0.05

MODELS: dict[str, dict[str, Any]] = {  # model id → what GET /v1/models says about it
    "eleven_multilingual_v2": {"max_characters_request_subscribed_user": 10_000,
                               "can_do_text_to_speech": True, "dialogue": False},
    "eleven_v3": {"max_characters_request_subscribed_user": 3_000,
                  "can_do_text_to_speech": True, "dialogue": True},
    "eleven_flash_v2_5": {"max_characters_request_subscribed_user": 40_000,
                          "can_do_text_to_speech": True, "dialogue": False},
    "eleven_turbo_v2_5": {"max_characters_request_subscribed_user": 40_000,
                          "can_do_text_to_speech": True, "dialogue": False},
}


def _voice(voice_id: str, name: str, gender: str, age: str, accent: str, descriptive: str,
           use_case: str) -> dict[str, Any]:
    return {"voice_id": voice_id, "name": name, "category": "premade",
            "labels": {"gender": gender, "age": age, "accent": accent, "language": "en",
                       "descriptive": descriptive, "use_case": use_case},
            "preview_url": f"https://example.invalid/previews/{voice_id}.mp3"}


VOICES: tuple[dict[str, Any], ...] = (  # invented voices, shaped like ElevenLabs' premade ones
    _voice("fake-voice-nora-0001", "Nora", "female", "middle_aged", "british", "calm",
           "narrative_story"),
    _voice("fake-voice-owen-0002", "Owen", "male", "young", "american", "casual",
           "conversational"),
    _voice("fake-voice-ruth-0003", "Ruth", "female", "young", "american", "cheerful",
           "conversational"),
    _voice("fake-voice-hugh-0004", "Hugh", "male", "middle_aged", "british", "professional",
           "narration"),
    _voice("fake-voice-lena-0005", "Lena", "female", "young", "british", "friendly",
           "social_media"),
    _voice("fake-voice-marc-0006", "Marc", "male", "old", "american", "deep", "news"),
    _voice("fake-voice-sage-0007", "Sage", "neutral", "young", "american", "thoughtful",
           "conversational"),
    _voice("fake-voice-iris-0008", "Iris", "female", "old", "australian", "warm",
           "narration"),
)


@dataclass
class _Fault:
    status: int
    code: str
    times: int
    retry_after: float | None = None


@dataclass
class FakeElevenLabs(LoopbackServer):
    """The fake server. Start it with ``start()`` or as a context manager."""

    api_key: str = SENTINEL_KEY
    max_concurrency: int = 5
    latency: float = 0.0
    character_limit: int = 1_000_000
    seconds_per_character: float = SECONDS_PER_CHARACTER  # length of the audio answered
    voices: tuple[dict[str, Any], ...] = VOICES
    characters_billed: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    billed: Counter[str] = field(default_factory=Counter)
    billed_at: list[float] = field(default_factory=list)  # time.monotonic() of each billing
    peak_concurrency: int = 0
    _faults: list[_Fault] = field(default_factory=list)
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._open.set()

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> FakeElevenLabs:
        """Listen on a free port of 127.0.0.1 (in a daemon thread)."""
        fake = self

        class Handler(_Handler):
            server_fake = fake

        return self._listen(Handler)

    def stop(self) -> None:
        self.release()
        super().stop()

    @property
    def env(self) -> dict[str, str]:
        """The environment that points esl-build at this fake."""
        return {"ELEVENLABS_API_KEY": self.api_key, "ELEVENLABS_BASE_URL": self.url}

    # -- what tests inject ------------------------------------------------------------------
    def fail_next(self, status: int, code: str, times: int = 1,
                  retry_after: float | None = None) -> None:
        """Answer the next ``times`` synthesis requests with ``status`` and ``detail.status``
        ``code`` (e.g. 429 "too_many_concurrent_requests", 429 "system_busy", 503
        "service_unavailable", 400 "invalid_text"). Nothing is billed for them."""
        with self._lock:
            self._faults.append(_Fault(status, code, times, retry_after))

    def hold(self) -> None:
        """Make synthesis requests wait (unbilled) until ``release()``."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def reset_counters(self) -> None:
        with self._lock:
            self.characters_billed = 0
            self.requests.clear()
            self.billed.clear()
            self.billed_at.clear()
            self.peak_concurrency = 0

    @property
    def in_flight(self) -> int:
        """Requests being answered now (past the ``hold()`` gate, not yet answered)."""
        with self._lock:
            return self._in_flight

    @property
    def synthesis_requests(self) -> list[dict[str, Any]]:
        """The bodies of every text-to-speech and text-to-dialogue request received."""
        with self._lock:
            return [r for r in self.requests if r["kind"] in ("tts", "dialogue")]

    # -- the handler's side -----------------------------------------------------------------
    def _take_fault(self) -> _Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self._faults.pop(0)
            return fault

    def _enter(self) -> bool:
        with self._lock:
            if self._in_flight >= self.max_concurrency:
                return False
            self._in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self._in_flight)
            return True

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _bill(self, texts: list[str]) -> int:
        cost = sum(len(text) for text in texts)
        with self._lock:
            self.characters_billed += cost
            self.billed_at.append(time.monotonic())
            for text in texts:
                self.billed[text] += 1
        return cost

    def _voice_ids(self) -> set[str]:
        return {voice["voice_id"] for voice in self.voices}


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class _Handler(LoopbackHandler):
    server_fake: FakeElevenLabs
    # -- routing ----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        fake = self.server_fake
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = None
        path = parts.path.rstrip("/")
        try:
            if self.headers.get("xi-api-key") != fake.api_key:
                raise _ApiError(401, "invalid_api_key", "Invalid API key")
            if body is None or not isinstance(body, dict):
                raise _ApiError(400, "invalid_json", "The request body is not a JSON object")
            if method == "GET" and path in ("/v1/voices", "/v2/voices"):
                self._json(200, {"voices": list(fake.voices), "has_more": False,
                                 "total_count": len(fake.voices), "next_page_token": None})
            elif method == "GET" and path == "/v1/models":
                self._json(200, [{"model_id": model, "name": model,
                                  "can_do_text_to_speech": info["can_do_text_to_speech"],
                                  "max_characters_request_subscribed_user":
                                      info["max_characters_request_subscribed_user"],
                                  "max_characters_request_free_user": 2_500}
                                 for model, info in MODELS.items()])
            elif method == "GET" and path == "/v1/user/subscription":
                with fake._lock:
                    fake.requests.append({"kind": "subscription", "query": query, "body": {}})
                self._json(200, _subscription(fake))
            elif method == "POST" and path.startswith("/v1/text-to-speech/"):
                voice_id = path.split("/")[3]
                self._synthesize("tts", query, body, [(voice_id, body.get("text"))],
                                 body.get("model_id") or "eleven_multilingual_v2")
            elif method == "POST" and path in ("/v1/text-to-dialogue",
                                               "/v1/text-to-dialogue/stream"):
                inputs = body.get("inputs")
                if not isinstance(inputs, list) or not inputs:
                    raise _ApiError(422, "invalid_inputs", "inputs must be a non-empty list")
                turns = [(item.get("voice_id"), item.get("text")) for item in inputs
                         if isinstance(item, dict)]
                self._synthesize("dialogue", query, body, turns,
                                 body.get("model_id") or "eleven_v3")
            else:
                raise _ApiError(404, "not_found", f"{method} {path} is not part of the fake")
        except _ApiError as error:
            self._json(error.status, {"detail": {"status": error.code,
                                                 "message": error.message}}, error.headers)

    # -- synthesis --------------------------------------------------------------------------
    def _synthesize(self, kind: str, query: dict[str, str], body: dict[str, Any],
                    turns: list[tuple[Any, Any]], model: str) -> None:
        fake = self.server_fake
        with fake._lock:
            fake.requests.append({"kind": kind, "query": query, "body": body,
                                  "at": time.monotonic()})
        fake._open.wait()
        if self._client_gone():  # e.g. the build was killed while its request was held
            self.close_connection = True
            return
        fault = fake._take_fault()
        if fault is not None:
            headers = {"retry-after": str(fault.retry_after)} if fault.retry_after else {}
            raise _ApiError(fault.status, fault.code, f"injected {fault.code}", headers)
        if not fake._enter():
            raise _ApiError(429, "too_many_concurrent_requests",
                            f"Too many concurrent requests: your plan allows "
                            f"{fake.max_concurrency}", {"retry-after": "0.05"})
        try:
            texts = self._check(kind, turns, model)
            audio = _audio(turns, query.get("output_format") or "mp3_44100_128",
                           fake.seconds_per_character)
            if fake.latency:
                time.sleep(fake.latency)
            cost = fake._bill(texts)
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(len(audio)))
            self.send_header("request-id", uuid.uuid4().hex)
            self.send_header("character-cost", str(cost))
            self.send_header("maximum-concurrent-requests", str(fake.max_concurrency))
            self.end_headers()
            self.wfile.write(audio)
        finally:
            fake._leave()

    def _client_gone(self) -> bool:
        try:
            self.connection.setblocking(False)
            return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self.connection.setblocking(True)

    def _check(self, kind: str, turns: list[tuple[Any, Any]], model: str) -> list[str]:
        fake = self.server_fake
        if model not in MODELS:
            raise _ApiError(400, "model_not_found", f"A model with model ID {model} "
                            "does not exist")
        if kind == "dialogue" and not MODELS[model]["dialogue"]:
            raise _ApiError(400, "unsupported_model", f"Model {model} does not support "
                            "text to dialogue; use eleven_v3")
        known = fake._voice_ids()
        texts = []
        for voice_id, text in turns:
            if not isinstance(text, str) or not text.strip():
                raise _ApiError(422, "invalid_text", "text must be a non-empty string")
            if voice_id not in known:
                raise _ApiError(400, "voice_not_found",
                                f"A voice with the voice_id {voice_id} was not found.")
            texts.append(text)
        if len({voice_id for voice_id, _ in turns}) > 10:
            raise _ApiError(400, "too_many_voices", "A dialogue may use at most 10 voices")
        limit = MODELS[model]["max_characters_request_subscribed_user"]
        if sum(len(text) for text in texts) > limit:
            raise _ApiError(400, "text_too_long", f"Text is too long: {model} accepts at "
                            f"most {limit} characters per request")
        if fake.characters_billed + sum(map(len, texts)) > fake.character_limit:
            raise _ApiError(401, "quota_exceeded", "This request exceeds your quota")
        return texts

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _subscription(fake: FakeElevenLabs) -> dict[str, Any]:
    return {"tier": "creator", "character_count": fake.characters_billed,
            "character_limit": fake.character_limit, "can_extend_character_limit": False,
            "allowed_to_extend_character_limit": False, "max_credit_limit_extension": 0,
            "voice_slots_used": 0, "professional_voice_slots_used": 0,
            "professional_voice_slots_used_in_workspace": 0, "voice_limit": 30,
            "voice_add_edit_counter": 0, "professional_voice_limit": 1,
            "can_extend_voice_limit": False, "can_use_instant_voice_cloning": True,
            "can_use_professional_voice_cloning": True, "status": "active",
            "current_overage": {"amount": "0", "currency": "usd"},
            "next_character_count_reset_unix": 0}


def _audio(turns: list[tuple[Any, Any]], output_format: str, per_character: float) -> bytes:
    """Deterministic audio for the turns: a tone per turn (pitch from the voice id)."""
    codec, _, rest = output_format.partition("_")
    rate_text, _, kbps = rest.partition("_")
    try:
        rate = int(rate_text)
    except ValueError:
        raise _ApiError(422, "invalid_output_format",
                        f"output_format {output_format!r} is not supported") from None
    samples = b"".join(_tone(str(voice), str(text), rate, per_character)
                       for voice, text in turns)
    if codec == "pcm":
        return samples
    if codec == "wav":
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(samples)
        return buffer.getvalue()
    if codec == "mp3":
        import lameenc

        encoder = lameenc.Encoder()
        encoder.set_in_sample_rate(rate)
        encoder.set_channels(1)
        encoder.set_bit_rate(int(kbps or 64))
        return bytes(encoder.encode(samples) + encoder.flush())
    raise _ApiError(422, "invalid_output_format",
                    f"output_format {output_format!r} is not supported by the fake")


def _tone(voice: str, text: str, rate: int, per_character: float) -> bytes:
    """``len(text) * per_character`` seconds of a quiet tone whose pitch depends on the
    voice (s16le mono), built from one repeated cycle so long answers stay cheap."""
    count = round(len(text) * per_character * rate)
    period = max(2, rate // (110 + sum(voice.encode()) % 200))
    cycle = array("h", (int(3000 * math.sin(2 * math.pi * i / period)) for i in range(period)))
    samples = (cycle * (count // period + 1))[:count]
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()
