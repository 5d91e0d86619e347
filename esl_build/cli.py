"""``esl-build``: the command line. The one place where errors become exit codes.

::

    esl-build validate PATH... [--strict] [--json]   check lessons, print path:line: messages
    esl-build build [COMMAND] [ARGS...]              run the build graph (same as `doit`)
    esl-build plan [ID...] [--json]                  stale stages, why, and what they'd cost
    esl-build status [ID...] [--json]                what each manifest records
    esl-build rerun ID --steps tts,upload,add-audio  force stages without re-running upstream
    esl-build init DIR                               scaffold a lessons repository
    esl-build env                                    the variables esl-build reads, and backends
    esl-build voices sync                            refresh configs/elevenlabs.voices.json
    esl-build build --max-characters N --dry-run     refuse over N characters; plan only
    esl-build build --public-read | --presign SECS   how S3 audio is linked (docs/storage.md)
    esl-build build --force|--keep-notion import:ID  settle a Notion conflict (docs/notion.md)
    esl-build serve [--host H] [--port N]            the HTTP worker (esl_build.service)
    esl-build worker [--concurrency N] [--pool P]    a queue worker (esl_build.queue)

Exit codes: 0 success, 1 a lesson or a stage failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from esl_build.errors import ConfigInvalid, EslBuildError
from esl_build.project import Project
from esl_build.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``esl-build`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "validate":
        from esl_build.lesson.cli import run_validate
        return run_validate(argv[1:])
    if argv and argv[0] == "build":
        if argv[1:] in (["--help"], ["-h"], ["help"]):
            print(BUILD_HELP, end="")
            return 0
        return run_build(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except EslBuildError as error:
        print(f"esl-build: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


BUILD_HELP = """\
usage: esl-build build [COMMAND] [OPTIONS] [TASK...]

Build the lessons of the repository in the current folder, as `doit` does with the dodo.py
that `esl-build init` writes (no dodo.py needed). Tasks: validate, import, tts, upload,
add-audio (each also as STAGE:LESSON-ID, e.g. tts:b1/unit1) and index.

commands (default: run):
  run [TASK...]          build what is stale: every lesson, or the tasks named and what
                         they need
  list [--all]           the tasks (--all: one per lesson and stage)
  info TASK              why the task is stale (or that it is up to date)
  forget TASK...         make those stages run again; their page and object ids are kept
  help COMMAND           doit's full help of a command

options of run:
  -n N -P thread|process run N tasks at once, in threads or processes
  --no-continue          stop at the first failure (default: a failed lesson stops only
                         itself; every other lesson is built)
  --reporter NAME        esl-build (default): what ran, with a progress count, failures,
                         new voices and a summary; console: doit's own lines (".  task"
                         ran, "-- task" up to date), for scripts

