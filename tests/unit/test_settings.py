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


@pytest.mark.parametrize(("env", "message"), [
    ({"ESL_PIPELINE_MANIFEST_STORE": "s3"}, "needs ESL_PIPELINE_MANIFEST_BUCKET"),
    ({"ESL_PIPELINE_MANIFEST_STORE": "redis"}, "ESL_PIPELINE_MANIFEST_STORE='redis' is not"),
    ({"S3_PRESIGN_SECONDS": "soon"},
     "S3_PRESIGN_SECONDS='soon' must be a whole number of seconds from 1 to 604800"),
    ({"S3_ADDRESSING_STYLE": "dns"}, "S3_ADDRESSING_STYLE='dns' is not one of"),
    ({"ESL_PIPELINE_CONFIG_PROVIDER": "http"}, "needs ESL_PIPELINE_CONFIG_ENDPOINT"),
    ({"ESL_PIPELINE_CONFIG_PROVIDER": "http", "ESL_PIPELINE_CONFIG_ENDPOINT": "ftp://x"},
     "must be an http"),
])
def test_wrong_store_storage_and_config_settings_are_named(tmp_path, env, message):
    with pytest.raises(ConfigInvalid, match=message):
        Settings.resolve(tmp_path, env=env)


def test_s3_manifest_store_and_remote_config_settings(tmp_path):
    settings = Settings.resolve(tmp_path, env={
        "ESL_PIPELINE_MANIFEST_STORE": "S3", "ESL_PIPELINE_MANIFEST_BUCKET": "m",
        "ESL_PIPELINE_MANIFEST_PREFIX": "/manifests/prod/", "ESL_PIPELINE_MANIFEST_ROOT": "..",
        "ESL_PIPELINE_CONFIG_PROVIDER": "remote", "ESL_PIPELINE_CONFIG_ENDPOINT": "https://c/x",
        "ESL_PIPELINE_CONFIG_TOKEN": "cfg-secret", "S3_PRESIGN_SECONDS": "600"})
    assert (settings.manifests.kind, settings.manifests.prefix) == ("s3", "manifests/prod")
    assert settings.manifests.root == tmp_path.parent
    assert settings.config.provider == "http" and "cfg-secret" not in repr(settings)
    assert settings.s3.presign_seconds == 600 and settings.s3.prefix == "audio"


def test_notion_and_s3_request_timeouts_are_settable_and_checked(tmp_path):
    settings = Settings.resolve(root=tmp_path, env={"NOTION_TIMEOUT_SECONDS": "2.5",
                                                    "S3_TIMEOUT_SECONDS": "4"})
    assert (settings.notion.timeout, settings.s3.timeout) == (2.5, 4.0)
    defaults = Settings.resolve(root=tmp_path, env={})
    assert (defaults.notion.timeout, defaults.s3.timeout) == (60.0, 60.0)
    for name in ("NOTION_TIMEOUT_SECONDS", "S3_TIMEOUT_SECONDS"):
        with pytest.raises(ConfigInvalid, match=name):
            Settings.resolve(root=tmp_path, env={name: "soon"})


@pytest.mark.parametrize(("name", "value", "message"), [
    ("NOTION_RATE_LIMIT", "0", "must be a number greater than 0"),
    ("NOTION_RETRY_DELAY", "-1", "must be a number of seconds greater than 0"),
    ("ESL_PIPELINE_LEASE_TTL", "nan", "must be a number of seconds greater than 0"),
    ("ESL_BUILD_MAX_CHARACTERS", "-3", "must be a whole number of at least 0"),
    ("ELEVENLABS_CONCURRENCY", "2.5", "must be a whole number from 1 to 64"),
    ("ELEVENLABS_SEED", "-1", "must be a whole number from 0 to 4294967295"),
    ("ELEVENLABS_TIMEOUT_SECONDS", "0", "must be a number of seconds from 0.01 to 3600"),
    ("ESL_BUILD_QUEUE_MAX_ATTEMPTS", "65", "must be a whole number from 1 to 64"),
    ("ESL_BUILD_QUEUE_BACKOFF", "inf", "must be a number of seconds from 0 to 86400"),
    ("S3_PRESIGN_SECONDS", "604801", "must be a whole number of seconds from 1 to 604800"),
])
def test_a_number_out_of_range_names_the_variable_its_value_and_the_range(
        tmp_path, name, value, message):
    with pytest.raises(ConfigInvalid, match=f"^{name}={value!r} {message}$"):
        Settings.resolve(tmp_path, env={name: value})


def test_numbers_at_their_bounds_are_taken_and_unset_ones_are_defaults(tmp_path):
    settings = Settings.resolve(tmp_path, env={
        "ELEVENLABS_SILENCE_TAIL_SECONDS": "0", "ESL_BUILD_QUEUE_MAX_ATTEMPTS": "64",
        "S3_PRESIGN_SECONDS": "604800", "ESL_BUILD_MAX_CHARACTERS": "0"})
    assert settings.elevenlabs.silence_tail == 0.0  # 0 is a value, not "unset"
    assert settings.queue.max_attempts == 64 and settings.s3.presign_seconds == 604800
    assert settings.max_characters == 0
    defaults = Settings.resolve(tmp_path, env={})
    assert (defaults.notion.rate, defaults.manifests.lease_ttl, defaults.queue.backoff,
            defaults.elevenlabs.concurrency, defaults.s3.presign_seconds) == (3.0, 60.0, 2.0,
                                                                           4, None)
