"""tts: the study text → one MP3, every line cached by content so only changed lines cost.

Each segment is synthesised on its own and kept as PCM in ``build/cache/tts/<key>.pcm`` where
the key hashes (backend, voice settings, voice id, text). The MP3 is then assembled from the
PCM of every line with exact silences and encoded once, so editing one line re-synthesises
that line only, and a rebuild after a crash picks up the lines already paid for.
"""

from __future__ import annotations

import os
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esl_build.errors import ManifestCorrupt, VoiceError
from esl_build.files import atomic_write, contains
from esl_build.fingerprint import fingerprint, sha256_bytes
from esl_build.services.protocols import Pcm
from esl_build.stages import validate
from esl_build.stages.base import Cost, Outcome, Plan, record_of, upstream

if TYPE_CHECKING:
    from esl_build.lesson.model import Lesson
    from esl_build.project import Project

# How the lines are put together; part of the fingerprint.
ASSEMBLY = {"gap": 0.6, "lead": 0.3, "tail": 0.6, "bitrate": 64, "version": 1}


def plan(project: Project, lesson_id: str, manifest: dict[str, Any]) -> Plan:
    checked = validate.current(project, lesson_id, manifest)
    voice = project.voice
    return Plan("tts", lesson_id, voice.name,
                {"speech": checked["speechDigest"], "assembly": ASSEMBLY,
                 "settings": {"backend": voice.name, **voice.settings}})


def estimate(project: Project, plan: Plan) -> Cost:
    """Characters and requests the lines missing from the cache would cost."""
    return _cost(project, _lines(project, plan)[-1])


def unvoiced_lines(project: Project, plan: Plan) -> list[int]:
    """Lines of the lesson file whose speech is not voiced yet (not in the line cache)."""
    lesson, _, keys, missing = _lines(project, plan)
    spoken = [s for s in (lesson.study_text.segments if lesson.study_text else ())
              if s.text.strip()]
    return [segment.line for segment, key in zip(spoken, keys, strict=True) if key in missing]


def _cost(project: Project, missing: dict[str, tuple[str, str]]) -> Cost:
    """Characters synthesised (billed by a remote voice) and requests sent (remote only)."""
    return Cost(characters=sum(len(text) for _, text in missing.values()),
                requests=len(missing) if project.voice.remote else 0)


def _lines(project: Project, plan: Plan
           ) -> tuple[Lesson, dict[str, str], list[str], dict[str, tuple[str, str]]]:
    """The lesson, its speaker → voice assignment, the cache key of every line, and the
    (voice id, text) of each line not cached yet."""
    lesson = project.lesson(plan.lesson_id)
    voices = project.voice.assign(lesson)
    lines = [(voices.get(s.speaker or "", voices.get("", "")), s.text)
             for s in (lesson.study_text.segments if lesson.study_text else ()) if s.text.strip()]
    if not lines:
        raise VoiceError(f"{project.display_path(plan.lesson_id)}: the study text has nothing "
                         "to say; add lines to the :::study-text block")
    cache = _cache_dir(project)
    keys = [line_key(plan.inputs["settings"], voice_id, text) for voice_id, text in lines]
    missing = {key: line for key, line in zip(keys, lines, strict=True)
               if not (cache / f"{key}.pcm").exists()}
    return lesson, voices, keys, missing


def _cache_dir(project: Project) -> Path:
    return project.settings.build_dir / "cache" / "tts"


