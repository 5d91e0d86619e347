"""The ElevenLabs voice catalog (``configs/elevenlabs.voices.json``) and the voice map
(``configs/voices.yml``), checked into typed values.

Catalog file::

    {"voices": [{"id": "…", "name": "Nora", "category": "premade",
                 "labels": {"gender": "female", "age": "young", "accent": "british",
                            "descriptive": "calm", "use_case": "narration"},
                 "preview_url": "https://…"}]}

``esl-build voices sync`` writes it from ``GET /v1/voices`` (``voice_id`` is accepted for
``id``). The voice map is flat (``default``, ``auto``, ``Speaker: voice``, and the build's
``max_characters``, which is no speaker; config.py checks its shape). A voice is an id or a
catalog name (any case). A malformed file is a ``ConfigInvalid`` naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esl_build import config as config_files
from esl_build import shapes
from esl_build.errors import ConfigInvalid
from esl_build.files import shown as shown_path
from esl_build.fingerprint import fingerprint

CATALOG_FILE = "elevenlabs.voices.json"
_RESERVED = ("default", "auto", config_files.MAX_CHARACTERS)


@dataclass(frozen=True)
class CatalogVoice:
    """One voice of the catalog; ``labels`` are lower-cased."""

    id: str
    name: str
    category: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def label(self, key: str) -> str:
        return self.labels.get(key, "")


@dataclass(frozen=True)
class Catalog:
    """The voices automatic picks choose from, in file order (ties go to the first)."""

    voices: tuple[CatalogVoice, ...] = ()
    digest: str = fingerprint([])

    def resolve(self, token: str) -> CatalogVoice | None:
        """The voice whose id is ``token``, else the first whose name matches (any case)."""
        for voice in self.voices:
            if voice.id == token:
                return voice
        wanted = token.casefold()
        return next((v for v in self.voices if v.name.casefold() == wanted), None)


@dataclass(frozen=True)
class VoiceMap:
    """``configs/voices.yml``: per-speaker voices, a default, and whether to pick by score."""

    speakers: Mapping[str, str] = field(default_factory=dict)  # casefolded name → token
    default: str | None = None
    auto: bool = True


def load_catalog(config_dir: Path, root: Path) -> Catalog:
    """Read the catalog (an absent file is an empty catalog: only mapped voices then work)."""
    path = config_dir / CATALOG_FILE
    shown = shown_path(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Catalog()
    except UnicodeDecodeError:
        raise ConfigInvalid("not UTF-8 text", path=shown, line=1) from None
    doc = config_files._parse_json(config_files.ConfigDocument(shown, text),
                                   shapes.json_object())
    entries = doc.get("voices") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ConfigInvalid('must be an object {"voices": [...]} (esl-build voices sync '
                            "writes it)", path=shown, line=1)
    voices = []
    for number, entry in enumerate(entries):
        voice_id = entry.get("id") or entry.get("voice_id") if isinstance(entry, dict) else None
        if not isinstance(voice_id, str) or not voice_id or not isinstance(entry.get("name"),
                                                                           str):
            line = config_files._line_of(text, voice_id) if isinstance(voice_id, str) else 1
            raise ConfigInvalid(f"voices[{number}] needs a string id and name", path=shown,
                                line=line)
        labels = entry.get("labels") or {}
        if not isinstance(labels, dict):
            raise ConfigInvalid(f"voices[{number}].labels must be an object", path=shown,
                                line=config_files._line_of(text, voice_id))
        voices.append(CatalogVoice(voice_id, entry["name"], entry.get("category"),
                                   {str(k): str(v).strip().lower() for k, v in labels.items()
                                    if isinstance(v, str)}))
    return Catalog(tuple(voices), fingerprint([[v.id, v.name, v.category, dict(v.labels)]
                                               for v in voices]))


def catalog_bytes(voices: list[dict[str, Any]]) -> bytes:
    """The catalog file for voices as ``GET /v1/voices`` lists them (sorted by name, so a
    sync that changes nothing rewrites nothing)."""
    entries = [{"id": v["voice_id"], "name": v.get("name") or v["voice_id"],
                "category": v.get("category"), "labels": v.get("labels") or {},
                "preview_url": v.get("preview_url")} for v in voices]
    entries.sort(key=lambda e: (str(e["name"]).casefold(), e["id"]))
    return (json.dumps({"voices": entries}, indent=2, ensure_ascii=False) + "\n").encode()


def voice_map(raw: Mapping[str, Any], config_dir: Path, root: Path) -> VoiceMap:
    """Check the loaded ``voices.yml`` mapping; errors name the file and the key's line."""
    path = config_dir / "voices.yml"
    shown = shown_path(path, root)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""

    def problem(key: str, message: str) -> ConfigInvalid:
        at = text.find(f"{key}:")
        return ConfigInvalid(message, path=shown, line=text.count("\n", 0, at) + 1 if at >= 0
                             else 1)

    auto = raw.get("auto", True)
    if isinstance(auto, str) and auto.strip().lower() in ("true", "false"):
        auto = auto.strip().lower() == "true"
    if not isinstance(auto, bool):
        raise problem("auto", f"auto must be true or false, not {auto!r}")
    default = raw.get("default")
    if default is not None and not (isinstance(default, str) and default.strip()):
        raise problem("default", "default must be a voice id or catalog voice name")
    speakers: dict[str, str] = {}
    for name, token in raw.items():
        if name in _RESERVED:
            continue
        if not isinstance(token, str) or not token.strip():
            raise problem(str(name), f"speaker {name!r} must map to a voice id or catalog "
                          "voice name")
        speakers[str(name).strip().casefold()] = token.strip()
    return VoiceMap(speakers, default.strip() if default else None, auto)


def student_voices(profile: Mapping[str, Any], where: str) -> dict[str, str]:
    """A student profile's ``voices`` map (casefolded speaker → token; ``default`` kept)."""
    voices = profile.get("voices") or {}
    if not isinstance(voices, dict) or not all(
            isinstance(v, str) and v.strip() for v in voices.values()):
        raise ConfigInvalid('"voices" must map speaker names to voice ids or names',
                            path=where, line=1)
    return {str(k).strip().casefold(): v.strip() for k, v in voices.items()}
