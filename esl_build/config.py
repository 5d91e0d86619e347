"""The project's configuration files, read once into a frozen ``Config`` snapshot.

``configs/presets.json``   preset name → {"h2": colour, "h3": colour, "toggleMap": {"h2": colour}}
``configs/students/*.json`` student profiles: {"student", "colorPreset", "accentPreference", ...}
``configs/voices.yml``     speaker → voice map for the real voice backend (``auto``, ``default``)

Every file is optional; a file that exists must be valid, and an invalid one is a
``ConfigInvalid`` naming the file and line. The stages consume this snapshot, never the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esl_build import files
from esl_build.errors import ConfigInvalid

NOTION_COLOURS = frozenset(
    ["default"] + [c for base in ("gray", "brown", "orange", "yellow", "green", "blue", "purple",
                                  "pink", "red") for c in (base, f"{base}_background")])
DEFAULT_PRESET = "b1-default"


@dataclass(frozen=True)
class Config:
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    students: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-cased name → profile
    voices: dict[str, Any] = field(default_factory=dict)

    def preset_for(self, student: str) -> tuple[str | None, dict[str, Any]]:
        """The colour preset of a lesson: its student's profile, else ``Default``, else
        ``b1-default`` when defined, else none."""
        for key in (student.strip().lower(), "default"):
            name = self.students.get(key, {}).get("colorPreset")
            if name:
                if name not in self.presets:
                    raise ConfigInvalid(f"student profile {key!r} uses unknown preset {name!r}; "
                                        f"known presets: {', '.join(sorted(self.presets)) or '-'}")
                return name, self.presets[name]
        if DEFAULT_PRESET in self.presets:
            return DEFAULT_PRESET, self.presets[DEFAULT_PRESET]
        return None, {}


@dataclass(frozen=True)
class ConfigDocument:
    """One configuration document as read: its text and how messages name it (a path
    relative to the project, or the URL it came from)."""

    name: str
    text: str


@dataclass(frozen=True)
class ConfigDocuments:
    """What a ``ConfigProvider`` returns: the raw documents, not yet checked.

    ``students`` holds one document per profile file (a JSON object each) or one document
    holding a JSON array of profiles (the http provider's ``students.json``)."""

    presets: ConfigDocument | None = None
    students: tuple[ConfigDocument, ...] = ()
    voices: ConfigDocument | None = None


def load_config(config_dir: Path, root: Path | None = None) -> Config:
    """Read and check the configuration folder (missing files are fine, broken ones are not).

    Messages name files relative to ``root`` (the project) when given."""
    return parse_config(read_config_dir(config_dir, root))


def read_config_dir(config_dir: Path, root: Path | None = None) -> ConfigDocuments:
    """The documents of a configuration folder (``presets.json``, ``students/*.json``,
    ``voices.yml``); a file that is not there is no document."""
    def shown(path: Path) -> str:
        return files.shown(path, root) if root else str(path)

    def read(path: Path) -> ConfigDocument | None:
        if not path.is_file():
            return None
        try:
            return ConfigDocument(shown(path), path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigInvalid("not UTF-8 text", path=shown(path), line=1) from None

    students_dir = config_dir / "students"
    students = (tuple(doc for file in sorted(students_dir.glob("*.json"))
                      if (doc := read(file)) is not None)
                if students_dir.is_dir() else ())
    return ConfigDocuments(read(config_dir / "presets.json"), students,
                           read(config_dir / "voices.yml"))


def parse_config(documents: ConfigDocuments) -> Config:
    """Check the documents and build the frozen ``Config`` (every provider's one path).

    An invalid document is a ``ConfigInvalid`` naming it (file or URL) and the line."""
    presets: dict[str, dict[str, Any]] = {}
    if documents.presets is not None:
        doc = documents.presets
        loaded = _parse_json(doc)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigInvalid("must be an object of preset name → colours", path=doc.name,
                                line=1)
        for name, preset in loaded.items():
            problem = _preset_problem(name, preset)
            if problem:
                raise ConfigInvalid(problem, path=doc.name, line=_line_of(doc.text, name))
        presets = loaded
    students: dict[str, dict[str, Any]] = {}
    for doc in documents.students:
        loaded = _parse_json(doc)
        for profile in loaded if isinstance(loaded, list) else [loaded]:
            if not isinstance(profile, dict) or not str(profile.get("student") or "").strip():
                raise ConfigInvalid('a student profile needs a non-empty "student" name',
                                    path=doc.name, line=1)
            students.setdefault(str(profile["student"]).strip().lower(), profile)
    voices: dict[str, Any] = {}
    if documents.voices is not None:
        import yaml  # only when there is a voices document to read

        doc = documents.voices
        try:
            loaded = yaml.safe_load(doc.text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigInvalid(f"invalid YAML: {getattr(exc, 'problem', exc)}",
                                path=doc.name, line=mark.line + 1 if mark else 1) from None
        if not isinstance(loaded, dict):
            raise ConfigInvalid("must be a mapping of speaker → voice", path=doc.name, line=1)
        voices = loaded
    return Config(presets=presets, students=students, voices=voices)


def _parse_json(doc: ConfigDocument) -> Any:
    try:
        return json.loads(doc.text)
    except json.JSONDecodeError as exc:
        raise ConfigInvalid(f"invalid JSON: {exc.msg}", path=doc.name,
                            line=exc.lineno) from None


def _line_of(text: str, key: str) -> int:
    """The line where ``"key"`` first appears (1 when it can't be found)."""
    at = text.find(json.dumps(key))
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def _preset_problem(name: str, preset: object) -> str | None:
    if not isinstance(preset, dict):
        return f"preset {name!r} must be an object like {{\"h2\": \"yellow_background\"}}"
    colours = {k: v for k, v in preset.items() if k != "toggleMap"}
    colours.update({f"toggleMap.{k}": v for k, v in (preset.get("toggleMap") or {}).items()})
    for key, colour in colours.items():
        if colour not in NOTION_COLOURS:
            return (f"preset {name!r}: {key} colour {colour!r} is not a Notion colour "
                    "(e.g. yellow, yellow_background)")
    return None