def apply(project: Project, plan: Plan, manifest: dict[str, Any]) -> Outcome:
    from esl_build import audio  # lameenc and mutagen load only when audio is made

    lesson, voices, keys, missing = _lines(project, plan)
    voice = project.voice
    cache = _cache_dir(project)

    def synthesize(item: tuple[str, tuple[str, str]]) -> None:
        key, (voice_id, text) = item
        _write_pcm(cache / f"{key}.pcm", voice.synthesize(text, voice_id))

    with ThreadPoolExecutor(max_workers=max(1, voice.max_concurrency)) as pool:
        list(pool.map(synthesize, missing.items()))  # list(): re-raise the first failure

    parts = [_read_pcm(cache / f"{key}.pcm") for key in keys]
    rate = parts[0].rate
    speech = audio.join(parts, ASSEMBLY["gap"])
    track = audio.join([audio.silence(ASSEMBLY["lead"], rate), speech,
                        audio.silence(ASSEMBLY["tail"], rate)], 0.0)
    data = audio.encode_mp3(track, bitrate_kbps=int(ASSEMBLY["bitrate"]))
    target = mp3_path(project, plan.lesson_id)
    audio.write_mp3(target, data, title=lesson.frontmatter.title, album="esl-build",
                    artist=lesson.frontmatter.student)
    written = target.read_bytes()
    digest = sha256_bytes(written)
    outputs: dict[str, Any] = {"mp3": project.relative(target), "sha256": digest,
               "seconds": round(track.seconds, 2), "lines": len(keys),
               "synthesized": len(missing), "voices": voices}
    cost = _cost(project, missing)
    if project.storage.remote:
        # Paid audio must not live on one machine only: store it now, under the key upload
        # uses (which then finds it there and only records it), so a worker elsewhere
        # fetches these bytes instead of paying for them again.
        from esl_build.stages.upload import object_key
        stored = dict(project.storage.put(
            target, object_key(project, plan.lesson_id, digest), sha256=digest,
            content_type="audio/mpeg"))
        outputs["stored"] = {k: stored[k] for k in ("bucket", "key") if k in stored}
        cost = cost + Cost(requests=1 + bool(stored.get("sent", True)))
    return Outcome(outputs, cost)


def durable(project: Project, lesson_id: str, record: dict[str, Any],
            manifest: dict[str, Any]) -> bool:
    """The MP3 is here, or it was uploaded already (then the bytes are fetched if needed)."""
    outputs = record.get("outputs", {})
    if outputs.get("mp3") and os.path.isfile(os.path.join(project.root, outputs["mp3"])):
        return True
    upload = record_of(manifest, "upload") or {}
    if (upload.get("inputs", {}).get("audio") == outputs.get("sha256")
            and upload.get("backend") == project.storage.name
            and project.storage.durable(upload.get("outputs", {}))):
        return True
    return bool(outputs.get("stored")) and project.storage.durable(outputs["stored"])


def watched(project: Project, lesson_id: str, record: dict[str, Any],
            manifest: dict[str, Any]) -> tuple[str, ...]:
    """The MP3, and the uploaded copy that stands in for it when it is gone."""
    mp3 = record.get("outputs", {}).get("mp3")
    upload = record_of(manifest, "upload") or {}
    return ((os.path.join(project.root, mp3),) if mp3 else ()) + \
        project.storage.watched(upload.get("outputs", {}))


def mp3_path(project: Project, lesson_id: str) -> Path:
    return project.settings.build_dir / lesson_id / "audio.mp3"


def line_key(settings: dict[str, Any], voice_id: str, text: str) -> str:
    """The cache key of one spoken line: everything that changes its sound."""
    return fingerprint({"settings": settings, "voice": voice_id, "text": text}).split(":")[1]


def ensure_local(project: Project, lesson_id: str, manifest: dict[str, Any]) -> Path:
    """The recorded MP3 on disk, fetched back from storage when only the upload is left."""
    record = upstream(manifest, "tts", lesson_id)
    target = project.settings.root / str(record["outputs"]["mp3"])
    build = project.settings.build_dir
    if not contains(build, target):  # the manifest's shape says so too; this also sees links
        raise ManifestCorrupt(f"{project.store.location(lesson_id)}: stages.tts.outputs.mp3: "
                              f"must name a file inside {project.relative(build)}/")
    if not target.is_file():
        upload = record_of(manifest, "upload") or {}
        stored = (upload.get("outputs") if upload.get("inputs", {}).get("audio")
                  == record["outputs"]["sha256"] else None) or record["outputs"].get("stored")
        if not stored:
            upstream(manifest, "upload", lesson_id)  # Waiting: nothing to fetch it from
        project.storage.fetch(stored, target)
    if sha256_bytes(target.read_bytes()) != record["outputs"]["sha256"]:
        raise VoiceError(f"{project.relative(target)} differs from the recorded audio; "
                         f"run `esl-build rerun {lesson_id} --steps tts,upload,add-audio`")
    return target


def _write_pcm(path: Path, pcm: Pcm) -> None:
    atomic_write(path, struct.pack("<I", pcm.rate) + pcm.samples)


def _read_pcm(path: Path) -> Pcm:
    data = path.read_bytes()
    return Pcm(data[4:], struct.unpack("<I", data[:4])[0])
