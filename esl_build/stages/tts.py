"""tts: the study text → one MP3, every request's audio kept by content so only changes cost.

The voice turns the study text into requests (one line each in monologue mode, chunks of turns
in dialogue mode) and gives each a content address (``Voice.request_key``). Each request's PCM
is obtained from the audio cache (``esl_build.tts_cache``) or synthesised once and stored there
at once; the MP3 is then assembled from every request's PCM with exact silences and encoded
once. So editing one line bills that line (or its chunk), lessons sharing a line pay for it
once, and a rebuild after a crash or a failure re-uses every request already paid for.

The plan's inputs hold the cast (speaker → voice id): a recorded cast is re-used while the
speech and the casting configuration (``Voice.casting_digest``) are unchanged, so a no-op
parses nothing; otherwise the lesson is cast again, keeping each recorded speaker whose own
configuration did not change (``esl_build.voices.casting``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esl_build.config import MAX_CHARACTERS
from esl_build.errors import EslBuildError, ManifestCorrupt, VoiceError
from esl_build.files import contains
from esl_build.fingerprint import sha256_bytes
from esl_build.lesson.model import Lesson
from esl_build.services.protocols import Pcm, SpeechRequest
from esl_build.stages import validate
from esl_build.stages.base import Cost, Outcome, Plan, Waiting, record_of, upstream
from esl_build.tts_cache import AudioCache, FolderCache, StorageCache, TieredCache, obtain

if TYPE_CHECKING:
    from esl_build.project import Project

# How the requests are put together; part of the fingerprint. ElevenLabs' tail is
# ELEVENLABS_SILENCE_TAIL_SECONDS.
ASSEMBLY = {"gap": 0.6, "lead": 0.3, "tail": 0.6, "bitrate": 64, "version": 1}


def plan(project: Project, lesson_id: str, manifest: dict[str, Any]) -> Plan:
    checked = validate.current(project, lesson_id, manifest)
    voice = project.voice
    voices = {speaker: choice["id"] for speaker, choice in
              casting(project, lesson_id, manifest).items()}
    return Plan("tts", lesson_id, voice.name,
                {"speech": checked["speechDigest"], "assembly": assembly(project),
                 "settings": {"backend": voice.name, **voice.settings}, "voices": voices})


def assembly(project: Project) -> dict[str, Any]:
    if project.voice.name == "elevenlabs":
        return {**ASSEMBLY, "tail": project.settings.elevenlabs.silence_tail}
    return ASSEMBLY


def casting(project: Project, lesson_id: str, manifest: dict[str, Any]
            ) -> dict[str, dict[str, Any]]:
    """Speaker → recorded choice (``id``, ``name``, ``source``, ``score``, ``basis``): the
    record's while speech and casting configuration are unchanged, else cast afresh."""
    memo = getattr(manifest, "memo", {})
    if "ttsCasting" in memo:
        return memo["ttsCasting"]  # type: ignore[no-any-return]
    checked = validate.current(project, lesson_id, manifest)
    voice = project.voice
    digest = voice.casting_digest(checked.get("student") or "")
    record = record_of(manifest, "tts") or {}
    recorded = (record.get("outputs") or {}).get("voices")
    if record.get("backend") != voice.name or not isinstance(recorded, dict):
        recorded = None
    if (recorded is not None and record.get("inputs", {}).get("speech") ==
            checked["speechDigest"] and record["outputs"].get("casting") == digest
            and all(isinstance(c, dict) and "id" in c for c in recorded.values())):
        result: dict[str, dict[str, Any]] = recorded
    else:
        lesson = project.lesson(lesson_id)
        result = {speaker: choice.to_json()
                  for speaker, choice in voice.cast(lesson, recorded).items()}
    memo["ttsCasting"] = result
    memo["ttsCastingDigest"] = digest
    return result


def _requests(project: Project, plan: Plan) -> tuple[Lesson, list[SpeechRequest], list[str]]:
    """The lesson, its requests in order and their cache keys."""
    lesson = project.lesson(plan.lesson_id)
    try:
        requests = project.voice.requests(lesson, plan.inputs["voices"])
    except VoiceError as error:
        raise VoiceError(f"tts:{plan.lesson_id}: {_bare(error)}") from None
    if not requests:
        raise VoiceError(f"{project.display_path(plan.lesson_id)}: the study text has nothing "
                         "to say; add lines to the :::study-text block")
    return lesson, requests, [project.voice.request_key(request) for request in requests]


