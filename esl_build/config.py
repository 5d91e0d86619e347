"""The project's configuration files, read once into a frozen ``Config`` snapshot.

``configs/presets.json``   preset name → {"h2": colour, "h3": colour, "toggleMap": {"h2": colour}}
``configs/students/*.json`` student profiles: {"student", "colorPreset", "accentPreference",
                           "dataSourceId", "dbId", "dbName" (the student's Notion target), ...}
``configs/voices.yml``     speaker → voice map for the real voice backend (``auto``, ``default``),
                           and ``max_characters``: the most characters a build may bill

Every file is optional; a file that exists must be valid, and an invalid one is a
``ConfigInvalid`` naming the file and line. The stages consume this snapshot, never the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esl_build import files, shapes
from esl_build.errors import ConfigInvalid

NOTION_COLOURS = frozenset(
    ["default"] + [c for base in ("gray", "brown", "orange", "yellow", "green", "blue", "purple",
                                  "pink", "red") for c in (base, f"{base}_background")])
DEFAULT_PRESET = "b1-default"
MAX_CHARACTERS = "max_characters"  # voices.yml's budget key (ESL_BUILD_MAX_CHARACTERS wins)


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

    def profile_of(self, student: str) -> dict[str, Any]:
        """The profile of ``student`` (any case), or {} when there is none."""
        return self.students.get(student.strip().lower(), {})


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
                       "dbId": _OPTIONAL_TEXT, "pageParentId": _OPTIONAL_TEXT,
                       "dataSourceId": _OPTIONAL_TEXT, "dbName": _OPTIONAL_TEXT,
                       # speaker (or "default") → voice id or name (the elevenlabs voice)
                       "voices": shapes.nullable(shapes.mapping(shapes.text(
                           pattern=r"(?s).*\S.*", what="a voice id or name")))},
                      extra=shapes.json_value())


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

    Every file is checked against its shape; a wrong one is a ``ConfigInvalid`` naming the
    file, the line and the field. Messages name files relative to ``root`` when given."""
    return parse_config(read_config_dir(config_dir, root))


def read_config_dir(config_dir: Path, root: Path | None = None) -> ConfigDocuments:
    """The documents of a configuration folder (``presets.json``, ``students/*.json``,
    ``voices.yml``); a file that is not there is no document."""
    def read(path: Path) -> ConfigDocument | None:
        if not path.is_file():
            return None
        name = files.shown(path, root) if root else str(path)
        try:
            return ConfigDocument(name, path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigInvalid("not UTF-8 text", path=name, line=1) from None

    students_dir = config_dir / "students"
    students = (tuple(doc for file in sorted(students_dir.glob("*.json"))
                      if (doc := read(file)) is not None)
                if students_dir.is_dir() else ())
    return ConfigDocuments(read(config_dir / "presets.json"), students,
                           read(config_dir / "voices.yml"))


def parse_config(documents: ConfigDocuments) -> Config:
    """Check the documents against their shapes and build the frozen ``Config``: the one
    path of every provider, so a file and a remote document get the same checks and
    messages (naming the file or URL, the line and the field)."""
    presets = _parse_json(documents.presets, _PRESETS) if documents.presets else {}
    students: dict[str, dict[str, Any]] = {}
    for doc in documents.students:
        loaded = _parse_json(doc, None)
        profiles = loaded if isinstance(loaded, list) else [loaded]
        for index, profile in enumerate(profiles):
            _check(doc, profile, _STUDENT, f"[{index}] " if isinstance(loaded, list) else "")
            students.setdefault(profile["student"].strip().lower(), profile)
    voices = _parse_voices(documents.voices) if documents.voices else {}
    return Config(presets=presets, students=students, voices=voices)


def _parse_voices(doc: ConfigDocument) -> dict[str, Any]:
    """voices.yml: a flat map of speaker (or ``auto``, ``default``) → voice id or name, and
    ``max_characters``: a whole number."""
    import yaml  # only when there is a voices document to read

    text, shown = doc.text, doc.name
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
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
        if key == MAX_CHARACTERS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigInvalid(f"{MAX_CHARACTERS}: must be a whole number of characters "
                                    f"(0 or more), not {value!r}", path=shown, line=line)
        elif key != "auto" and not isinstance(value, str):
            raise ConfigInvalid(f"{key}: must be a voice id or name (text)", path=shown,
                                line=line)
    return dict(loaded)


def _parse_json(doc: ConfigDocument, shape: shapes.Shape | None) -> Any:
    """The JSON document, checked against ``shape`` when given."""
    try:
        data = json.loads(doc.text)
    except json.JSONDecodeError as exc:
        raise ConfigInvalid(f"invalid JSON: {exc.msg}", path=doc.name,
                            line=exc.lineno) from None
    except RecursionError:
        raise ConfigInvalid("nested too deeply", path=doc.name, line=1) from None
    if shape is not None:
        _check(doc, data, shape)
    return data


def _check(doc: ConfigDocument, data: Any, shape: shapes.Shape, where: str = "") -> None:
    try:
        shape(data)
    except shapes.ShapeError as error:
        line = _line_of(doc.text, *error.field.split(".")) if error.field else 1
        raise ConfigInvalid(where + str(error), path=doc.name, line=line) from None


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
