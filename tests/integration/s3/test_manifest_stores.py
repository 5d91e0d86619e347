"""One conformance suite for every manifest store: the file store, the S3 store (moto) and the
PostgreSQL store (a real server started for the session)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from esl_build.errors import LeaseHeld, WriteConflict
from esl_build.fingerprint import fingerprint
from esl_build.settings import Settings
from esl_build.state.manifest import record_stage
from esl_build.state.stores import ManifestStore, store_from


@pytest.fixture(params=["file", "s3", "postgres"])
def store_env(request, s3) -> dict[str, str]:
    """The variables that select one kind of store (each test gets its own bucket or
    PostgreSQL namespace, so tests never see each other's manifests)."""
    env = {**s3.env, "ESL_PIPELINE_LEASE_TTL": "0.6"}
    if request.param == "s3":
        env.update(ESL_PIPELINE_MANIFEST_STORE="s3", ESL_PIPELINE_MANIFEST_BUCKET=s3.bucket,
                   ESL_PIPELINE_MANIFEST_PREFIX="manifests/ci")
    elif request.param == "postgres":
        env.update(ESL_PIPELINE_MANIFEST_STORE="postgres",
                   ESL_PIPELINE_MANIFEST_DSN=request.getfixturevalue("postgres_dsn"),
                   ESL_PIPELINE_MANIFEST_PREFIX=f"ci/{s3.bucket}")
    return env


@pytest.fixture
def make_store(request, store_env, tmp_path):
    def make(**extra: str) -> ManifestStore:
        return store_from(Settings.resolve(tmp_path, env={**store_env, **extra}))
    make.kind = request.node.callspec.params["store_env"]  # type: ignore[attr-defined]
    return make


OUTPUTS = {"import": {"pageId": "p-1", "url": "build/site/unit1.html"},
           "upload": {"key": "audio/unit1/0123.mp3", "url": "https://cdn.example/a.mp3"},
           "add-audio": {"url": "https://cdn.example/a.mp3"}}


def stage(name: str, value: str):
    """A change that records stage ``name`` (import, upload or add-audio) with input ``value``."""
    def change(manifest):
        record_stage(manifest, stage=name, backend="test", remote=False,
                     fingerprint=fingerprint(value), inputs={"v": value},
                     outputs=OUTPUTS[name], cost={"characters": 0, "requests": 0},
                     run_id="r-test")
    return change


def test_round_trip_with_versions_ids_and_locations(make_store):
    store = make_store()
    assert store.read_versioned("b1/unit1") == (None, None)
    store.update("b1/unit1", stage("import", "one"))
    doc, version = store.read_versioned("b1/unit1")
    assert doc["stages"]["import"]["inputs"] == {"v": "one"} and version
    assert doc["lesson"] == "b1/unit1" and doc["source"] == "lessons/b1/unit1.md"
    store.update("a/unit1", stage("import", "two"))
    store.new_run()
    assert list(store.ids()) == ["a/unit1", "b1/unit1"]
    assert store.read("b1/unit1") == doc
    expected = {"file": "lessons/b1/unit1.manifest.json",
                "s3": "manifests/ci/lessons/b1/unit1.manifest.json",
                "postgres": "/lessons/b1/unit1"}[make_store.kind]
    assert store.location("b1/unit1").endswith(expected)
    assert store.location("a/unit1") != store.location("b1/unit1")


def test_a_stale_conditional_write_is_refused_and_update_merges(make_store):
    first, second = make_store(), make_store()
    first.update("unit1", stage("import", "v"))
    doc, version = first.read_versioned("unit1")
    second.update("unit1", stage("upload", "t"))  # another worker, in between
    doc["stages"]["add-audio"] = dict(doc["stages"]["import"], outputs=OUTPUTS["add-audio"])
    with pytest.raises(WriteConflict):
        first.write("unit1", doc, expect=version)
    with pytest.raises(WriteConflict):
        first.write("unit1", doc, expect=None)  # "create" when it exists
    first.update("unit1", stage("add-audio", "i"))
    merged, _ = second.read_versioned("unit1")
    assert set(merged["stages"]) == {"import", "upload", "add-audio"}


WRITER = """
import sys
from esl_build.settings import Settings
from esl_build.state.manifest import record_stage
from esl_build.state.stores import store_from
import json
env = json.loads(sys.argv[1]); name = sys.argv[2]
store = store_from(Settings.resolve(sys.argv[3], env=env))
outputs = json.loads(sys.argv[4])
for n in range(12):
    store.update("unit1", lambda m, n=n: (record_stage(m, stage=name, backend="t", remote=False,
        fingerprint="sha256:" + "0" * 64, inputs={"n": n}, outputs=outputs,
        cost={"characters": 0, "requests": 0}, run_id="r"),
        m["doit"].__setitem__(f"{name}:{n}", {})))
"""


def test_two_processes_writing_different_stages_at_once_lose_nothing(make_store, store_env,
                                                                    tmp_path):
    store = make_store()
    env = dict(store_env)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, json.dumps(env), name,
                                 str(tmp_path), json.dumps(OUTPUTS[name])])
               for name in ("upload", "import")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    doc, _ = store.read_versioned("unit1")
    assert doc["stages"]["upload"]["inputs"] == {"n": 11}
    assert doc["stages"]["import"]["inputs"] == {"n": 11}
    assert len(doc["doit"]) == 24  # every single write survived


