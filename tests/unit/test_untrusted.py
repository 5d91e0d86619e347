"""Untrusted input, without subprocesses: the manifest shape agrees with its JSON Schema on every
hostile case of ``tests/hostile/``, frontmatter aliases are refused, temp files don't pile up,
lesson names are checked, configs are checked by shape."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from esl_build import shapes
from esl_build.config import load_config
from esl_build.errors import ConfigInvalid, ManifestCorrupt
from esl_build.files import atomic_write
from esl_build.lesson import parse_lesson
from esl_build.lesson.discovery import find_lessons, lesson_id_problem
from esl_build.state import manifest as mf
from esl_build.state.stores import FileManifestStore
from esl_build.testing.repo import lesson_text

REPO = Path(__file__).resolve().parents[2]
SCHEMA = jsonschema.Draft202012Validator(
    json.loads((REPO / "esl_build/schemas/manifest.schema.json").read_text("utf-8")))
HOSTILE = REPO / "tests" / "hostile"
WHERE = "lessons/unit1.manifest.json"
# What JSON Schema can't say: where the build folder is (a path outside it), nesting depth.
BEYOND_SCHEMA = {"tts-mp3-over-the-lesson", "inputs-nested-deeply", "import-url-absolute",
                 "add-audio-page-absolute", "upload-url-file-outside-bucket"}
H = "0" * 64


def built_manifest() -> dict[str, Any]:
    """A manifest as a build with the embedded backends writes it."""
    doc = mf.new_manifest("unit1", "lessons/unit1.md")
    outputs = {
        "validate": {"lessonJson": "build/unit1/lesson.json", "sha256": H,
                     "pageDigest": "sha256:" + H, "speechDigest": "sha256:" + H,
                     "title": "T", "student": "Anna", "level": "A2", "topic": "x",
                     "warnings": 0},
        "import": {"pageId": "html:unit1", "url": "build/site/unit1.html", "sha256": H},
        "tts": {"mp3": "build/unit1/audio.mp3", "sha256": H, "seconds": 3.5, "lines": 3,
                "synthesized": 3, "voices": {"Alex": "en-us+m1"}},
        "upload": {"bucket": "build/bucket", "key": "audio/unit1/0000.mp3", "etag": '"x"',
                   "url": "build/bucket/audio/unit1/0000.mp3"},
        "add-audio": {"blockId": "esl-build-audio", "url": "build/bucket/audio/unit1/0000.mp3",
                      "src": "build/site/audio/unit1/0000.mp3", "page": "build/site/unit1.html",
                      "sha256": H},
    }
    for stage, out in outputs.items():
        mf.record_stage(doc, stage=stage, backend="x", remote=False, fingerprint="sha256:" + H,
                        inputs={"a": 1}, outputs=out, cost={"characters": 0, "requests": 0},
                        run_id="r-1")
        doc["doit"][f"{stage}:unit1"] = {"_values_:": {}, "checker:": "MD5Checker", "deps:": []}
    return doc


def hostile_manifests() -> list[tuple[str, bytes, str]]:
    """(case, manifest bytes, expected fragment) for every manifest case of tests/hostile."""
    found = []
    for case in sorted(HOSTILE.iterdir()):
        spec = json.loads((case / "case.json").read_text("utf-8"))
        raw = case / "files" / WHERE
        if raw.is_file():
            data = raw.read_bytes()
        elif spec.get("manifest"):
            doc = built_manifest()
            for dotted, value in spec["manifest"].items():
                *parents, last = dotted.split(".")
                target = doc
                for key in parents:
                    target = target.setdefault(key, {})
                if value == "$delete":
                    del target[last]
                else:
                    target[last] = "/elsewhere/outside.txt" if value == "{outside}" else value
            data = mf.dumps(doc)
        else:
            continue
        found.append((case.name, data, spec["expect"][0]))
    return found


def test_a_built_manifest_fits_its_shape_and_its_schema():
    data = mf.dumps(built_manifest())
    SCHEMA.validate(mf.loads(data, where=WHERE, lesson_id="unit1", source="lessons/unit1.md"))


@pytest.mark.parametrize(("case", "data", "expected"), hostile_manifests(),
                         ids=[case for case, _, _ in hostile_manifests()])
def test_a_hostile_manifest_is_refused_by_shape_and_schema(case, data, expected):
    with pytest.raises(ManifestCorrupt) as caught:
        mf.loads(data, where=WHERE, lesson_id="unit1", source="lessons/unit1.md")
    assert expected.split(": ", 1)[-1] in str(caught.value)
    assert str(caught.value).startswith(WHERE)
    if case not in BEYOND_SCHEMA:
        try:
            doc = json.loads(data)
        except RecursionError:
            return  # no JSON parser reads it: nothing for the schema to say
        if doc.get("schemaVersion") == 2:
            with pytest.raises(jsonschema.ValidationError):
                SCHEMA.validate(doc)


def test_paths_may_point_into_a_build_folder_outside_the_project():
    places = mf.Places(root="/p", build="/elsewhere/build", bucket="/p/build/bucket")
    outside = mf.dumps(built_manifest()).replace(b'"build/site', b'"/elsewhere/build/site')
    mf.loads(outside.replace(b'"build/unit1', b'"/elsewhere/build/unit1'), where=WHERE,
             lesson_id="unit1", source="s", places=places)
    with pytest.raises(ManifestCorrupt, match=r": must name a file inside /elsewhere/build/"
                                              r"(, not| or be an http\(s\) URL, not) 'build/"):
        mf.loads(outside, where=WHERE, lesson_id="unit1", source="s", places=places)


def test_shape_errors_name_the_dotted_field():
    shape = shapes.obj({"a": shapes.obj({"b": shapes.integer(minimum=0)})})
    with pytest.raises(shapes.ShapeError, match=r"^a\.b: must be at least 0$"):
        shape({"a": {"b": -1}})
    with pytest.raises(shapes.ShapeError, match=r"^a\.b: must be an integer$"):
        shape({"a": {"b": True}})
    with pytest.raises(shapes.ShapeError, match=r"^x: is not a known field$"):
        shape({"a": {"b": 1}, "x": 1})


@pytest.mark.parametrize(("yaml", "line"), [
    ("  a: &a x\n  b: *a\n", 9),                    # a scalar alias
    ("  base: &b {k: v}\n  other:\n    <<: *b\n", 9),  # a merge key
    ("  loop: &l [*l]\n", 9),                       # an anchor that contains itself
])
def test_frontmatter_aliases_are_refused_at_the_anchor(yaml, line):
    text = lesson_text().replace("---\n\n## 1.", f"properties:\n{yaml}---\n\n## 1.", 1)
    lesson, problems = parse_lesson(text, path="lessons/u.md", lesson_id="u")
    errors = [p for p in problems if p.is_error]
    assert lesson is None or errors
    assert [(p.line, "YAML anchor" in p.message) for p in errors] == [(line, True)]


@pytest.mark.parametrize("lesson_id", ["..", ".", "", "a/../b", "a//b", ".hidden", "a/.b",
                                       "a\\b", "a\x07b", "a\nb"])
def test_lesson_ids_that_are_not_plain_relative_paths_are_refused(lesson_id):
    assert lesson_id_problem(lesson_id)


def test_plain_lesson_ids_are_fine():
    assert lesson_id_problem("b1/unit-1 (new)") is None


def test_discovery_reports_odd_files_and_skips_hidden_and_build_folders(tmp_path):
    for name in ("ok.md", "b1/two.md", "...md", ".git/x.md", "build/y.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "ghost.md").symlink_to("missing.md")
    found = find_lessons(tmp_path, lambda p: p.relative_to(tmp_path).as_posix())
    assert [i for _, i in found.lessons] == ["b1/two", "ok"]
    assert [(p.path, p.line) for p in found.problems] == [("...md", 1), ("ghost.md", 1)]


def test_a_killed_writers_temp_file_is_reused_not_piled_up(tmp_path):
    lessons = tmp_path / "lessons"
    store = FileManifestStore(lessons, tmp_path / "build" / ".locks", root=tmp_path)
    store.update("unit1", lambda m: None)
    leftover = lessons / ".unit1.manifest.json.tmp"  # what a kill mid-write leaves
    leftover.write_text("half a manifest")
    store.update("unit1", lambda m: m["remote"].__setitem__("import/x", {"pageId": "p"}))
    assert sorted(p.name for p in lessons.iterdir()) == ["unit1.manifest.json"]
    assert list(store.ids()) == ["unit1"]


def test_a_planted_temp_symlink_is_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / ".m.json.tmp").symlink_to(victim)
    atomic_write(tmp_path / "m.json", b"{}", locked=True)
    assert victim.read_text() == "keep"
    assert (tmp_path / "m.json").read_bytes() == b"{}"
    assert not os.path.lexists(tmp_path / ".m.json.tmp")


@pytest.mark.parametrize(("target", "message"), [
    ("../outside.json", "is a symbolic link to a file outside the repository"),
    ("../gone.json", 'is a symbolic link to "../../gone.json", which does not exist'),
])
def test_a_manifest_that_is_a_symlink_out_or_to_nothing_is_corrupt_not_absent(
        tmp_path, target, message):
    """A link to nothing read as "no manifest yet" would publish a second page; one to a
    file outside would feed the build another file's contents."""
    root = tmp_path / "repo"
    lessons = root / "lessons"
    lessons.mkdir(parents=True)
    (tmp_path / "outside.json").write_bytes(mf.dumps(built_manifest()))
    (lessons / "unit1.manifest.json").symlink_to(Path("..") / target)
    store = FileManifestStore(lessons, root / "build" / ".locks", root=root)
    for read in (store.read, store.read_versioned, lambda i: store.update(i, lambda m: None)):
        with pytest.raises(ManifestCorrupt, match=f"lessons/unit1.manifest.json: {message}"):
            read("unit1")
    assert os.path.islink(lessons / "unit1.manifest.json")


