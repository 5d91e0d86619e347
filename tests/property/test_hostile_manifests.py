"""Spoiled manifests, met by the real commands: ``esl-build build``, ``plan`` or ``status``
in-process, against the fake Notion and ElevenLabs, on a repository built before.

A lesson's ``lessons/<id>.manifest.json`` is truncated, gets a value of another type at any
of its fields, an unknown ``schemaVersion``, a path that leaves the repository (``../``,
absolute, a Windows or ``file:`` path), a huge number, or becomes a symlink to a file
outside the repository or to nothing. The command must then refuse it: exit 1 or 2, a
message naming the manifest (and the field, when one was changed), no traceback, nothing
sent, no file outside ``build/`` changed: never read it as empty, which would publish a
second page. Only a change that leaves a valid manifest may pass (a build then redoes what
it no longer matches), and the lesson keeps exactly one Notion page whatever happens.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hostile_harness import OUTSIDE, World
from hypothesis import event, given, settings
from hypothesis import strategies as st

SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats()
           | st.text(max_size=12))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
PATH_FIELDS = ("lessonJson", "mp3", "url", "src", "page", "key", "bucket", "source")
LEAVING = ("../outside.txt", "../../outside.txt", "/etc/passwd", "{outside}",
           "build/../../outside.txt", "lessons/../../outside.txt", "C:\\outside.txt",
           "\\\\server\\share\\x", "file:///etc/passwd", "build/%2e%2e/%2e%2e/outside.txt",
           "build/\x00/x", "~/outside.txt", "build//..//..//outside.txt", "..")
HUGE = ("1" + "0" * 400, "1e400", "-1e400", "-" + "9" * 5000, "NaN", "Infinity", "1e-400",
        "18446744073709551617")


def fields(doc: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every dotted field of the document (object keys only; arrays are leaves)."""
    found = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found.append((*prefix, key))
            found.extend(fields(value, (*prefix, key)))
    return found


def put(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


BY_TYPE: dict[type, st.SearchStrategy[Any]] = {
    type(None): st.none(), bool: st.booleans(), int: st.integers(-2**70, 2**70),
    float: st.floats(), str: st.text(max_size=12), list: st.lists(JSON, max_size=3),
    dict: st.dictionaries(st.text(max_size=8), JSON, max_size=3)}


def other_type(value: Any) -> st.SearchStrategy[Any]:
    """A JSON value of any type but ``value``'s."""
    return st.one_of([kind for t, kind in BY_TYPE.items() if t is not type(value)])


@st.composite
def spoiled(draw: st.DrawFn, world: World) -> tuple[str, str, bytes | None, str, bool]:
    """(lesson id, what was done, the manifest's bytes or None for a symlink, the field
    changed or "", whether it must be refused)."""
    lesson_id = draw(st.sampled_from(world.lessons))
    original = world.manifest(lesson_id)
    doc = json.loads(original)
    kind = draw(st.sampled_from(["truncated", "type", "schema", "leaving", "huge", "symlink",
                                 "dangling"]))
    if kind == "truncated":
        return lesson_id, kind, original[:draw(st.integers(0, len(original) - 3))], "", True
    if kind in ("symlink", "dangling"):
        return lesson_id, kind, None, "", True
    if kind == "schema":
        version = draw(st.integers(-3, 10**30).filter(lambda v: v not in (1, 2))
                       | st.sampled_from([2.0, "2", True, None, [2], {"v": 2}, 1.5]))
        doc["schemaVersion"] = version
        return lesson_id, kind, json.dumps(doc).encode(), "schemaVersion", True
    everywhere = fields(doc)
    if kind == "type":
        path = draw(st.sampled_from(everywhere))
        target: Any = doc
        for key in path:
            target = target[key]
        put(doc, path, draw(other_type(target)))
        return lesson_id, kind, json.dumps(doc).encode(), ".".join(path), False
    if kind == "leaving":
        paths = [p for p in everywhere if p[-1] in PATH_FIELDS]
        path = draw(st.sampled_from(paths))
        value = draw(st.sampled_from(LEAVING)).replace(
            "{outside}", str(Path("..") / ".." / OUTSIDE))
        put(doc, path, value)
        # A path among a stage's outputs is opened or written: it must stay inside. Elsewhere
        # (inputs, a page id) it is data, and a bucket is a name compared with the storage's:
        # a changed one makes the stage stale, no more.
        return lesson_id, kind, json.dumps(doc).encode(), ".".join(path), \
            "outputs" in path and path[-1] not in ("url", "source", "bucket")
    numbers = [p for p in everywhere if p[-1] in ("characters", "requests", "seconds", "lines",
                                                    "synthesized", "warnings", "schemaVersion")]
    path = draw(st.sampled_from(numbers))
    marker = "\u0000HUGE\u0000"
    put(doc, path, marker)
    text = json.dumps(doc).replace(json.dumps(marker), draw(st.sampled_from(HUGE)))
    return lesson_id, kind, text.encode(), ".".join(path), path[-1] == "schemaVersion"


@st.composite
def cases(draw: st.DrawFn, world: World) -> tuple[tuple[str, str, bytes | None, str, bool], str]:
    return draw(spoiled(world)), draw(st.sampled_from(["build", "build", "plan", "status"]))


def named(field: str) -> str:
    """A regex for a message naming ``field`` or a field around it (two levels at least)."""
    parts = field.split(".")
    prefixes = [".".join(parts[:n]) for n in range(len(parts), min(2, len(parts)) - 1, -1)]
    return "(" + "|".join(re.escape(p) for p in prefixes) + ")"


def test_every_kind_of_spoiling_is_drawn(small_world: World) -> None:
    """The strategies reach the fields they mean to (a manifest's shape could drift)."""
    doc = json.loads(small_world.manifest(small_world.lessons[0]))
    names = {path[-1] for path in fields(doc)}
    assert {"lessonJson", "mp3", "key", "bucket", "url", "source"} <= names
    assert {"characters", "requests", "seconds"} <= names


@settings(settings.get_profile("hostile"), max_examples=40)
@given(data=st.data())
def test_a_spoiled_manifest_is_refused_naming_it_and_its_field(small_world: World,
                                                               data: st.DataObject) -> None:
    world = small_world
    (lesson_id, kind, spoilt, field, must_refuse), command = data.draw(cases(world))
    with world.sandbox() as repo:
        manifest = repo / "lessons" / f"{lesson_id}.manifest.json"
        if spoilt is None:  # the manifest is a link to a file outside the repository, or none
            outside = repo.parent / OUTSIDE
            outside.write_bytes(manifest.read_bytes())
            manifest.unlink()
            manifest.symlink_to(outside if kind == "symlink" else repo.parent / "gone.json")
        else:
            manifest.write_bytes(spoilt)
        run = world.run(repo, command)
        event(f"{kind} {command}: exit {run.code}")
        run.assert_clean()
        assert world.pages_of(lesson_id) == 1, run.output
        if must_refuse or run.code != 0:
            where = rf"lessons/{re.escape(lesson_id)}\.manifest\.json"
            # A number Python's json can't read has no field to name: the file is named.
            about = f"({named(field)}|a number too long)" if kind == "huge" else named(field)
            run.assert_refused(naming=where + (f".*{about}" if field else ""))