def test_the_lease_keeps_two_builders_apart_and_names_the_holder(make_store):
    store, other = make_store(), make_store()
    with store.lease("unit1") as lease:
        assert lease.owner and not lease.lost
        with (pytest.raises(LeaseHeld, match=r"lesson unit1 is held by .*@.*waited 0.3 s"),
              other.lease("unit1", timeout=0.3)):
            pass
    with other.lease("unit1", timeout=1):  # released: free at once
        pass


def test_a_waiting_builder_gets_the_lease_when_it_is_released(make_store):
    store, other = make_store(), make_store()
    order = []

    def hold():
        with store.lease("unit1"):
            order.append("first in")
            time.sleep(0.5)
            order.append("first out")

    thread = threading.Thread(target=hold)
    thread.start()
    while not order:
        time.sleep(0.01)
    with other.lease("unit1", timeout=10):
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]


HOLDER = """
import sys, json, time
from esl_build.settings import Settings
from esl_build.state.stores import store_from
store = store_from(Settings.resolve(sys.argv[2], env=json.loads(sys.argv[1])))
with store.lease("unit1"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_killed_workers_lease_expires_and_is_taken_over(make_store, store_env, tmp_path):
    env = dict(store_env, ESL_PIPELINE_LEASE_TTL="3")  # a loaded machine may stall
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, json.dumps(env), str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    store = make_store(ESL_PIPELINE_LEASE_TTL="3")
    with pytest.raises(LeaseHeld), store.lease("unit1", timeout=0.2):
        pass
    holder.kill()
    holder.wait()
    started = time.monotonic()
    with store.lease("unit1", timeout=20):
        pass
    assert time.monotonic() - started < 10  # the TTL, not the timeout


def test_a_held_lease_is_renewed_while_its_stage_runs(make_store):
    store, other = make_store(), make_store()  # TTL 0.6 s
    with store.lease("unit1") as lease:
        time.sleep(1.5)  # longer than the TTL: only renewal keeps it
        with pytest.raises(LeaseHeld), other.lease("unit1", timeout=0.2):
            pass
        assert not lease.lost


def test_push_and_pull_are_idempotent_and_never_overwrite_a_newer_manifest(s3, tmp_path):
    from esl_build.state.migrate import copy_manifests

    files = store_from(Settings.resolve(tmp_path, env=s3.env))
    remote = store_from(Settings.resolve(tmp_path, env={
        **s3.env, "ESL_PIPELINE_MANIFEST_STORE": "s3", "ESL_PIPELINE_MANIFEST_BUCKET": s3.bucket,
        "ESL_PIPELINE_MANIFEST_PREFIX": "manifests/ci"}))
    files.update("unit1", stage("import", "a"))
    files.update("unit2", stage("import", "b"))
    assert copy_manifests(files, remote).copied == ["unit1", "unit2"]
    assert copy_manifests(files, remote).unchanged == ["unit1", "unit2"]
    remote.update("unit1", stage("upload", "later"))  # a machine built more meanwhile
    pushed = copy_manifests(files, remote)
    assert list(pushed.refused) == ["unit1"] and "newer (upload)" in pushed.refused["unit1"]
    pulled = copy_manifests(remote, files)
    assert pulled.copied == ["unit1"] and pulled.unchanged == ["unit2"]
    assert set(files.read_versioned("unit1")[0]["stages"]) == {"import", "upload"}