def test_a_manifest_linked_inside_the_repository_is_read(tmp_path):
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (tmp_path / "kept.json").write_bytes(mf.dumps(built_manifest()))
    (lessons / "unit1.manifest.json").symlink_to(Path("..") / "kept.json")
    store = FileManifestStore(lessons, tmp_path / "build" / ".locks", root=tmp_path)
    assert store.read("unit1")["lesson"] == "unit1"


@pytest.mark.parametrize(("name", "text", "message"), [
    ("presets.json", '{"p": {"h2": "red", "toggleMap": {"h2": 3}}}',
     "presets.json:1: p.toggleMap.h2: colour 3 is not a Notion colour"),
    ("presets.json", "[1]", "presets.json:1: must be an object"),
    ("presets.json", "[" * 5000 + "]" * 5000, "presets.json:1: nested too deeply"),
    ("students/a.json", '{"student": " "}', "a.json:1: student: must be a non-empty name"),
    ("students/a.json", '{"colorPreset": "p"}', "a.json:1: student: is missing"),
    ("students/a.json", '{"student": "A",\n "colorPreset": 1}', "a.json:2: colorPreset: must be"),
    ("students/a.json", '{"student": "A",\n "voices": {"Alex": ""}}',
     "a.json:2: voices.Alex: must be a voice id or name"),
    ("voices.yml", "- Alex\n", "voices.yml:1: must be a mapping"),
    ("voices.yml", "auto: maybe\n", "voices.yml:1: auto: must be true or false"),
    ("voices.yml", "auto: true\nAlex: 3\n", "voices.yml:2: Alex: must be a voice id or name"),
])
def test_config_files_are_checked_by_shape(tmp_path, name, text, message):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(text, "utf-8")
    with pytest.raises(ConfigInvalid) as caught:
        load_config(tmp_path, tmp_path)
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_linking_audio_never_writes_through_a_symlinked_page(tmp_path):
    from esl_build.errors import PublishError
    from esl_build.services.html import HtmlPublisher

    victim = tmp_path / "victim.html"
    victim.write_text("<header></header>keep")
    site = tmp_path / "build" / "site"
    site.mkdir(parents=True)
    (site / "unit1.html").symlink_to(victim)
    publisher = HtmlPublisher(site, tmp_path)
    with pytest.raises(PublishError, match="leads out of build/site/"):
        publisher.link_audio({"pageId": "html:unit1", "url": "build/site/unit1.html"},
                             "https://example.org/a.mp3", None)
    assert victim.read_text() == "<header></header>keep"


@pytest.mark.parametrize(("field", "text", "message"), [
    ("schemaVersion", "-" + "9" * 5000, "holds a number too long to be a manifest's"),
    ("stages.tts.outputs.seconds", "NaN", "stages.tts.outputs.seconds: must be a finite number"),
    ("stages.tts.outputs.seconds", "Infinity", "must be a finite number"),
])
def test_numbers_json_reads_but_no_manifest_holds_are_corrupt(field, text, message):
    """Found by tests/property: Python's json reads NaN and Infinity, and refuses integers
    of over 4,300 digits with a ValueError, which escaped as a traceback."""
    doc = built_manifest()
    *parents, last = field.split(".")
    target = doc
    for key in parents:
        target = target[key]
    target[last] = "@number@"
    data = mf.dumps(doc).replace(b'"@number@"', text.encode())
    with pytest.raises(ManifestCorrupt, match=message):
        mf.loads(data, where=WHERE, lesson_id="unit1", source="lessons/unit1.md")
