"""Manifest format: version 2 round trip, version 1 adoption, corrupt files, schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest

from esl_build.errors import ManifestCorrupt
from esl_build.state import manifest as mf

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "lessons"
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "esl_build" / "schemas"
                     / "manifest.schema.json").read_text())


@pytest.mark.parametrize("name", ["four-speakers.manifest.json",
                                  "empty-frontmatter.manifest.json"])
def test_predecessor_manifests_are_adopted_with_their_page(name):
    old = json.loads((FIXTURES / name).read_text())
    assert old["schemaVersion"] == 1
    doc = mf.loads((FIXTURES / name).read_bytes(), where=name, lesson_id="four-speakers",
                   source="lessons/four-speakers.md")
    assert doc["schemaVersion"] == mf.SCHEMA_VERSION
    assert doc["remote"]["import/notion"] == {"pageId": old["pageId"], "url": old["pageUrl"]}
    assert doc["stages"] == {}  # no fingerprints were kept: every stage runs once, in place
    assert doc["migratedFrom"]["mdHash"] == old["mdHash"]
    jsonschema.validate(doc, SCHEMA)


@pytest.mark.parametrize("name", ["four-speakers", "empty-frontmatter"])
def test_a_predecessor_fixture_manifest_hashes_its_lesson_as_the_predecessor_did(name):
    old = json.loads((FIXTURES / f"{name}.manifest.json").read_text())
    assert old["mdHash"] == hashlib.sha256((FIXTURES / f"{name}.md").read_bytes()).hexdigest()


def test_a_record_round_trips_and_keeps_remote_identities_when_forgotten():
    doc = mf.new_manifest("unit1", "lessons/unit1.md")
    mf.record_stage(doc, stage="import", backend="notion", remote=True,
                    fingerprint="sha256:" + "0" * 64, inputs={"page": "x"},
                    outputs={"pageId": "p-1", "url": "https://notion.so/p-1"},
                    cost={"characters": 0, "requests": 3}, run_id="r-1")
    mf.forget_stage(doc, "import")
    again = mf.loads(mf.dumps(doc), where="m", lesson_id="unit1", source="lessons/unit1.md")
    assert "fingerprint" not in again["stages"]["import"]
    assert again["stages"]["import"]["outputs"]["pageId"] == "p-1"
    assert again["remote"]["import/notion"]["pageId"] == "p-1"
    assert mf.dumps(again) == mf.dumps(doc)  # deterministic bytes
    jsonschema.validate(again, SCHEMA)


def test_local_backends_keep_no_remote_identity():
    doc = mf.new_manifest("unit1", "lessons/unit1.md")
    mf.record_stage(doc, stage="upload", backend="local", remote=False,
                    fingerprint="sha256:" + "1" * 64, inputs={}, outputs={"key": "k"},
                    cost={"characters": 0, "requests": 0}, run_id="r-1")
    assert doc["remote"] == {}


@pytest.mark.parametrize(("data", "message"), [
    (b'{"schemaVersion": 2,\n "stages": [}', "m.json:2: invalid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"schemaVersion": 7}', "schemaVersion 7 is not supported"),
    (b'{"schemaVersion": 2, "stages": {"publish": {}}}', "stages.publish"),
    (b"[]", "must be a JSON object"),
])
def test_corrupt_manifests_name_the_file_and_what_is_wrong(data, message):
    with pytest.raises(ManifestCorrupt, match=message.replace(".", r"\.")):
        mf.loads(data, where="m.json", lesson_id="u", source="lessons/u.md")
