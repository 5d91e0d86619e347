"""Casting: speaker → ElevenLabs voice, deterministic, explained and stable across edits.

For each speaker of the study text (in order of first appearance; narration without a
speaker is the key ``""``), the most specific explicit choice wins:

1. the lesson's ``speaker_profiles[].voice``                      source ``profile``
2. the student profile's ``voices[Speaker]``                      source ``student``
3. ``configs/voices.yml``'s ``Speaker: voice``                    source ``config``
4. with ``auto`` (the default) and a catalog: the best-scoring    source ``catalog``
   voice not yet used in this lesson (tts.md §2.5's points)
5. the student profile's ``voices.default``, else voices.yml's    source ``default``
   ``default``

A voice token is a catalog id or a catalog name (any case), else taken as an id. Explicit
choices may share a voice (they were asked for); automatic picks never reuse one.

Fixed against the predecessor: no gender is guessed from a name (Mike is not female, a
Narrator is not "neutral"); an unprofiled speaker's gender simply does not score; ``senior``
matches ``old``; ``auto: false`` really stops automatic picks; student ``voices`` are used;
labels that never speak take no voice.

Stability: every choice records a ``basis``, the fingerprint of what that speaker's choice
was made from (its profile, its map entries, the defaults, ``auto``, the accent preference).
A recorded speaker whose basis is unchanged keeps its voice (and is placed first, so adding a
speaker never moves anyone else), unless it was a catalog pick that left the catalog.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from esl_build.errors import ConfigInvalid
from esl_build.fingerprint import fingerprint
from esl_build.lesson.model import Lesson, SpeakerProfile
from esl_build.voices.catalog import Catalog, CatalogVoice, VoiceMap

SOURCES = ("config", "student", "profile", "catalog", "default")

_GENDERS = {"male": "male", "m": "male", "man": "male", "boy": "male", "female": "female",
            "f": "female", "woman": "female", "girl": "female", "neutral": "neutral",
            "nonbinary": "neutral", "non-binary": "neutral"}
_AGES = {"child": "child", "kid": "child", "teen": "young", "teenager": "young",
         "young": "young", "youth": "young", "adult": "middle_aged",
         "middle_aged": "middle_aged", "middle-aged": "middle_aged", "middle aged": "middle_aged",
         "senior": "old", "old": "old", "elderly": "old"}
_ROLE_HINTS = {
    "narrator": ("narration", "narrative", "audiobook", "news"),
    "teacher": ("narration", "news", "conversational", "audiobook"),
    "student": ("conversational", "social", "social_media", "characters", "dialogue"),
    "system": ("narration", "news", "conversational"),
}
_STYLE_HINTS = {
    "professional": ("professional", "narration", "news"),
    "social": ("social", "conversational", "casual"),
    "calm": ("calm", "relaxed", "soothing"),
    "energetic": ("energetic", "hyped", "excited"),
    "creative": ("creative", "expressive"),
    "practical": ("practical", "clear", "confident"),
    "thoughtful": ("thoughtful", "calm", "narration"),
}


@dataclass(frozen=True)
class VoiceChoice:
    """The voice a speaker got, where it came from, and (catalog picks) its score."""

    id: str
    name: str
    source: str
    score: int | None
    basis: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Wanted:
    """What a speaker should sound like, normalised (None: not asked for)."""

    role: str
    gender: str | None = None
    age: str | None = None
    accent: str | None = None
    style: str | None = None


def profile_for(speaker: str, profiles: Iterable[SpeakerProfile]) -> SpeakerProfile | None:
    """The profile whose id (or else display name) is the speaker's label, ignoring case."""
    wanted = speaker.casefold()
    listed = tuple(profiles)
    for key in ("id", "display_name"):
        for profile in listed:
            value = getattr(profile, key)
            if value is not None and value.strip().casefold() == wanted:
                return profile
    return None


def speakers_of(lesson: Lesson) -> list[str]:
    """The speakers to cast: named ones in order of appearance, then ``""`` for narration."""
    study = lesson.study_text
    if study is None:
        return []
    names = list(study.speakers)
    if any(segment.speaker is None for segment in study.segments):
        names.append("")
    return names


def cast(lesson: Lesson, *, voice_map: VoiceMap, student: Mapping[str, Any] | None,
         student_voices: Mapping[str, str], catalog: Catalog,
         recorded: Mapping[str, Any] | None = None) -> dict[str, VoiceChoice]:
    """Speaker → voice for every speaker of the lesson's study text (see the module doc)."""
    accent_preference = _text((student or {}).get("accentPreference"))
    kind = lesson.study_text.kind if lesson.study_text else "monologue"
    profiles = lesson.frontmatter.speaker_profiles
    chosen: dict[str, VoiceChoice] = {}
    pending: list[tuple[str, Wanted, str]] = []
    for speaker in speakers_of(lesson):
        key = speaker.casefold()
        profile = profile_for(speaker, profiles) if speaker else None
        explicit = [(profile.voice if profile else None, "profile"),
                    (student_voices.get(key) if speaker else None, "student"),
                    (voice_map.speakers.get(key) if speaker else None, "config")]
        basis = fingerprint({
            "profile": dataclasses.asdict(profile) if profile else None,
            "explicit": [token for token, _ in explicit],
            "defaults": [student_voices.get("default"), voice_map.default],
            "auto": voice_map.auto, "accent": accent_preference, "kind": kind})
        kept = _kept((recorded or {}).get(speaker), basis, catalog)
        if kept is not None:
            chosen[speaker] = kept
            continue
        token, source = next(((t, s) for t, s in explicit if t), (None, ""))
        if token:
            chosen[speaker] = _resolved(token, source, basis, catalog)
        else:
            pending.append((speaker, _wanted(speaker, profile, kind, accent_preference), basis))
    for speaker, wanted, basis in pending:
        used = {choice.id for choice in chosen.values()}
        pick = pick_voice(wanted, catalog, used) if voice_map.auto else None
        if pick is not None:
            voice, score = pick
            chosen[speaker] = VoiceChoice(voice.id, voice.name, "catalog", score, basis)
            continue
        default = student_voices.get("default") or voice_map.default
        if default is None:
            raise _no_voice(lesson, speaker, voice_map, catalog)
        chosen[speaker] = _resolved(default, "default", basis, catalog)
    return {speaker: chosen[speaker] for speaker in speakers_of(lesson)}


