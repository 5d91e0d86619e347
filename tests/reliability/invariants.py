"""The three remote services a real build talks to, each behind a seeded fault proxy:
the fake Notion, the fake ElevenLabs and moto S3, all over HTTP on 127.0.0.1.

``Stack`` starts them and knows what they hold; ``check_invariants`` states what must hold
after any build that finished, whatever faults, kills or races came before: one Notion page
per lesson (archived ones count), no line billed twice (beyond answers the proxy lost after
ElevenLabs had billed them), every manifest readable and valid against the schema, every
stage recorded and every page complete.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import jsonschema

from esl_build.lesson import read_lesson
from esl_build.lesson.model import Block, plain_text
from esl_build.testing.fake_elevenlabs import VOICES, FakeElevenLabs
from esl_build.testing.fake_notion import FakeNotion
from esl_build.testing.fault_proxy import FaultProxy
from esl_build.testing.repo import LessonsRepo
from esl_build.voices.catalog import catalog_bytes

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "esl_build/schemas/manifest.schema.json").read_text())
STAGES = ("validate", "import", "tts", "upload", "add-audio")
BUNDLED_DIALOGUE = ROOT / "lessons/a2/dialogue-cafe.md"


@dataclass
class Stack:
    """Fake Notion, fake ElevenLabs and a moto bucket, each behind its own ``FaultProxy``."""

    notion: FakeNotion
    eleven: FakeElevenLabs
    bucket: str
    s3: Any  # a boto3 client straight to moto (no faults), for the test's own checks
    proxies: dict[str, FaultProxy]
    env: dict[str, str] = field(default_factory=dict)

    def repo(self, root: Path, lessons: dict[str, str], **env: str) -> LessonsRepo:
        repo = LessonsRepo.create(root, lessons, env={**self.env, **env})
        repo.path("configs/elevenlabs.voices.json").write_bytes(catalog_bytes(list(VOICES)))
        return repo

    def lost_billing(self) -> Counter[str]:
        """Texts in synthesis requests ElevenLabs received whose answer never reached the
        build (a lost answer is billed; the build cannot know it and asks again)."""
        lost: Counter[str] = Counter()
        for request in self.proxies["elevenlabs"].applied_unanswered():
            if "/text-to-" not in request.path:
                continue
            body = json.loads(request.body)
            lost.update(item["text"] for item in body.get("inputs") or [body])
        return lost

    def audio_puts(self) -> Counter[str]:
        """Audio keys in the bucket → how many versions were written."""
        versions = self.s3.list_object_versions(Bucket=self.bucket, Prefix="audio/")
        return Counter(v["Key"] for v in versions.get("Versions", ()))


FAST = {"NOTION_RATE_LIMIT": "1000", "NOTION_RETRY_DELAY": "0.01",
        "NOTION_TIMEOUT_SECONDS": "1", "ELEVENLABS_TIMEOUT_SECONDS": "1",
        "S3_TIMEOUT_SECONDS": "1", "ESL_PIPELINE_LEASE_TTL": "5"}


@contextmanager
def open_stack(moto_url: str, tmp: Path, *, rate: float = 0.0, seed: int = 0
               ) -> Iterator[Stack]:
    """Fake Notion, fake ElevenLabs and a new versioned bucket in moto, each behind a
    ``FaultProxy`` at ``rate`` (seeded); ``Stack.env`` aims a build at the proxies."""
    notion, eleven = FakeNotion(), FakeElevenLabs().start()
    bucket = f"rel-{uuid.uuid4().hex[:12]}"
    aws = {"AWS_ACCESS_KEY_ID": "AKIATESTKEY", "AWS_SECRET_ACCESS_KEY": "test-secret-never-shown",
           "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "S3_ADDRESSING_STYLE": "path", "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
           "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
           "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}
    direct = boto3.session.Session(
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"]).client(
        "s3", region_name="us-east-1", endpoint_url=moto_url)
    direct.create_bucket(Bucket=bucket)
    direct.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # a slow answer is held past the clients' 1 s timeouts (FAST)
    proxies = {"notion": FaultProxy(notion.base_url, rate, seed, slow=1.5).start(),
               "elevenlabs": FaultProxy(eleven.url, rate, seed + 1, slow=1.5).start(),
               "s3": FaultProxy(moto_url, rate, seed + 2, slow=1.5, error_style="s3",
                                statuses=(500, 502, 503, 504)).start()}
    env = {**notion.env, "NOTION_BASE_URL": proxies["notion"].url,
           **eleven.env, "ELEVENLABS_BASE_URL": proxies["elevenlabs"].url,
           **aws, "AWS_ENDPOINT_URL_S3": proxies["s3"].url, "S3_BUCKET": bucket, **FAST}
    try:
        yield Stack(notion, eleven, bucket, direct, proxies, env)
    finally:
        for proxy in proxies.values():
            proxy.stop()
        eleven.stop()
        notion.close()


# -- lessons --------------------------------------------------------------------------------
_STUDY = re.compile(r"(:::study-text[^\n]*\n)(.*?)(\n:::)", re.DOTALL)


def dialogue_lessons(count: int) -> dict[str, str]:
    """``count`` lessons made from the bundled dialogue: each its own title and lines."""
    text = BUNDLED_DIALOGUE.read_text(encoding="utf-8")

    def lesson(n: int) -> str:
        def numbered(match: re.Match[str]) -> str:
            lines = [f"{line.rstrip('.?!')} (lesson {n})." if ": " in line else line
                     for line in match.group(2).splitlines()]
            return match.group(1) + "\n".join(lines) + match.group(3)

        titled = text.replace('title: "Homework Assignment: Ordering at a Café"',
                              f'title: "Ordering at a Café, part {n}"', 1)
        return _STUDY.sub(numbered, titled, count=1)

    return {f"a2/cafe-{n:02d}": lesson(n) for n in range(count)}


# -- what must hold -------------------------------------------------------------------------
def manifests(repo: LessonsRepo, stack: Stack | None = None) -> dict[str, dict[str, Any]]:
    """Each lesson's manifest, parsed, from the repository's files or (with ``stack``, when
    the repository keeps them in the S3 store) from the bucket; an unreadable one fails the
    test, naming it."""
    if stack is not None and repo.env.get("ESL_PIPELINE_MANIFEST_STORE") == "s3":
        start = repo.env["ESL_PIPELINE_MANIFEST_PREFIX"] + "/lessons/"
        listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=start)
        stored = {item["Key"][len(start):]: stack.s3.get_object(
            Bucket=stack.bucket, Key=item["Key"])["Body"].read()
            for item in listed.get("Contents", ())}
    else:
        stored = {path.relative_to(repo.path("lessons")).as_posix(): path.read_bytes()
                  for path in sorted(repo.path("lessons").rglob("*.manifest.json"))}
    found = {}
    for name, data in stored.items():
        try:
            found[name[:-len(".manifest.json")]] = json.loads(data)
        except ValueError as exc:
            raise AssertionError(f"{name} is unreadable: {exc}") from None
    return found


def stage_records(repo: LessonsRepo, stack: Stack | None = None
                  ) -> dict[tuple[str, str], dict[str, Any]]:
    """(lesson, stage) → the stage's record, for every stage recorded now."""
    return {(lesson_id, stage): record for lesson_id, manifest in manifests(repo, stack).items()
            for stage, record in manifest.get("stages", {}).items()}