def audio_cache(project: Project) -> AudioCache:
    """The folder cache, in front of the storage's ``cache/tts/`` when the voice is paid."""
    cache: AudioCache | None = project.memo.get("ttsCache")
    if cache is None:
        cache = FolderCache(project.settings.build_dir / "cache" / "tts")
        if project.voice.remote:
            cache = TieredCache(cache, StorageCache(
                project.storage, claim_ttl=project.settings.manifests.lease_ttl))
        project.memo["ttsCache"] = cache
    return cache


shared_work = True  # estimate() takes the requests counted for other lessons (stages.estimate)


def estimate(project: Project, plan: Plan, seen: set[str] | None = None) -> Cost:
    """What running the stage would bill: the requests not in the cache (and, with ``seen``,
    not counted already for another lesson of the same build; ``seen`` gains them)."""
    _, requests, keys = _requests(project, plan)
    cache = audio_cache(project)
    seen = set() if seen is None else seen
    missing = {}
    for key, request in zip(keys, requests, strict=True):
        if key not in seen and key not in missing and not cache.contains(key):
            missing[key] = request.characters
    seen.update(missing)
    return Cost(characters=sum(missing.values()),
                requests=len(missing) if project.voice.remote else 0)


def unvoiced_lines(project: Project, plan: Plan) -> list[int]:
    """Lines of the lesson file whose speech is not voiced yet (their request is not in the
    cache; in dialogue mode, every line of a missing chunk)."""
    _, requests, keys = _requests(project, plan)
    cache = audio_cache(project)
    return [turn.line for key, request in zip(keys, requests, strict=True)
            if not cache.contains(key) for turn in request.turns]


def planned(project: Project, lesson_ids: Iterable[str]) -> Cost:
    """What building the tts stage of these lessons would bill, exactly: after the cache and
    counting a request shared by several lessons once. Lessons that cannot be planned (errors,
    lines too long) count nothing: their stage fails on its own without billing."""
    from esl_build.stages import status

    seen: set[str] = set()
    total = Cost()
    for lesson_id in lesson_ids:
        try:
            current = status(project, "tts", lesson_id)
            if current.stale and current.plan is not None:
                total += estimate(project, current.plan, seen)
        except (EslBuildError, Waiting):
            continue
    return total


def check_budget(project: Project) -> None:
    """Once per run, before the first request: refuse a build that would bill more than
    ``max_characters`` or than the subscription has left. Every tts stage of the run gets the
    same verdict."""
    lock = project.memo.setdefault("ttsBudgetLock", threading.Lock())
    with lock:
        if "ttsBudget" not in project.memo:
            project.memo["ttsBudget"] = _budget_problem(project)
    problem = project.memo["ttsBudget"]
    if problem is not None:
        raise problem


def character_limit(project: Project) -> tuple[int | None, str]:
    """The most characters a build may bill, and where that is said: ``--max-characters`` /
    ``ESL_BUILD_MAX_CHARACTERS`` for this run, else ``max_characters`` in voices.yml (the
    project's standing limit); ``(None, "")`` without either."""
    if project.settings.max_characters is not None:
        return project.settings.max_characters, "--max-characters / ESL_BUILD_MAX_CHARACTERS"
    limit = project.config.voices.get(MAX_CHARACTERS)
    return (limit, f"{MAX_CHARACTERS} in voices.yml") if limit is not None else (None, "")


def _budget_problem(project: Project) -> EslBuildError | None:
    limit, where = character_limit(project)
    if limit is None and not project.voice.remote:
        return None
    cost = planned(project, project.lesson_ids())
    if limit is not None and cost.characters > limit:
        return VoiceError(f"this build would bill {cost.characters} characters, more than the "
                          f"limit of {limit} ({where}); nothing was sent: see `esl-build plan`")
    try:
        project.voice.check_budget(cost.characters)
    except VoiceError as error:
        return error
    return None


