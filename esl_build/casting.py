"""Which voice each speaker got, read from tts records in either shape they come in.

A tts record's ``outputs.voices`` maps speaker → voice. Older records (and the espeak voice)
hold a voice id string; newer ones a dict ``{"id", "name", "source", "score"}`` where
``source`` says how the voice was chosen: ``config`` (configs/voices.yml), ``student`` (the
student profile), ``profile`` (the lesson's speaker profile) or, when nothing said who the
speaker is, ``catalog`` / ``default``: a guess. The speaker ``""`` is the narration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

GUESSED_SOURCES = frozenset({"catalog", "default"})


@dataclass(frozen=True)
class VoiceChoice:
    """The voice one speaker got. ``source`` is "" when the record does not say."""

    speaker: str
    id: str
    name: str = ""
    source: str = ""

    @property
    def guessed(self) -> bool:
        """True when nothing about the speaker chose the voice."""
        return self.source in GUESSED_SOURCES

    def __str__(self) -> str:
        who = self.speaker or "narration"
        shown = f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id
        return f"{who} → {shown}" + (" (guessed)" if self.guessed else "")


def voice_choices(voices: object, source_of: Callable[[str], str] | None = None
                  ) -> dict[str, VoiceChoice]:
    """speaker → ``VoiceChoice`` from a record's ``voices`` (ids or dicts; anything else is
    skipped). ``source_of(speaker)`` supplies the source when a value is a bare id."""
    if not isinstance(voices, Mapping):
        return {}
    choices = {}
    for speaker, value in voices.items():
        if isinstance(value, str):
            choices[str(speaker)] = VoiceChoice(str(speaker), value, source=(
                source_of(str(speaker)) if source_of else ""))
        elif isinstance(value, Mapping) and value.get("id"):
            choices[str(speaker)] = VoiceChoice(
                str(speaker), str(value["id"]), str(value.get("name") or ""),
                str(value.get("source") or ""))
    return choices


def new_choices(before: object, after: Mapping[str, VoiceChoice]) -> list[VoiceChoice]:
    """The choices in ``after`` whose speaker had no voice, or another voice, in ``before``
    (a previous record's ``voices``)."""
    old = voice_choices(before)
    return [choice for speaker, choice in after.items()
            if speaker not in old or old[speaker].id != choice.id]