def _texts(block: Block) -> Iterator[str]:
    if block.text:
        yield plain_text(block.text)
    for row in block.rows:
        yield " ".join(plain_text(cell) for cell in row)
    for child in block.children:
        yield from _texts(child)


def check_invariants(stack: Stack, repo: LessonsRepo, lesson_ids: list[str], *,
                     lost: Counter[str] | None = None) -> None:
    """What must hold once a build has finished; ``lost`` are texts whose billed answer was
    lost for reasons other than the proxy's faults (a build killed while it was in flight)."""
    found = manifests(repo, stack)
    assert sorted(found) == sorted(lesson_ids)
    for lesson_id, manifest in found.items():
        errors = [e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(manifest)]
        assert not errors, (lesson_id, errors)
        assert set(manifest["stages"]) == set(STAGES), (lesson_id, sorted(manifest["stages"]))
    # exactly one Notion page per lesson, archived duplicates included, and it is complete
    assert len(stack.notion.pages()) == len(lesson_ids)
    for lesson_id in lesson_ids:
        pages = stack.notion.pages_of(lesson_id)
        assert len(pages) == 1, (lesson_id, [(p.id, p.archived) for p in pages])
        page = pages[0]
        assert not page.archived
        assert page.id == found[lesson_id]["remote"]["import/notion"]["pageId"]
        shown = [stack.notion.text_of(node) for _, node in stack.notion.walk(page.id)]
        lesson, _ = read_lesson(repo.path(f"lessons/{lesson_id}.md"), lesson_id=lesson_id)
        assert lesson is not None
        for block in lesson.blocks:
            for text in _texts(block):
                assert any(text in seen for seen in shown), (lesson_id, block.line, text)
        audio = found[lesson_id]["stages"]["upload"]["outputs"]["url"]
        assert page.properties["Audio"]["url"] == audio, lesson_id
    # no line billed twice, beyond answers ElevenLabs billed that never reached the build
    allowed = stack.lost_billing() + (lost or Counter())
    twice = {text: times for text, times in stack.eleven.billed.items()
             if times > 1 + allowed[text]}
    assert not twice, twice
    # one audio object per lesson, written once unless its PUT's answer was lost
    puts = stack.audio_puts()
    assert len(puts) == len(lesson_ids), puts
    lost_puts = Counter(r.path.split("?")[0].split("/", 2)[2]
                        for r in stack.proxies["s3"].applied_unanswered() if r.method == "PUT")
    assert all(times <= 1 + lost_puts[key] for key, times in puts.items()), (puts, lost_puts)
