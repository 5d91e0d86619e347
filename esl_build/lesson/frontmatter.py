"""The YAML frontmatter → ``Frontmatter``, every problem at the line of its key.

YAML is read with the safe loader only. The document is composed once into nodes (which know
their lines) and constructed from those nodes, so there is a single parse.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import yaml

from esl_build.errors import Problem
from esl_build.lesson.emoji import is_single_emoji
from esl_build.lesson.envelope import Line
from esl_build.lesson.model import Frontmatter, SpeakerProfile

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
REQUIRED = ("title", "student", "level", "topic", "input_type")
OPTIONAL = ("speaker_labels", "speaker_profiles", "icon", "cover", "properties")
INPUT_TYPES = ("generate", "authentic")
PROFILE_KEYS = ("id", "display_name", "role", "gender", "age", "accent", "style", "voice")
_URL = re.compile(r"^https?://\S+$")
_YAML_BREAKS = {0x85: " ", 0x2028: " ", 0x2029: " "}


class _Checker:
    def __init__(self, path: str, base: int):
        self.path, self.base = path, base
        self.problems: list[Problem] = []
        self.lines: dict[str, int] = {}

    def add(self, line: int, severity: str, message: str) -> None:
        self.problems.append(Problem(self.path, line, severity, message))  # type: ignore[arg-type]

    def line_of(self, node: yaml.Node) -> int:
        return self.base + node.start_mark.line


def parse_frontmatter(lines: list[Line] | None, opener_line: int, path: str
                      ) -> tuple[Frontmatter, list[Problem]]:
    """Type-check the frontmatter. ``lines`` is None when the envelope found none."""
    if lines is None:
        return _empty(), []  # the envelope has already reported why
    base = lines[0][0] if lines else opener_line + 1
    checker = _Checker(path, base)
    # YAML also breaks lines at NEL, LS and PS; as spaces they keep its line numbers ours.
    text = "\n".join(text for _, text in lines).translate(_YAML_BREAKS)
    node, data = _load(text, checker, opener_line)
    if node is None:
        return _empty(), checker.problems
    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        checker.add(opener_line, "error",
                    "the frontmatter must be a list of `key: value` lines (title, student, level, "
                    "topic, input_type)")
        return _empty(), checker.problems
    values: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
        checker.lines[key] = checker.line_of(key_node)
        values[key] = (value_node, data.get(key))
    for key in REQUIRED:
        if key not in values:
            checker.add(opener_line, "error",
                        f"frontmatter key `{key}` is missing; add `{key}: …` to the frontmatter")
    for key in values:
        if key not in REQUIRED and key not in OPTIONAL:
            checker.add(checker.lines[key], "warning",
                        f"unknown frontmatter key `{key}` is ignored; known keys are "
                        f"{', '.join(REQUIRED + OPTIONAL)}")
    return _build(values, checker), checker.problems


def _load(text: str, checker: _Checker, opener_line: int) -> tuple[yaml.Node | None, Any]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        shared = _shared_node(node)
        if shared is not None:
            # An alias makes one node stand for many: nine of them over seven levels turn
            # 9 KB of frontmatter into 150 MB of lesson.json. A lesson never needs one.
            checker.add(checker.line_of(shared), "error", "the frontmatter uses a YAML anchor "
                        "(&name) with an alias (*name or <<: *name); write the value out "
                        "where it is needed instead")
            return None, None
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "invalid YAML"
        context = str(exc.context or "")
        unfinished = "flow" in context or "quoted" in context or "end of stream" in reason
        if exc.context_mark is not None and unfinished:
            # An unfinished quote, [list] or {map}: name the line where it began.
            mark = exc.context_mark
            reason = ("this quoted value has no closing quote" if "quoted" in context
                      else f"this {'[list]' if 'sequence' in context else '{map}'} is not "
                      "closed properly" if "flow" in context else f"{context}: {reason}")
        line = checker.base + mark.line if mark is not None else opener_line
        checker.add(line, "error", f"the frontmatter is not valid YAML: {reason}; check the "
                    "quotes, colons and indentation on this line (quote values that contain `: `)")
        return None, None
    except yaml.reader.ReaderError as exc:
        line = checker.base + text.count("\n", 0, exc.position)
        checker.add(line, "error", f"the frontmatter holds a character YAML does not allow "
                    f"(#x{exc.character:04x}); delete it")
        return None, None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        checker.add(opener_line, "error", f"the frontmatter is not valid YAML: {exc}")
        return None, None
    finally:
        loader.dispose()
    if node is None:
        checker.add(opener_line, "error",
                    "the frontmatter is empty; add title, student, level, topic and input_type")
    return node, data


def _shared_node(root: yaml.Node | None) -> yaml.Node | None:
    """The first node reached twice (the target of an alias), or None. Each node is visited
    once, so even a self-referencing anchor costs no more than the text it came from."""
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return node
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            stack.extend(item for pair in reversed(node.value) for item in reversed(pair))
    return None


def _build(values: dict[str, tuple[yaml.Node, Any]], checker: _Checker) -> Frontmatter:
    def text(key: str, *, required: bool) -> str | None:
        if key not in values:
            return "" if required else None
        node, value = values[key]
        line = checker.line_of(node)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if value is None or value == "":
            if required:
                checker.add(line, "error", f"`{key}` is empty; give it a value")
            return "" if required else None
        if isinstance(value, (int, float, dt.date)) and not isinstance(value, bool):
            checker.add(line, "error",
                        f"`{key}` must be text, not {_kind(value)}; put it in quotes: "
                        f"{key}: \"{value}\"")
        else:
            checker.add(line, "error", f"`{key}` must be text, not {_kind(value)}")
        return "" if required else None

    title = text("title", required=True) or ""
    student = text("student", required=True) or ""
    level = text("level", required=True) or ""
    input_type = text("input_type", required=True) or ""
    if input_type and input_type not in INPUT_TYPES:
        checker.add(checker.lines["input_type"], "warning",
                    f"input_type `{input_type}` is not one of: {', '.join(INPUT_TYPES)}; "
                    "use generate for a text written for the lesson, authentic for a real one")
    icon = text("icon", required=False)
    if icon is not None and not is_single_emoji(icon):
        checker.add(checker.lines["icon"], "error",
                    f"icon `{icon}` must be one emoji, e.g. icon: 🎯")
        icon = None
    cover = text("cover", required=False)
    if cover is not None and not _URL.match(cover):
        checker.add(checker.lines["cover"], "error",
                    f"cover `{cover}` must be an https:// URL of an image")
        cover = None
    return Frontmatter(
        title=title, student=student, level=level, topic=_topic(values, checker),
        input_type=input_type, speaker_labels=_labels(values, checker),
        speaker_profiles=_profiles(values, checker), icon=icon, cover=cover,
        properties=_properties(values, checker), lines=dict(checker.lines))


def _topic(values: dict[str, tuple[yaml.Node, Any]], checker: _Checker) -> tuple[str, ...]:
    if "topic" not in values:
        return ()
    node, value = values["topic"]
    if isinstance(value, str) and value.strip():
        return (value.strip(),)
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    if value is None or value == "" or value == []:
        checker.add(checker.line_of(node), "error", "`topic` is empty; give it a value")
    else:
        checker.add(checker.line_of(node), "error",
                    "`topic` must be text or a list of texts, e.g. topic: [travel, food]")
    return ()


def _labels(values: dict[str, tuple[yaml.Node, Any]], checker: _Checker) -> tuple[str, ...]:
    if "speaker_labels" not in values:
        return ()
    node, value = values["speaker_labels"]
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(dict.fromkeys(v.strip() for v in value))
    checker.add(checker.line_of(node), "error",
                "`speaker_labels` must be a list of names, e.g. speaker_labels: [Alex, Mara]")
    return ()


def _profiles(values: dict[str, tuple[yaml.Node, Any]], checker: _Checker
              ) -> tuple[SpeakerProfile, ...]:
    if "speaker_profiles" not in values:
        return ()
    node, value = values["speaker_profiles"]
    if value is None:
        return ()
    if not isinstance(value, list) or not isinstance(node, yaml.SequenceNode):
        checker.add(checker.line_of(node), "error",
                    "`speaker_profiles` must be a list of entries, each starting with `- id: Name`")
        return ()
    profiles: list[SpeakerProfile] = []
    for item_node, item in zip(node.value, value, strict=False):
        line = checker.line_of(item_node)
        if not isinstance(item, dict):
            checker.add(line, "error", "each speaker_profiles entry must be a map like "
                        "`- id: Alex` with optional display_name, role, gender, age, accent, style")
            continue
        fields: dict[str, str | None] = {}
        for key, raw in item.items():
            if key not in PROFILE_KEYS:
                checker.add(line, "warning", f"unknown speaker_profiles key `{key}` is ignored; "
                            f"known keys are {', '.join(PROFILE_KEYS)}")
            elif raw is None or isinstance(raw, str):
                fields[key] = raw.strip() if isinstance(raw, str) else None
            else:
                checker.add(line, "error", f"speaker_profiles `{key}` must be text, not "
                            f"{_kind(raw)}")
        if not fields.get("id"):
            checker.add(line, "error", "a speaker_profiles entry has no `id`; add `id: Name`")
            continue
        profiles.append(SpeakerProfile(**fields))  # type: ignore[arg-type]
    return tuple(profiles)


def _properties(values: dict[str, tuple[yaml.Node, Any]], checker: _Checker) -> dict[str, Any]:
    if "properties" not in values:
        return {}
    node, value = values["properties"]
    if value is None:
        return {}
    if not isinstance(value, dict):
        checker.add(checker.line_of(node), "error",
                    "`properties` must be a map of Notion property names to values")
        return {}
    return {str(key): _json_safe(item) for key, item in value.items()}


def _json_safe(value: Any) -> Any:
    """YAML values as JSON values: dates become ISO text, keys become text."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_json_safe(item) for item in value), key=repr)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN has no JSON form
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, (dt.date, dt.datetime)):
        return f"a date ({value})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return type(value).__name__


def _empty() -> Frontmatter:
    return Frontmatter(title="", student="", level="", topic=(), input_type="")
