"""Spoiled configuration files, built for real: ``esl-build build`` in-process against the
fake Notion and ElevenLabs, on a repository whose every lesson was built before.

The presets (``configs/presets.json``), the voices (``configs/voices.yml``) and the student
profiles (``configs/students/*.json``) get values of random JSON/YAML types where their
fields are, unknown keys, aliases, truncation, or a whole random document. The build must
then succeed (a valid configuration) or refuse it: a message naming the file and its line,
no traceback, nothing sent, no manifest or other file changed.
"""

from __future__ import annotations

import json
import re

import yaml
from hostile_harness import World
from hypothesis import event, given, settings
from hypothesis import strategies as st

SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=False) | st.text(max_size=12))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
FILES = ("configs/presets.json", "configs/voices.yml", "configs/students/priya.json",
         "configs/students/default.json")
# YAML that expands, refers, or is of a type a voice map has no place for.
YAML_TRICKS = ("a: &x [1, 2]\nb: *x\n", "Noor: &v fake-voice-nora-0001\nTomas: *v\n",
               "<<: {Noor: x}\n", "? [a, b]\n: c\n", "Noor: !!binary aGk=\n",
               "Noor: !!python/name:os.system\n", "- Noor\n- Tomas\n", "Noor:\n  - x\n",
               "auto: maybe\n", "auto: 1\n", "1: fake-voice-nora-0001\n", "null: x\n",
               "Noor: {a: b}\n", "%TAG ! tag:x,2026:\n---\nNoor: !x y\n", "---\n---\n",
               "Noor: x\nNoor: y\n", "'Noor: x\n", "\t- :", "Noor: " + "[" * 5000 + "\n")


def dumps(path: str, value: object) -> str:
    if path.endswith(".yml"):
        return yaml.safe_dump(value, allow_unicode=True)
    return json.dumps(value, indent=2, ensure_ascii=False)


@st.composite
def spoiled(draw: st.DrawFn) -> tuple[str, str, str]:
    """(file, what was done, the file's new text)."""
    path = draw(st.sampled_from(FILES))
    original = World.base_file(path)
    kind = draw(st.sampled_from(["field", "unknown-key", "document", "truncated", "trick"]
                                if path.endswith(".yml") else
                                ["field", "unknown-key", "document", "truncated"]))
    if kind == "document":
        return path, kind, dumps(path, draw(JSON))
    if kind == "truncated":
        return path, kind, original[:draw(st.integers(0, max(0, len(original) - 2)))]
    if kind == "trick":
        return path, kind, draw(st.sampled_from(YAML_TRICKS))
    doc = (yaml.safe_load(original) if path.endswith(".yml") else json.loads(original)) or {}
    target = doc
    while isinstance(target, dict) and target and draw(st.booleans()):
        inner = target[draw(st.sampled_from(sorted(target)))]
        if not isinstance(inner, dict) or not inner:
            break
        target = inner
    if kind == "field" and target:
        target[draw(st.sampled_from(sorted(target)))] = draw(JSON)
    else:
        target[draw(st.text(min_size=1, max_size=10))] = draw(JSON)
    return path, kind, dumps(path, doc)


@settings(settings.get_profile("hostile"), max_examples=30)
@given(case=spoiled())
def test_a_spoiled_config_is_used_or_refused_naming_its_file_and_line(
        small_world: World, case: tuple[str, str, str]) -> None:
    path, kind, text = case
    world = small_world
    with world.sandbox() as repo:
        (repo / path).write_text(text, "utf-8")
        run = world.run(repo, "build")
        event(f"{path} {kind}: exit {run.code}")
        run.assert_clean()
        if run.code == 2:  # refused before any task ran
            run.assert_refused(codes=(2,), naming=rf"{re.escape(path)}:\d+")
        assert all(world.pages_of(lesson_id) == 1 for lesson_id in world.lessons), run.output
