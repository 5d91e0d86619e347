"""Casting speakers to ElevenLabs voices: tts.md §2 and the §8 conformance cases, with the
predecessor's flaws fixed (each deviation says so)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esl_build.errors import ConfigInvalid
from esl_build.lesson.model import Frontmatter, Lesson, Segment, SpeakerProfile, StudyText
from esl_build.voices.casting import Wanted, cast, score
from esl_build.voices.catalog import Catalog, CatalogVoice, VoiceMap, voice_map


def voice(id: str, gender: str = "", age: str = "", accent: str = "", descriptive: str = "",
          use_case: str = "", category: str = "premade") -> CatalogVoice:
    labels = {k: v for k, v in {"gender": gender, "age": age, "accent": accent,
                                "descriptive": descriptive, "use_case": use_case}.items() if v}
    return CatalogVoice(id, id.capitalize(), category, labels)


CATALOG = Catalog((
    voice("nora", "female", "middle_aged", "british", "calm", "narration"),
    voice("owen", "male", "young", "american", "casual", "conversational"),
    voice("ruth", "female", "young", "american", "cute", "conversational"),
    voice("hugh", "male", "old", "british", "professional", "news"),
    voice("sage", "neutral", "young", "american", "thoughtful", "conversational"),
), "sha256:catalog")


def lesson(*turns: tuple[str | None, str], profiles: tuple[SpeakerProfile, ...] = (),
           student: str = "Anna") -> Lesson:
    segments = tuple(Segment(speaker, text, text, line) for line, (speaker, text)
                     in enumerate(turns, start=10))
    kind = "dialogue" if len({s for s, _ in turns if s}) > 1 else "monologue"
    return Lesson(id="unit1", path="lessons/unit1.md",
                  frontmatter=Frontmatter(title="Unit 1", student=student, level="B1",
                                          topic=("x",), input_type="generate",
                                          speaker_profiles=profiles),
                  blocks=(), study_text=StudyText(9, "Transcript", kind, segments))


def casting(subject: Lesson, *, map: VoiceMap | None = None, student: dict | None = None,
            catalog: Catalog = CATALOG, recorded: dict | None = None) -> dict[str, tuple]:
    choices = cast(subject, voice_map=map or VoiceMap(), student=student,
                   student_voices={k.casefold(): v for k, v in
                                   ((student or {}).get("voices") or {}).items()},
                   catalog=catalog, recorded=recorded)
    return {s: (c.id, c.source) for s, c in choices.items()}


def test_the_worked_example_scores_111():
    jessica = voice("jessica", "female", "young", "american", "cute", "conversational")
    wanted = Wanted(role="student", gender="female", age="young", accent="american",
                    style="social")
    assert score(jessica, wanted) == 40 + 20 + 20 + 10 + 3 + 10 + 8


def test_explicit_maps_win_in_order_profile_student_config():  # §8.3, and student voices used
    subject = lesson(("Alex", "Hi."), ("Mara", "Hello."), ("Sam", "Hey."),
                     profiles=(SpeakerProfile("Sam", voice="Hugh"),))
    got = casting(subject, map=VoiceMap({"alex": "owen", "mara": "ruth"}),
                  student={"voices": {"Mara": "nora"}})
    assert got == {"Alex": ("owen", "config"), "Mara": ("nora", "student"),
                   "Sam": ("hugh", "profile")}


def test_two_speakers_mapped_to_one_voice_share_it():  # fixed: §2.3 forced the second away
    got = casting(lesson(("Alex", "Hi."), ("Mara", "Hello.")),
                  map=VoiceMap({"alex": "owen", "mara": "owen"}, default="nora"))
    assert got == {"Alex": ("owen", "config"), "Mara": ("owen", "config")}


def test_auto_picks_are_distinct_and_follow_the_profiles():  # §8.7
    profiles = (SpeakerProfile("Narrator", role="narrator", gender="female",
                               style="professional"),
                SpeakerProfile("Chloe", role="student", gender="female", style="social"),
                SpeakerProfile("Mia", role="student", gender="neutral", style="thoughtful"),
                SpeakerProfile("Ethan", role="student", gender="male", age="young",
                               style="practical"))
    subject = lesson(("Narrator", "Once."), ("Chloe", "Hi."), ("Mia", "Hm."), ("Ethan", "Yo."),
                     profiles=profiles)
    assert casting(subject) == {"Narrator": ("nora", "catalog"), "Chloe": ("ruth", "catalog"),
                                "Mia": ("sage", "catalog"), "Ethan": ("owen", "catalog")}


def test_no_gender_is_guessed_from_a_name():  # fixed: Mike and George were "female"
    got = casting(lesson(("Mike", "Hi."), ("George", "Hello.")))
    # By score alone (student role, conversational voices, file order), not by name:
    assert got == {"Mike": ("owen", "catalog"), "George": ("ruth", "catalog")}


def test_an_unprofiled_narrator_follows_the_accent_preference():  # fixed: always "neutral"
    narrators = Catalog((voice("sam", "neutral", accent="american", use_case="narration"),
                         voice("nora", "female", accent="british", use_case="narration"),
                         voice("hank", "male", accent="american", use_case="narration")))
    narration = lesson((None, "Tea came from China."), (None, "Then it spread."))
    assert casting(narration, student={"accentPreference": "british"}, catalog=narrators) == {
        "": ("nora", "catalog")}
    assert casting(narration, catalog=narrators) == {"": ("sam", "catalog")}  # file order


def test_senior_matches_old():  # fixed: "senior" never matched the catalog's "old"
    got = casting(lesson(("Gran", "Hello, dear."),
                         profiles=(SpeakerProfile("Gran", gender="male", age="senior"),)))
    assert got == {"Gran": ("hugh", "catalog")}


def test_a_male_speaker_gets_a_female_voice_only_when_no_other_is_free():  # §8.19
    two = Catalog((voice("narr", "female", use_case="narration"),
                   voice("conv", "female", use_case="conversational")))
    subject = lesson(("Narrator", "Once."), ("Student", "Hi."),
                     profiles=(SpeakerProfile("Narrator", role="narrator", gender="female",
                                              style="professional"),
                               SpeakerProfile("Student", role="student", gender="male")))
    assert casting(subject, catalog=two) == {"Narrator": ("narr", "catalog"),
                                             "Student": ("conv", "catalog")}


def test_without_auto_or_catalog_the_default_voice_is_used():  # §8.1, §8.4, §8.18
    subject = lesson(("Alex", "Hi."), (None, "A line of narration."))
    assert casting(subject, map=VoiceMap(default="voice_id_default", auto=False)) == {
        "Alex": ("voice_id_default", "default"), "": ("voice_id_default", "default")}
    assert casting(subject, map=VoiceMap(default="voice_id_default"), catalog=Catalog()) == {
        "Alex": ("voice_id_default", "default"), "": ("voice_id_default", "default")}
    assert casting(subject, map=VoiceMap(default="x"), student={"voices": {"default": "y"}},
                   catalog=Catalog())["Alex"] == ("y", "default")


def test_auto_false_really_stops_automatic_picks():  # fixed: it replaced scoring by a list
    with pytest.raises(ConfigInvalid, match=r"lessons/unit1.md:9: speaker 'Alex' has no "
                       r"ElevenLabs voice: auto is off"):
        casting(lesson(("Alex", "Hi.")), map=VoiceMap(auto=False))


def test_a_label_that_never_speaks_takes_no_voice():  # fixed: unspoken labels took voices
    assert set(casting(lesson(("Alex", "Hey there,"), ("Alex", "more text")))) == {"Alex"}


def test_a_recorded_speaker_keeps_its_voice_until_its_own_configuration_changes():
    profiles = (SpeakerProfile("Alex", gender="male"), SpeakerProfile("Mara", gender="female"))
    subject = lesson(("Alex", "Hi."), ("Mara", "Hello."), profiles=profiles)
    first = cast(subject, voice_map=VoiceMap(), student=None, student_voices={},
                 catalog=CATALOG)
    recorded = {s: c.to_json() for s, c in first.items()}
    recorded["Alex"] = {**recorded["Alex"], "id": "hugh", "name": "Hugh"}  # picked earlier
    assert casting(subject, recorded=recorded)["Alex"] == ("hugh", "catalog")
    edited = lesson(("Alex", "Hi."), ("Mara", "Hello."),
                    profiles=(profiles[0], SpeakerProfile("Mara", gender="female",
                                                          accent="british")))
    again = casting(edited, recorded=recorded)
    assert again["Alex"] == ("hugh", "catalog") and again["Mara"] == ("nora", "catalog")
    gone = Catalog(tuple(v for v in CATALOG.voices if v.id != "hugh"))
    assert casting(subject, recorded=recorded, catalog=gone)["Alex"] == ("owen", "catalog")


def test_the_voice_map_file_is_checked_with_its_line(tmp_path: Path):
    (tmp_path / "voices.yml").write_text("auto: true\nAlex: Owen\nMara: 3\n")
    with pytest.raises(ConfigInvalid, match=r"voices.yml:3: speaker 'Mara' must map"):
        voice_map({"auto": True, "Alex": "Owen", "Mara": 3}, tmp_path, tmp_path)
    flat = voice_map({"Alex": "owen", "default": "nora", "auto": "false"}, tmp_path, tmp_path)
    assert flat == VoiceMap({"alex": "owen"}, "nora", False)
