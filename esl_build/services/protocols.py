"""The three services a build talks to, each behind a small protocol.

Implementations take their clients through the constructor (no module-level clients), so a
test passes a fake, a local backend or the real SDK. Every implementation has:

``name``     the backend name recorded in manifests and fingerprints ("html", "notion", ...).
``remote``   True when calls leave the machine or cost money.
``settings`` the settings that shape its output (part of the stage fingerprint, no secrets).
``durable(outputs)``  a *cheap, local* check that a recorded output still exists (no network:
             a remote backend trusts its record and returns True).
``watched(outputs)``  the local files ``durable`` looks at (none for a remote backend), so a
             lesson verified up to date can be trusted until one of them changes.

Outputs are plain JSON-able dicts: they go into the manifest as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from esl_build.fingerprint import fingerprint
from esl_build.lesson.model import Lesson

if TYPE_CHECKING:
    from esl_build.voices.casting import VoiceChoice


@dataclass(frozen=True, slots=True)
class Pcm:
    """Mono signed 16-bit little-endian audio."""

    samples: bytes
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / 2 / self.rate


@dataclass(frozen=True, slots=True)
class PageSpec:
    """What a publisher needs to render one lesson's page (pure data, built by the plan)."""

    lesson: Lesson
    preset_name: str | None = None
    preset: dict[str, Any] = field(default_factory=dict)  # {"h2": colour, "h3": ..., ...}


class Publisher(Protocol):
    """Turns a lesson into one page and links audio into it. HtmlPublisher, NotionPublisher."""

    name: str
    remote: bool
    settings: dict[str, Any]

    def settings_for(self, student: str) -> dict[str, Any]:
        """The settings that shape the pages of ``student``'s lessons (the import stage's
        fingerprint): ``settings`` and, for Notion, the student's target."""
        ...

    def publish(self, spec: PageSpec, known: dict[str, Any] | None, *,
                record: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Create the page, or update the one in ``known`` (the last import outputs) in place.

        ``record``, when given, is called with outputs so far as soon as the page exists
        (and with what it holds when a later request fails), so they are kept in the
        manifest even if the stage fails. Returns outputs with at least ``pageId`` and
        ``url``."""
        ...

    def link_audio(self, page: dict[str, Any], audio_url: str, known: dict[str, Any] | None,
                   *, local_file: Callable[[], Path] | None = None) -> dict[str, Any]:
        """Put (or replace) our audio player on the page. Returns outputs with ``blockId``.

        ``local_file()`` gives the lesson's MP3 on disk (fetching it back from storage if
        need be), for a publisher that serves the audio itself: the html publisher copies
        audio without an http(s) URL into its site. Others never call it."""
        ...

    def durable(self, outputs: dict[str, Any]) -> bool: ...

    def watched(self, outputs: dict[str, Any]) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class Turn:
    """One spoken line: who says it and what. ``line`` (the source line) is for messages."""

    voice_id: str
    text: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """What one request to a voice says: one line (monologue) or a chunk of turns (dialogue).

    ``previous_text``/``next_text`` are the neighbouring lines, sent for continuity where the
    model supports it. They are deliberately *not* part of the cache key: a line's audio stays
    valid when a neighbour is edited, so an edit bills that line only (docs/elevenlabs.md)."""

    turns: tuple[Turn, ...]
    mode: str = "monologue"
    previous_text: str | None = field(default=None, compare=False)
    next_text: str | None = field(default=None, compare=False)

    @property
    def characters(self) -> int:
        """What the request bills: the characters of its text (context is free)."""
        return sum(len(turn.text) for turn in self.turns)


def speech_key(shaping: Mapping[str, Any], request: SpeechRequest) -> str:
    """The content address of a request's audio: sha256 (hex) of everything that shapes it,
    ``shaping`` being the voice's settings for the request's mode (backend, model, format,
    voice settings, seed)."""
    return fingerprint({"shaping": dict(shaping), "mode": request.mode,
                        "turns": [[t.voice_id, t.text] for t in request.turns]})[7:]


class Voice(Protocol):
    """Speaks requests with named voices. EspeakVoice, ElevenLabsVoice.

    ``max_concurrency``: requests a run has in flight at once, all lessons together (a
    remote voice also limits the whole process, see services/elevenlabs.py)."""

    name: str
    remote: bool
    settings: dict[str, Any]
    max_concurrency: int

    def cast(self, lesson: Lesson, recorded: Mapping[str, Any] | None = None
             ) -> dict[str, VoiceChoice]:
        """Speaker → voice for every speaker of the study text (pure, deterministic;
        narration without a named speaker uses the key ``""``). ``recorded`` is the last
        recorded choice per speaker: a speaker whose configuration is unchanged keeps it."""
        ...

    def casting_digest(self, student: str) -> str:
        """A fingerprint of the configuration casting reads besides the lesson (voice map,
        the student's profile, catalog), so a recorded cast can be trusted while it holds."""
        ...

    def requests(self, lesson: Lesson, voices: Mapping[str, str]) -> list[SpeechRequest]:
        """The requests that voice the study text in order, given speaker → voice id (pure).

        Raises ``VoiceError`` naming the line when a line is too long for one request."""
        ...

    def request_key(self, request: SpeechRequest) -> str:
        """The content address of the request's audio (see ``speech_key``)."""
        ...

    def synthesize(self, request: SpeechRequest) -> Pcm:
        """The request's audio. Raises ``VoiceError`` (``retryable`` set) on failure."""
        ...

    def check_budget(self, characters: int) -> None:
        """Raise ``VoiceError`` when the account cannot pay for ``characters`` more (a remote
        voice asks its service; a local one has nothing to check)."""
        ...


class Storage(Protocol):
    """Keeps audio files under keys and gives them URLs. LocalStorage, S3Storage."""

    name: str
    remote: bool
    settings: dict[str, Any]

    def put(self, file: Path, key: str, *, sha256: str, content_type: str) -> dict[str, Any]:
        """Store ``file`` at ``key`` (idempotent).

        Returns ``bucket``, ``key``, ``etag`` and ``url``."""
        ...

    def fetch(self, outputs: dict[str, Any], dest: Path) -> None:
        """Copy the stored object of an earlier ``put`` back to ``dest``."""
        ...

    def read_object(self, key: str) -> bytes | None:
        """The bytes stored at ``key``, or None when there is no such object.

        With ``write_object`` this lets other parts keep small shared objects in the bucket
        (the content-addressed TTS audio cache under ``cache/``): CI machines and workers
        then share what was paid for."""
        ...

    def write_object(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store ``data`` at ``key`` (idempotent; atomic: readers see old or new bytes)."""
        ...

    def read_object_version(self, key: str) -> tuple[bytes, str] | None:
        """The bytes at ``key`` and their version (an ETag), or None when absent."""
        ...

    def write_object_if(self, key: str, data: bytes, *, content_type: str,
                        version: str | None) -> str | None:
        """Store ``data`` at ``key`` only if no object is there (``version`` None) or the
        object there is still ``version``; the new version, or None when the condition failed
        (someone else wrote first). With it, machines that share nothing but the bucket take
        turns (the TTS cache's claims)."""
        ...

    def durable(self, outputs: dict[str, Any]) -> bool: ...

    def watched(self, outputs: dict[str, Any]) -> tuple[str, ...]: ...
