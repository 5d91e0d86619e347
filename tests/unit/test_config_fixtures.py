"""Configuration folders in the predecessor's format (``tests/fixtures/configs``: student
profiles with ``dbId``, ``pageParentId``, ``accentPreference`` and ``voices``) load, and a
lesson's student picks its colour preset."""

from __future__ import annotations

from pathlib import Path

from esl_build.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "configs"


def test_a_student_profile_picks_its_preset_whatever_the_case_of_the_name() -> None:
    config = load_config(CONFIGS)
    assert config.preset_for("Priya") == ("calm-blue", config.presets["calm-blue"])
    assert config.preset_for("  priya ")[0] == "calm-blue"


def test_a_student_without_a_profile_gets_the_default_profile_preset() -> None:
    assert load_config(CONFIGS).preset_for("Дмитрий")[0] == "b1-default"


def test_the_predecessor_profile_keys_are_kept_as_read() -> None:
    profile = load_config(CONFIGS).students["priya"]
    assert profile["accentPreference"] == "british" and profile["voices"]["Noor"]