def pick_voice(wanted: Wanted, catalog: Catalog, used: set[str]
               ) -> tuple[CatalogVoice, int] | None:
    """The best free catalog voice for ``wanted`` and its score (ties: catalog order).

    A wanted male or female speaker is scored among voices of that gender, else among
    neutral ones, else among all (only when no voice of either is free)."""
    free = [voice for voice in catalog.voices if voice.id not in used]
    if not free:
        return None
    pool = free
    if wanted.gender in ("male", "female"):
        pool = ([v for v in free if v.label("gender") == wanted.gender]
                or [v for v in free if v.label("gender") == "neutral"] or free)
    scored = [(score(voice, wanted), -index, voice) for index, voice in enumerate(pool)]
    best = max(scored, key=lambda item: (item[0], item[1]))
    return best[2], best[0]


def score(voice: CatalogVoice, wanted: Wanted) -> int:
    """tts.md §2.5's points for ``voice`` (gender, age, accent, role, style), without guesses:
    a criterion nobody asked for scores nothing."""
    use_case, descriptive = voice.label("use_case"), voice.label("descriptive")
    category = (voice.category or "").lower()
    points = 0
    for want, label, hit, miss, absent in (
            (wanted.gender, voice.label("gender"), 40, -15, 5),
            (wanted.age, _AGES.get(voice.label("age"), voice.label("age")), 20, -5, 0),
            (wanted.accent, voice.label("accent"), 20, -5, 0)):
        if want:
            points += absent if not label else hit if _same(want, label) else miss
    role = wanted.role
    if role == "narrator":
        points += 30 if "narration" in use_case or "narration" in category else \
            10 if "news" in use_case else 0
    elif role == "teacher":
        points += 20 if any(w in use_case for w in ("narration", "news", "conversation")) else 0
    elif role == "student":
        points += 10 if "conversation" in use_case else 5 if "social" in use_case else 0
    if voice.label("accent"):
        points += 3
    if any(hint in use_case for hint in _ROLE_HINTS.get(role, ())):
        points += 10
    style = wanted.style
    if style:
        if descriptive == style:
            points += 15
        elif style in descriptive:
            points += 10
        elif any(h in descriptive or h in use_case for h in _STYLE_HINTS.get(style, ())):
            points += 8
    return points


def _wanted(speaker: str, profile: SpeakerProfile | None, kind: str,
            accent_preference: str | None) -> Wanted:
    name = speaker.casefold()
    role = _text(profile.role if profile else None)
    if role is None:
        role = ("narrator" if not speaker or name == "narrator" else "teacher"
                if "teacher" in name else "narrator" if kind == "monologue" else "student")
    age = _text(profile.age if profile else None)
    return Wanted(role=role,
                  gender=_GENDERS.get(_text(profile.gender if profile else None) or ""),
                  age=None if age in (None, "universal") else _AGES.get(age or "", age),
                  accent=_text(profile.accent if profile else None) or accent_preference,
                  style=_text(profile.style if profile else None))


def _same(wanted: str, label: str) -> bool:
    """Equal, or one names the other as a word (``british`` ~ ``british english``)."""
    return wanted == label or f" {label} " in f" {wanted} " or f" {wanted} " in f" {label} "


def _text(value: object) -> str | None:
    return value.strip().lower() or None if isinstance(value, str) else None


def _resolved(token: str, source: str, basis: str, catalog: Catalog) -> VoiceChoice:
    voice = catalog.resolve(token)
    return VoiceChoice(voice.id if voice else token, voice.name if voice else token, source,
                       None, basis)


def _kept(recorded: Any, basis: str, catalog: Catalog) -> VoiceChoice | None:
    """A recorded choice that still holds: same basis, and a catalog pick still listed."""
    if not isinstance(recorded, Mapping) or recorded.get("basis") != basis:
        return None
    try:
        choice = VoiceChoice(str(recorded["id"]), str(recorded["name"]),
                             str(recorded["source"]), recorded.get("score"), basis)
    except KeyError:
        return None
    if choice.source not in SOURCES or (
            choice.source == "catalog" and catalog.resolve(choice.id) is None):
        return None
    return choice


def _no_voice(lesson: Lesson, speaker: str, voice_map: VoiceMap,
              catalog: Catalog) -> ConfigInvalid:
    who = f"speaker {speaker!r}" if speaker else "the narration (lines without a speaker)"
    why = ("auto is off in configs/voices.yml" if not voice_map.auto and catalog.voices
           else "the voice catalog configs/elevenlabs.voices.json is empty or missing "
           "(run esl-build voices sync)")
    line = lesson.study_text.line if lesson.study_text else 1
    return ConfigInvalid(f"{who} has no ElevenLabs voice: {why}; map it in configs/voices.yml "
                         f"({speaker or 'Speaker'}: <voice id or name>) or set a default",
                         path=lesson.path, line=line)
