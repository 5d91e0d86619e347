"""The offline voice: espeak-ng, bundled by the ``espeakng-loader`` wheel, driven through ctypes.

No credentials, no downloads, no system packages: the wheel carries ``libespeak-ng`` and its data.
It is what a build uses without an ElevenLabs key (previews, CI, tests).

Voice ids are ``<language>[+<variant>]``, e.g. ``en-us+m3`` or ``en-gb+f4``. The languages we cast
from are the English voices the wheel bundles (``LANGUAGES``; there is no Australian or Irish
one); the variants (``VARIANTS``) change pitch and formants, which is what makes two speakers
sound different. Any other voice espeak knows (``fr``, ``en-us+Alex``) is accepted too.

Two properties of the library shape this module:

* It is process-global and not thread-safe, so every call holds ``_LOCK``.
* It keeps static state between calls that ``espeak_Terminate`` does not reset (the pitch-flutter
  phase, the gain control, cycle counters), so the same text comes out a few samples different
  each time. Each ``synthesize`` therefore loads the library afresh (dlopen, initialise, speak,
  terminate, dlclose: about 5 ms) and gets what a fresh ``espeak-ng`` process would. Another user
  of ``libespeak-ng`` in the same process would keep it loaded and so lose this determinism
  (never the correctness).

The "breathy" variants (``f2``, ``f3``, ``f5`` and others with a ``breath`` line) are not
reproducible even so: their noise changes with what other threads did to the heap (measured).
``assign`` never hands them out; the female variants it uses instead are ``f1``, ``f4`` and
espeak's named ones without breath.
"""

from __future__ import annotations

import _ctypes
import ctypes
import functools
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import espeakng_loader

from esl_build.errors import ConfigInvalid, VoiceError
from esl_build.lesson.model import Lesson
from esl_build.services.protocols import Pcm, SpeechRequest, Turn, speech_key
from esl_build.voices.casting import VoiceChoice, profile_for

DEFAULT_LANGUAGE = "en-us"

LANGUAGES: dict[str, str] = {  # voice-id language → the espeak voice that speaks it
    "en-us": "en-us",
    "en-gb": "en",  # espeak names its British voice plain "en"
    "en-gb-x-rp": "en-gb-x-rp",
    "en-gb-scotland": "en-gb-scotland",
    "en-gb-x-gbclan": "en-gb-x-gbclan",  # Lancaster
    "en-gb-x-gbcwmd": "en-gb-x-gbcwmd",  # West Midlands
    "en-us-nyc": "en-us-nyc",
    "en-029": "en-029",  # Caribbean
}

VARIANTS: dict[str, tuple[str, ...]] = {  # in casting order, the most distinct first
    "male": ("m1", "m3", "m4", "m2", "m8", "m6", "m5", "m7"),
    "female": ("f1", "f4", "belinda", "steph", "aunty", "linda"),
}
_VARIANT_GENDER = {variant: gender for gender, variants in VARIANTS.items() for variant in variants}

_ACCENTS: tuple[tuple[tuple[str, ...], str], ...] = (  # profile words → language, first match wins
    (("scottish", "scotland", "scots"), "en-gb-scotland"),
    (("rp", "received pronunciation"), "en-gb-x-rp"),
    (("lancaster", "lancashire"), "en-gb-x-gbclan"),
    (("west midlands", "birmingham", "brummie"), "en-gb-x-gbcwmd"),
    (("new york", "nyc", "new yorker"), "en-us-nyc"),
    (("caribbean", "jamaican", "jamaica", "trinidadian"), "en-029"),
    (("british", "english", "england", "uk", "en gb", "gb"), "en-gb"),
    (("american", "us", "usa", "en us"), "en-us"),
)
_GENDERS = {"male": "male", "m": "male", "man": "male", "boy": "male",
            "female": "female", "f": "female", "woman": "female", "girl": "female"}

_LOCK = threading.Lock()  # libespeak-ng is process-global and not thread-safe

# espeak-ng's speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETER_RATE = 1
_EE_OK = 0
_EE_NOT_FOUND = 2

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.c_void_p)
_SIGNATURES: dict[str, tuple[list[Any], Any]] = {  # name: (argtypes, restype)
    "espeak_Info": ([ctypes.c_void_p], ctypes.c_char_p),
    "espeak_Initialize": ([ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int],
                          ctypes.c_int),
    "espeak_SetSynthCallback": ([_SynthCallback], None),
    "espeak_SetVoiceByName": ([ctypes.c_char_p], ctypes.c_int),
    "espeak_SetParameter": ([ctypes.c_int, ctypes.c_int, ctypes.c_int], ctypes.c_int),
    "espeak_Synth": ([ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                      ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p],
                     ctypes.c_int),
    "espeak_Synchronize": ([], ctypes.c_int),
    "espeak_Terminate": ([], ctypes.c_int),
}


