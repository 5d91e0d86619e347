"""Settings: backends chosen by variables or credentials; secrets never show."""

from __future__ import annotations

import pytest

from esl_build.errors import ConfigInvalid
from esl_build.settings import Secret, Settings


def test_embedded_defaults_without_credentials(tmp_path):
    settings = Settings.resolve(tmp_path, env={})
    assert (settings.publisher, settings.voice, settings.storage) == ("html", "espeak", "local")
    assert settings.lessons_dir == tmp_path / "lessons"
    assert settings.local_bucket == tmp_path / "build" / "bucket"


def test_credentials_select_the_real_services_and_variables_override(tmp_path):
    env = {"NOTION_TOKEN": "ntn_secret", "ELEVENLABS_API_KEY": "xi", "S3_BUCKET": "b"}
    settings = Settings.resolve(tmp_path, env=env)
    assert (settings.publisher, settings.voice, settings.storage) == ("notion", "elevenlabs",
                                                                     "s3")
    forced = Settings.resolve(tmp_path, env={**env, "ESL_BUILD_PUBLISHER": "HTML"})
    assert forced.publisher == "html"


def test_an_unknown_backend_is_a_config_error(tmp_path):
    with pytest.raises(ConfigInvalid, match="ESL_BUILD_VOICE='polly' is not one of"):
        Settings.resolve(tmp_path, env={"ESL_BUILD_VOICE": "polly"})


def test_secrets_never_show_themselves(tmp_path):
    settings = Settings.resolve(tmp_path, env={"NOTION_TOKEN": "ntn_very_secret"})
    assert "ntn_very_secret" not in repr(settings) and "ntn_very_secret" not in str(settings)
    assert settings.notion.token == Secret("ntn_very_secret")
    assert settings.notion.token.reveal() == "ntn_very_secret"
