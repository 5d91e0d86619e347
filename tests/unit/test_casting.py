"""Reading tts records' voices in both shapes: voice id strings and ElevenLabs-style dicts."""

from __future__ import annotations

from esl_build.casting import VoiceChoice, new_choices, voice_choices


def test_bare_ids_take_their_source_from_the_caller():
    choices = voice_choices({"Alex": "en-us+m1", "": "en-us"},
                            lambda speaker: "narration" if not speaker else "default")
    assert choices["Alex"] == VoiceChoice("Alex", "en-us+m1", source="default")
    assert choices["Alex"].guessed and not choices[""].guessed
    assert str(choices["Alex"]) == "Alex → en-us+m1 (guessed)"
    assert str(choices[""]) == "narration → en-us"
    assert not voice_choices({"Alex": "en-us+m1"})["Alex"].guessed  # unknown: no warning


def test_dicts_carry_name_and_source():
    choices = voice_choices({"Ana": {"id": "v1", "name": "Rachel", "source": "config"},
                             "Ben": {"id": "v2", "name": "Adam", "source": "catalog",
                                     "score": 0.4},
                             "Bad": {"name": "no id"}, "Odd": 3})
    assert set(choices) == {"Ana", "Ben"}
    assert str(choices["Ana"]) == "Ana → Rachel (v1)" and not choices["Ana"].guessed
    assert choices["Ben"].guessed
    assert voice_choices(None) == {} and voice_choices(["v1"]) == {}


def test_new_speakers_are_those_without_the_same_voice_before():
    after = voice_choices({"Ana": {"id": "v1"}, "Ben": "v2", "Cy": "v3"})
    before = {"Ana": "v1", "Ben": {"id": "v9"}}
    assert [c.speaker for c in new_choices(before, after)] == ["Ben", "Cy"]
    assert [c.speaker for c in new_choices(None, after)] == ["Ana", "Ben", "Cy"]