class EspeakVoice:
    """Speaks text with espeak-ng, offline and deterministically (the ``Voice`` protocol).

    ``rate_wpm`` is the speaking rate in words per minute: 150 by default, slower than espeak's
    175, for learners. ``calls`` and ``characters`` count what this instance has synthesised
    (successful calls only), for the build's cost summary.
    """

    name = "espeak"
    remote = False
    max_concurrency = 1  # one library per process: more threads would only queue on the lock

    def __init__(self, rate_wpm: int = 150) -> None:
        if not 80 <= rate_wpm <= 450:
            raise ConfigInvalid(f"espeak rate must be 80 to 450 words per minute, not {rate_wpm}")
        self.rate_wpm = rate_wpm
        self.settings: dict[str, Any] = {"engine": "espeak-ng", "version": _library_version(),
                                         "rate": rate_wpm}
        self.calls = 0
        self.characters = 0

    def assign(self, lesson: Lesson) -> dict[str, str]:
        """Speaker → voice id, distinct per speaker and the same for the same lesson.

        A speaker's profile picks the language (``accent``) and male or female variants
        (``gender``); accents we have no voice for (Australian, Irish, ...) get
        ``DEFAULT_LANGUAGE``. Speakers without a gender get whichever gender is rarer so far
        (male on a tie), so an unprofiled dialogue alternates male and female. Nothing is guessed
        from names. Narration (segments with no speaker, key ``""``) gets the plain voice of the
        most used language, without a variant, so it differs from every speaker.
        """
        study = lesson.study_text
        if study is None:
            return {}
        voices: dict[str, str] = {}
        for speaker in study.speakers:
            profile = profile_for(speaker, lesson.frontmatter.speaker_profiles)
            language = _language(profile.accent if profile else None)
            gender = _gender(profile.gender if profile else None) or _rarer_gender(voices.values())
            voices[speaker] = _cast(language, gender, taken=set(voices.values()))
        if any(segment.speaker is None for segment in study.segments):
            languages = Counter(voice.partition("+")[0] for voice in voices.values())
            voices[""] = languages.most_common(1)[0][0] if languages else DEFAULT_LANGUAGE
        return voices

    @staticmethod
    def source(lesson: Lesson, speaker: str) -> str:
        """How ``assign`` chose the speaker's voice: ``profile`` when the lesson's speaker
        profile gives a gender, ``narration`` for the narrator, else ``default`` (a guess: the
        gender only alternates, nothing is known about the speaker)."""
        if not speaker:
            return "narration"
        profile = profile_for(speaker, lesson.frontmatter.speaker_profiles)
        return "profile" if profile and _gender(profile.gender) else "default"

    def cast(self, lesson: Lesson, recorded: Mapping[str, Any] | None = None
             ) -> dict[str, VoiceChoice]:
        """``assign`` as recorded choices, with ``source`` (espeak has no catalog to score;
        ``recorded`` changes nothing: the same lesson always gets the same voices)."""
        return {speaker: VoiceChoice(voice_id, voice_id, self.source(lesson, speaker), None, "")
                for speaker, voice_id in self.assign(lesson).items()}

    def casting_digest(self, student: str) -> str:
        """espeak casts from the lesson alone."""
        return ""

    def requests(self, lesson: Lesson, voices: Mapping[str, str]) -> list[SpeechRequest]:
        """One request per spoken line (espeak has no dialogue mode)."""
        study = lesson.study_text
        return [SpeechRequest((Turn(voices.get(s.speaker or "", voices.get("", "")), s.text,
                                    s.line),))
                for s in (study.segments if study else ()) if s.text.strip()]

    def request_key(self, request: SpeechRequest) -> str:
        return speech_key({"backend": self.name, **self.settings}, request)

    def check_budget(self, characters: int) -> None:
        """Nothing to pay for."""

    def synthesize(self, request: SpeechRequest) -> Pcm:
        """The request's lines spoken one after the other (no pause between them)."""
        parts = [self.speak(turn.text, turn.voice_id) for turn in request.turns]
        return Pcm(b"".join(part.samples for part in parts), parts[0].rate)

    def speak(self, text: str, voice_id: str) -> Pcm:
        """``text`` spoken by ``voice_id`` as 22.05 kHz PCM; the same inputs give the same samples
        (for every voice ``assign`` hands out; see the module docstring for the breathy ones).

        Raises ``VoiceError`` for an unknown voice id or a failing library.
        """
        voice = _espeak_voice(voice_id)
        with _LOCK:
            samples, rate = _speak(text, voice, voice_id, self.rate_wpm)
            self.calls += 1
            self.characters += len(text)
        return Pcm(samples, rate)


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.casefold())) + " "