options before the command (esl-build's own; each the flag of a variable, docs/elevenlabs.md):
  --dry-run              print what the build would do and bill, and stop (sends nothing)
  --max-characters N     refuse to start when the build would bill more than N characters
  --public-read          S3: send audio with the public-read ACL (an error if the bucket
                         forbids ACLs; nothing is uploaded privately)
  --presign SECONDS      S3: link audio by presigned URLs valid SECONDS (they expire in the
                         page: a warning says so)
  --tts-mode M, --model ID, --output-format F, --language L, --stability S, --seed N,
  --concurrency N        ElevenLabs settings for this build
  --force                a block changed in the lesson and in Notion: take the lesson's
                         version (NOTION_ON_CONFLICT=force); e.g. esl-build build --force
                         import:unit1
  --keep-notion          ... keep Notion's, and remember it (NOTION_ON_CONFLICT=keep-notion)

`doit -a` forces nothing (each stage checks its record): use `esl-build rerun` or forget.
exit codes: 0 success, 1 a lesson or stage failed, 2 bad usage or configuration
"""


def run_doit(args: list[str]) -> int:
    """Run doit with esl-build's tasks (no dodo.py needed)."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from esl_build import tasks

    # doit's `run` writes to its `outfile` option, whose default is the sys.stdout of the
    # moment doit was imported: name today's, so a caller that redirects it (an embedding
    # process, a test) gets this run's output.
    namespace = {**vars(tasks), "DOIT_CONFIG": {**tasks.DOIT_CONFIG, "outfile": sys.stdout}}
    try:
        return int(DoitMain(ModuleTaskLoader(namespace), config_filenames=()).run(args))
    except SystemExit as stop:  # a bad configuration, found while loading the tasks
        return stop.code if isinstance(stop.code, int) else 2


# esl-build build's own options (the rest goes to doit), each the CLI form of a variable.
BUILD_FLAGS = {"--max-characters": "ESL_BUILD_MAX_CHARACTERS",
               "--tts-mode": "ELEVENLABS_TTS_MODE", "--model": "ELEVENLABS_MODEL_ID",
               "--output-format": "ELEVENLABS_OUTPUT_FORMAT",
               "--language": "ELEVENLABS_LANGUAGE", "--stability": "ELEVENLABS_STABILITY",
               "--seed": "ELEVENLABS_SEED", "--concurrency": "ELEVENLABS_CONCURRENCY",
               "--presign": "S3_PRESIGN_SECONDS"}
# Flags without a value: each sets its variable to a fixed value.
BUILD_SWITCHES = {"--force": ("NOTION_ON_CONFLICT", "force"),
                  "--keep-notion": ("NOTION_ON_CONFLICT", "keep-notion"),
                  "--public-read": ("S3_PUBLIC_READ", "1")}
URL_FLAGS = ("--public-read", "--presign")  # how S3 audio is linked: s3 storage only


def run_build(args: list[str]) -> int:
    """``esl-build build [--dry-run] [--max-characters N] [--tts-mode M] ... [DOIT ARGS]``.

    The flags are resolved like their variables (BUILD_FLAGS, BUILD_SWITCHES). Before doit
    starts, the characters the build would bill are planned: ``--dry-run`` prints the plan and stops
    (nothing is sent anywhere); over ``--max-characters`` the build is refused (exit 2)."""
    import os

    from esl_build.stages import tts

    overrides: dict[str, str] = {}
    dry_run, rest, given = False, [], set()
    words = iter(args)
    for word in words:
        name, eq, value = word.partition("=")
        if word == "--dry-run":
            dry_run = True
        elif word in BUILD_SWITCHES:
            variable, value = BUILD_SWITCHES[word]
            if overrides.get(variable, value) != value:
                print("esl-build build: --force and --keep-notion exclude each other",
                      file=sys.stderr)
                return 2
            overrides[variable] = value
            given.add(word)
        elif name in BUILD_FLAGS:
            value = value if eq else next(words, "")
            if not value:
                print(f"esl-build build: {name} needs a value", file=sys.stderr)
                return 2
            overrides[BUILD_FLAGS[name]] = value
            given.add(name)
        else:
            rest.append(word)
    try:
        project = Project(Settings.resolve(env={**os.environ, **overrides}))
        url_flags = [flag for flag in URL_FLAGS if flag in given]
        if url_flags and project.settings.storage != "s3":
            raise ConfigInvalid(f"{' and '.join(url_flags)}: these choose how audio in S3 is "
                                "linked; set S3_BUCKET (s3 storage) to use them")
        # The flags are their variables: the doit run below (and `plan`) resolve its settings
        # from this process's environment, as for `doit`.
        os.environ.update(overrides)
        limit, where = tts.character_limit(project)
        if dry_run or limit is not None:
            cost = tts.planned(project, project.lesson_ids())
            print(f"esl-build: this build would bill {cost.characters} characters in "
                  f"{cost.requests} request(s) to {project.voice.name}"
                  + (f" (limit {limit})" if limit is not None else ""))
            if dry_run:
                return 0 if cmd_plan(argparse.Namespace(ids=[], json=False)) == 0 else 1
            if limit is not None and cost.characters > limit:
                raise ConfigInvalid(f"refusing to build: {cost.characters} characters is "
                                    f"more than {limit} ({where}); nothing was sent")
    except EslBuildError as error:
        print(f"esl-build: {error}", file=sys.stderr)
        return error.exit_code
    return run_doit(rest)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="esl-build", description="Publish ESL homework lessons from Markdown. Build with "
        "`doit` (or `esl-build build`); these commands check, plan and inspect.",
        epilog="exit codes: 0 success, 1 a lesson or stage failed, 2 bad usage or configuration",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("validate", help="check lessons (see esl-build validate --help)")
    sub.add_parser("build", help="run the build graph (see esl-build build --help)")

    plan = sub.add_parser("plan", help="list stale stages with the reason and estimated cost")
    plan.add_argument("ids", nargs="*", metavar="ID", help="lesson ids (default: all)")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.set_defaults(handler=cmd_plan)

    status = sub.add_parser("status", help="summarise lesson manifests")
    status.add_argument("ids", nargs="*", metavar="ID", help="lesson ids (default: all)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)

    rerun = sub.add_parser("rerun", help="force stages of one lesson, without upstream")
    rerun.add_argument("id", metavar="ID", help="lesson id, e.g. unit1 or b1/unit1")
    rerun.add_argument("--steps", default="upload,add-audio",
                       help="comma-separated stages (default: upload,add-audio)")
    rerun.set_defaults(handler=cmd_rerun)

    init = sub.add_parser("init", help="scaffold a lessons repository that builds at once")
    init.add_argument("dir", type=Path, help="folder to create (must be empty or missing)")
    init.set_defaults(handler=cmd_init)

    manifests = sub.add_parser("manifests", help="push|pull manifests between files and S3")
    manifests.add_argument("direction", choices=("push", "pull"),
                           help="push: lessons/*.manifest.json → S3; pull: S3 → files")
    manifests.add_argument("ids", nargs="*", metavar="ID", help="lesson ids (default: all)")
    manifests.set_defaults(handler=cmd_manifests)

    env = sub.add_parser("env", help="the environment variables esl-build reads")
    env.set_defaults(handler=cmd_env)

    serve = sub.add_parser("serve", help="run the HTTP worker: POST /jobs, GET /jobs/ID, "
                           "/healthz, /metrics (needs fastapi and uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--cwd", type=Path, default=None,
                       help="the lessons repository (default: the current folder)")
    serve.set_defaults(handler=cmd_serve)

    voices = sub.add_parser("voices", help="the ElevenLabs voice catalog")
    voices_sub = voices.add_subparsers(dest="voices_command", metavar="ACTION", required=True)
    sync = voices_sub.add_parser("sync", help="rewrite configs/elevenlabs.voices.json from "
                                 "the account's voices (needs ELEVENLABS_API_KEY)")
    sync.set_defaults(handler=cmd_voices_sync)
    worker = sub.add_parser("worker", help="run a queue worker: jobs from ESL_BUILD_QUEUE_URL "
                            "(needs celery: pip install 'esl-build[queue]')")
    worker.add_argument("--concurrency", type=int, default=1,
                        help="jobs at once (default 1)")
    worker.add_argument("--pool", choices=("prefork", "threads", "solo"), default="prefork",
                        help="prefork: a process per job (default); threads; solo")
    worker.add_argument("--loglevel", default="INFO", help="worker log level (default INFO)")
    worker.add_argument("--cwd", type=Path, default=None,
                        help="the lessons repository (default: ESL_BUILD_ROOT, else the "
                        "current folder)")
    worker.set_defaults(handler=cmd_worker)
    return parser


def _ids(project: Project, wanted: list[str]) -> list[str]:
    known = project.lesson_ids()
    missing = [i for i in wanted if i not in known]
    if missing:
        folder = project.settings.relative(project.settings.lessons_dir)
        raise ConfigInvalid(f"unknown lesson id(s): {', '.join(missing)}; lessons under "
                            f"{folder}: {', '.join(known) or '(none)'}")
    return wanted or known


def cmd_plan(args: argparse.Namespace) -> int:
    from esl_build.stages import STAGES, Cost, estimate, status, upload

    project = Project(Settings.resolve())
    rows, total = [], Cost()
    seen: set[str] = set()  # requests counted already: lessons sharing a line bill it once
    for lesson_id in _ids(project, args.ids):
        for stage in STAGES:
            current = status(project, stage, lesson_id)
            if not current.stale:
                continue
            cost = estimate(project, current, seen)
            total += cost
            row = {"task": f"{stage}:{lesson_id}", "reason": current.reason,
                   **cost.to_json(), "blocks": cost.blocks}
            if stage == "upload" and current.plan and project.storage.remote:  # its URL
                row["url"] = upload.planned(project, current.plan)["url"]
            rows.append(row)
    if args.json:
        print(json.dumps({"stale": rows, "total": {**total.to_json(), "blocks": total.blocks}},
                         indent=2))
        return 0
    for row in rows:
        extra = (f"  [{row['characters']} chars, {row['requests']} requests"
                 + (f", {row['blocks']} new blocks" if row["blocks"] else "") + "]"
                 if row["characters"] or row["requests"] else "")
        url = f"\n    → {row['url']}" if row.get("url") else ""
        print(f"{row['task']}: {row['reason']}{extra}{url}")
    print(f"{len(rows)} stale stage(s); estimated {total.characters} characters to synthesise, "
          f"{total.requests} requests to send"
          + (f", {total.blocks} Notion blocks to create" if total.blocks else ""))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from esl_build.stages import STAGES, status

    project = Project(Settings.resolve())
    report: list[dict[str, Any]] = []
    failures = project.failures.read()
    for lesson_id in _ids(project, args.ids):
        stages: dict[str, dict[str, Any]] = {}
        manifest = project.store.read(lesson_id) or {}
        failed = failures.get(lesson_id) or {}
        for stage in STAGES:
            current = status(project, stage, lesson_id)
            record = (manifest.get("stages") or {}).get(stage) or {}
            state = ("done" if not current.stale else "failed" if stage in failed
                     else "stale")
            reason = failed[stage]["message"] if state == "failed" else current.reason
            stages[stage] = {"state": state, "reason": reason, "backend": record.get("backend"),
                             "finishedAt": record.get("finishedAt"),
                             "outputs": record.get("outputs", {})}
        report.append({"lesson": lesson_id, "manifest": project.store.location(lesson_id),
                       "stages": stages})
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    for entry in report:
        print(f"{entry['lesson']}  ({entry['manifest']})")
        for stage, info in entry["stages"].items():
            outputs = info["outputs"]
            where = outputs.get("url") or outputs.get("mp3") or outputs.get("lessonJson") or ""
            state = "✓" if info["state"] == "done" else f"{info['state']}: {info['reason']}"
            state = state.replace("\n", "\n" + " " * 13)  # a failure's further problems
            print(f"  {stage:<10} {state}  {where}".rstrip())
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    from esl_build import stages
    from esl_build.reporter import format_summary

    project = Project(Settings.resolve())
    [lesson_id] = _ids(project, [args.id])
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in steps if s not in stages.STAGES]
    if unknown or not steps:
        raise ConfigInvalid(f"--steps: unknown stage(s) {', '.join(unknown) or '(none)'}; "
                            f"choose from {', '.join(stages.STAGES)}")
    counts: Counter[tuple[str, str]] = Counter()
    characters = requests = 0
    for stage in [s for s in stages.STAGES if s in steps]:  # always in pipeline order
        try:
            result = stages.run(project, stage, lesson_id, force=True)
        except EslBuildError as error:
            counts[(stage, "failed")] += 1
            print(format_summary(counts, characters, requests), end="")
            print(f"esl-build: {stage}:{lesson_id}: {error}", file=sys.stderr)
            return 1
        print(f".  {stage}:{lesson_id}")
        counts[(stage, "ran")] += 1
        characters += result.cost.characters
        requests += result.cost.requests
    print(format_summary(counts, characters, requests), end="")
    return 0


def cmd_voices_sync(args: argparse.Namespace) -> int:
    from esl_build.services.elevenlabs import ElevenLabsVoice

    project = Project(Settings.resolve())
    voice = project.voice
    if not isinstance(voice, ElevenLabsVoice):
        raise ConfigInvalid("esl-build voices sync reads the voices of an ElevenLabs account: "
                            "set ELEVENLABS_API_KEY (and unset ESL_BUILD_VOICE=espeak)")
    path, count, changed = voice.sync_catalog()
    print(f"{'wrote' if changed else 'unchanged:'} {count} voices "
          f"{'to' if changed else 'in'} {project.relative(path)}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from esl_build.scaffold import scaffold

    created = scaffold(args.dir)
    print(f"created {len(created)} files in {args.dir}; next: cd {args.dir} && doit")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    import os

    from esl_build.settings import ENV_VARS, Settings

    settings = Settings.resolve()
    for name, description in ENV_VARS.items():
        value = os.environ.get(name)
        secret = any(s in name for s in ("TOKEN", "KEY", "SECRET")) or "(secret)" in description
        shown = "(set)" if value and secret else value or ""
        print(f"{name:<28} {shown:<24} {description}")
    print("backends: " + " ".join(f"{k}={v}" for k, v in settings.backends.items()))
    return 0


def cmd_manifests(args: argparse.Namespace) -> int:
    """Copy manifests between the file store and the S3 store (ESL_PIPELINE_MANIFEST_*)."""
    from esl_build.settings import Settings
    from esl_build.state.migrate import copy_manifests
    from esl_build.state.s3_store import S3ManifestStore
    from esl_build.state.stores import FileManifestStore, places_of

    settings = Settings.resolve()
    files = FileManifestStore(settings.lessons_dir, settings.build_dir / ".locks",
                              root=settings.root, places=places_of(settings))
    remote = S3ManifestStore.from_settings(settings)
    source, target = (files, remote) if args.direction == "push" else (remote, files)
    moved = copy_manifests(source, target, args.ids or None)
    for lesson_id in moved.copied:
        print(f"copied     {lesson_id} → {target.location(lesson_id)}")
    for lesson_id in moved.unchanged:
        print(f"unchanged  {lesson_id}")
    for lesson_id, why in moved.refused.items():
        print(f"refused    {lesson_id}: {why}", file=sys.stderr)
    return 1 if moved.refused else 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from esl_build.service import serve
    except ImportError as error:
        raise ConfigInvalid(f"esl-build serve needs {error.name}: pip install "
                            "'esl-build[service]'") from None
    serve(args.host, args.port, args.cwd)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    if not 1 <= args.concurrency <= 64:
        raise ConfigInvalid("--concurrency must be a whole number from 1 to 64")
    try:
        from esl_build.queue import JobQueue
    except ImportError as error:
        raise ConfigInvalid(f"esl-build worker needs {error.name}: pip install "
                            "'esl-build[queue]'") from None
    JobQueue.from_environment(root=args.cwd).run_worker(
        concurrency=args.concurrency, pool=args.pool, loglevel=args.loglevel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
