"""The project's configuration files, read once into a frozen ``Config`` snapshot.

``configs/presets.json``   preset name → {"h2": colour, "h3": colour, "toggleMap": {"h2": colour}}
``configs/students/*.json`` student profiles: {"student", "colorPreset", "accentPreference", ...}
``configs/voices.yml``     speaker → voice map for the real voice backend (``auto``, ``default``)

Every file is optional; a file that exists must be valid, and an invalid one is a
``ConfigInvalid`` naming the file and line. The stages consume this snapshot, never the files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esl_build import files, shapes
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


def _colour(value: Any) -> None:
    if not isinstance(value, str) or value not in NOTION_COLOURS:
        raise shapes.ShapeError(f"colour {value!r} is not a Notion colour (e.g. yellow, "
                                "yellow_background)")


# presets.json: name → {"h2": colour, "h3": colour, "toggleMap": {"h2": colour}}
_PRESETS = shapes.mapping(shapes.obj({}, {"toggleMap": shapes.obj({}, extra=_colour)},
                                     extra=_colour), what="preset name")
_OPTIONAL_TEXT = shapes.nullable(shapes.text())
# students/*.json: only these fields are read; the predecessor's others may be anything.
_STUDENT = shapes.obj({"student": shapes.text(pattern=r"(?s).*\S.*", what="a non-empty name")},
                      {"colorPreset": _OPTIONAL_TEXT, "accentPreference": _OPTIONAL_TEXT,
                       "dbId": _OPTIONAL_TEXT, "pageParentId": _OPTIONAL_TEXT},
                      extra=shapes.json_value())


def load_config(config_dir: Path, root: Path | None = None) -> Config:
    """Read and check the configuration folder (missing files are fine, broken ones are not).

    Every file is checked against its shape; a wrong one is a ``ConfigInvalid`` naming the
    file, the line and the field. Messages name files relative to ``root`` when given."""
    def shown(path: Path) -> str:
        return files.shown(path, root) if root else str(path)

    presets_file = config_dir / "presets.json"
    presets = _read_json(presets_file, {}, shown, _PRESETS)
    students: dict[str, dict[str, Any]] = {}
    students_dir = config_dir / "students"
    if students_dir.is_dir():
        for file in sorted(students_dir.glob("*.json")):
            profile = _read_json(file, None, shown, _STUDENT)
            students.setdefault(profile["student"].strip().lower(), profile)
    voices_file = config_dir / "voices.yml"
    voices = _read_voices(voices_file, shown(voices_file)) if voices_file.is_file() else {}
    return Config(presets=presets, students=students, voices=voices)


def _read_voices(file: Path, shown: str) -> dict[str, Any]:
    """voices.yml: a flat map of speaker (or ``auto``, ``default``) → voice id or name."""
    import yaml  # only when there is a voices file to read

    try:
        text = file.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except UnicodeDecodeError:
        raise ConfigInvalid("not UTF-8 text", path=shown, line=1) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigInvalid(f"invalid YAML: {getattr(exc, 'problem', exc)}", path=shown,
                            line=mark.line + 1 if mark else 1) from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise ConfigInvalid("must be a mapping of speaker → voice", path=shown,
                            line=root.start_mark.line + 1)
    # Checked as nodes, before anything is built: only flat `name: value` lines are allowed,
    # so no alias can make the file expand.
    for key, value in root.value:
        if not isinstance(key, yaml.ScalarNode) or not isinstance(value, yaml.ScalarNode):
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            raise ConfigInvalid(f"{name}: must be a voice id or name (one line: "
                                f"`{name}: <voice>`)", path=shown, line=key.start_mark.line + 1)
    loaded = yaml.safe_load(text)
    for key, value in loaded.items():
        line = _line_of(text, str(key), quoted=False)
        if not isinstance(key, str):
            raise ConfigInvalid(f"{key!r}: a speaker name must be text", path=shown, line=line)
        if key == "auto" and not (isinstance(value, bool) or value in ("true", "false")):
            raise ConfigInvalid("auto: must be true or false", path=shown, line=line)
        if key != "auto" and not isinstance(value, str):
            raise ConfigInvalid(f"{key}: must be a voice id or name (text)", path=shown,
                                line=line)
    return dict(loaded)


def _read_json(file: Path, default: Any, shown: Callable[[Path], str],
               shape: shapes.Shape) -> Any:
    """The JSON file checked against ``shape`` (``default`` when the file is missing)."""
    if not file.is_file():
        return default
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigInvalid(f"invalid JSON: {exc.msg}", path=shown(file),
                            line=exc.lineno) from None
    except UnicodeDecodeError:
        raise ConfigInvalid("not UTF-8 text", path=shown(file), line=1) from None
    except RecursionError:
        raise ConfigInvalid("nested too deeply", path=shown(file), line=1) from None
    try:
        shape(data)
    except shapes.ShapeError as error:
        line = _line_of(text, *error.field.split(".")) if error.field else 1
        raise ConfigInvalid(str(error), path=shown(file), line=line) from None
    return data


def _line_of(text: str, *keys: str, quoted: bool = True) -> int:
    """The line of ``"key"`` (or ``key:`` unquoted); with several keys, each one is looked
    for after the one before (a field's path). 1 when it can't be found."""
    at = 0
    for key in keys:
        found = text.find(json.dumps(key) if quoted else f"{key}:", at)
        if found < 0:
            break
        at = found
    return text.count("\n", 0, at) + 1