def _language(accent: str | None) -> str:
    words = _words(accent or "")
    for keys, language in _ACCENTS:
        if any(f" {key} " in words for key in keys):
            return language
    return DEFAULT_LANGUAGE


def _gender(gender: str | None) -> str | None:
    return _GENDERS.get((gender or "").strip().casefold())


def _rarer_gender(voices: Iterable[str]) -> str:
    counts = Counter(_VARIANT_GENDER.get(voice.partition("+")[2]) for voice in voices)
    return "female" if counts["male"] > counts["female"] else "male"


def _cast(language: str, gender: str, taken: set[str]) -> str:
    """The first free voice of ``gender``: an unused variant in ``language`` if there is one,
    else a used variant in ``language``, else the same in the other languages."""
    used_variants = {voice.partition("+")[2] for voice in taken}
    languages = [language, *(other for other in LANGUAGES if other != language)]
    free = [f"{lang}+{variant}" for lang in languages for variant in VARIANTS[gender]
            if f"{lang}+{variant}" not in taken]
    fresh = [voice for voice in free if voice.partition("+")[2] not in used_variants]
    return (fresh or free or [f"{language}+{VARIANTS[gender][0]}"])[0]


def _espeak_voice(voice_id: str) -> str:
    """The espeak name for a voice id, or VoiceError when we can tell it does not exist."""
    language, plus, variant = voice_id.partition("+")
    if plus and variant not in _bundled_variants():
        raise VoiceError(f"unknown espeak voice {voice_id!r}: no variant {variant!r} "
                         f"(variants: {', '.join(sorted(VARIANTS['male'] + VARIANTS['female']))})")
    return LANGUAGES.get(language, language) + plus + variant


@functools.cache
def _bundled_variants() -> frozenset[str]:
    return frozenset(os.listdir(os.path.join(espeakng_loader.get_data_path(), "voices", "!v")))


@functools.cache
def _library_version() -> str:
    with _LOCK, _library() as lib:
        return str(lib.espeak_Info(None).decode())


@contextmanager
def _library() -> Iterator[ctypes.CDLL]:
    """libespeak-ng, loaded afresh (its static state zeroed) and unloaded on exit. Hold _LOCK."""
    try:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
    except OSError as exc:
        raise VoiceError(f"cannot load libespeak-ng: {exc}") from exc
    try:
        for function, (argtypes, restype) in _SIGNATURES.items():
            getattr(lib, function).argtypes = argtypes
            getattr(lib, function).restype = restype
        yield lib
    finally:
        dlclose = getattr(_ctypes, "dlclose", None)  # POSIX only; elsewhere state carries over
        if dlclose is not None:
            dlclose(lib._handle)


def _speak(text: str, voice: str, voice_id: str, rate_wpm: int) -> tuple[bytes, int]:
    """Run one synthesis in a fresh library: (samples, sample rate). Hold _LOCK."""
    chunks: list[bytes] = []

    def collect(wav: Any, count: int, events: Any) -> int:
        if count > 0:
            chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # go on

    callback = _SynthCallback(collect)  # kept alive by this frame until the synthesis returns
    data_path = espeakng_loader.get_data_path().encode()
    with _library() as lib:
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path,
                                     _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise VoiceError(f"espeak-ng could not initialise with its data at {data_path!r}")
        try:
            lib.espeak_SetSynthCallback(callback)
            status = lib.espeak_SetVoiceByName(voice.encode())
            if status == _EE_NOT_FOUND:
                raise VoiceError(f"unknown espeak voice {voice_id!r} "
                                 f"(languages: {', '.join(LANGUAGES)})")
            _check(status, "select voice", voice_id)
            _check(lib.espeak_SetParameter(_PARAMETER_RATE, rate_wpm, 0), "set rate", voice_id)
            encoded = text.encode()
            _check(lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                    None, None), "synthesize", voice_id)
            _check(lib.espeak_Synchronize(), "synchronize", voice_id)
        finally:
            lib.espeak_Terminate()
    return b"".join(chunks), rate


def _check(status: int, action: str, voice_id: str) -> None:
    if status != _EE_OK:
        raise VoiceError(f"espeak-ng failed to {action} with voice {voice_id!r} (status {status})")