def request_pool(project: Project) -> ThreadPoolExecutor:
    """The run's one pool of ``voice.max_concurrency`` threads that every lesson's requests
    go through, in the order lessons submit them: the first lesson's requests all go before
    the second's, so lessons finish one after another and each one's MP3 is encoded while
    the API works on the next, instead of every lesson finishing (and encoding) at the end.

    A remote voice gets twice as many threads as it may have requests in flight (its
    limiter keeps them to that): when a slot frees, a request that has already been looked
    up in the cache and built is waiting for it, instead of a thread that still has to store
    the last answer and prepare the next one."""
    voice = project.voice
    with project.memo.setdefault("ttsPoolLock", threading.Lock()):
        pool: ThreadPoolExecutor | None = project.memo.get("ttsPool")
        if pool is None:
            workers = max(1, voice.max_concurrency) * (2 if voice.remote else 1)
            pool = project.memo["ttsPool"] = ThreadPoolExecutor(workers, "tts")
        return pool


def apply(project: Project, plan: Plan, manifest: dict[str, Any]) -> Outcome:
    from esl_build import audio  # lameenc and mutagen load only when audio is made

    lesson, requests, keys = _requests(project, plan)
    check_budget(project)
    voice = project.voice
    cache = audio_cache(project)
    locks = project.settings.build_dir / ".locks" / "tts"
    made: dict[str, int] = {}
    made_lock = threading.Lock()

    def fetch(index: int) -> Pcm:
        key, request = keys[index], requests[index]
        pcm, fresh = obtain(cache, key, locks, lambda: voice.synthesize(request))
        if fresh:
            with made_lock:
                made[key] = request.characters
        return pcm

    unique = sorted({key: i for i, key in reversed(list(enumerate(keys)))}.values())
    pool = request_pool(project)
    futures = {keys[i]: pool.submit(fetch, i) for i in unique}
    settings = assembly(project)
    stream: audio.Mp3Stream | None = None
    try:
        # Encoded in order as the parts arrive: the pool answers them in about that order,
        # so the MP3 is done moments after the last answer.
        for key in keys:
            part = futures[key].result()
            if stream is None:
                stream = audio.Mp3Stream(part.rate, bitrate_kbps=int(settings["bitrate"]))
                stream.pause(settings["lead"])
            else:
                stream.pause(settings["gap"])
            stream.add(part)
    except BaseException as error:
        for future in futures.values():
            future.cancel()  # not started yet: nothing of it was paid for
        wait(futures.values())  # what is in flight is paid for: let it reach the cache
        if not isinstance(error, VoiceError):
            raise
        raise VoiceError(f"tts:{plan.lesson_id} ({project.display_path(plan.lesson_id)}): "
                         f"{_bare(error)}; the {len(made)} request(s) paid for in this run "
                         "are kept in the cache", retryable=error.retryable,
                         request_id=error.request_id) from None
    assert stream is not None  # _requests refuses a study text with nothing to say
    stream.pause(settings["tail"])
    data = stream.finish()
    target = mp3_path(project, plan.lesson_id)
    audio.write_mp3(target, data, title=lesson.frontmatter.title,
                    album=lesson.frontmatter.level and f"esl-build {lesson.frontmatter.level}",
                    artist=lesson.frontmatter.student)
    written = target.read_bytes()
    memo = getattr(manifest, "memo", {})
    choices = memo.get("ttsCasting") or casting(project, plan.lesson_id, manifest)
    billed = sum(made.values())
    digest = sha256_bytes(written)
    outputs: dict[str, Any] = {
        "mp3": project.relative(target), "sha256": digest, "seconds": round(stream.seconds, 2),
        "lines": sum(len(r.turns) for r in requests), "requests": len(keys),
        "mode": requests[0].mode, "synthesized": len(made), "voices": choices,
        "casting": memo.get("ttsCastingDigest", "")}
    cost = Cost(characters=billed, requests=len(made) if voice.remote else 0)
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


def _bare(error: VoiceError) -> str:
    """The message without the "voice: " prefix VoiceError adds (it is added again)."""
    text = str(error)
    return text[len("voice: "):] if text.startswith("voice: ") else text


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
