"""Settings → services: picks each stage's backend. SDKs are imported only here, on demand."""

from __future__ import annotations

import sys
from collections.abc import Callable

from esl_build.config import Config
from esl_build.services.protocols import Publisher, Storage, Voice
from esl_build.settings import Settings

_LATER = ("is not part of this esl-build release yet; unset {cred} or set {var}={default} "
          "to use the embedded {default} backend")


def publisher_from(settings: Settings, config: Callable[[], Config] | None = None
                   ) -> Publisher:
    """The publisher; ``config`` gives the student profiles (a Notion target per student)."""
    if settings.publisher == "html":
        from esl_build.services.html import HtmlPublisher
        return HtmlPublisher(settings.site_dir, settings.root)
    from esl_build.services.notion import NotionPublisher
    return NotionPublisher(settings.notion, config=config)


def voice_from(settings: Settings, config: Config | None = None) -> Voice:
    """The voice backend: espeak (offline) or ElevenLabs (its SDK is imported only here)."""
    if settings.voice == "espeak":
        from esl_build.services.espeak import EspeakVoice
        return EspeakVoice()
    from esl_build.services.elevenlabs import ElevenLabsVoice
    return ElevenLabsVoice(settings.elevenlabs, config or Config(), settings.config_dir,
                           settings.root)


def storage_from(settings: Settings) -> Storage:
    if settings.storage == "local":
        from esl_build.services.local import LocalStorage
        return LocalStorage(settings.local_bucket, settings.root)
    from esl_build.services.s3 import S3Storage
    storage = S3Storage.from_settings(settings.s3)
    if storage.presign_seconds:
        print(f"esl-build: warning: S3_PRESIGN_SECONDS={storage.presign_seconds}: audio is "
              "linked by presigned URLs, which stop working in the page (Notion) after "
              f"{storage.presign_seconds} s; prefer a public bucket policy or "
              "S3_PUBLIC_BASE_URL", file=sys.stderr)
    return storage
