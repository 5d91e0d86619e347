"""``esl-build validate PATH... [--strict] [--json]``."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from esl_build.errors import EslBuildError
from esl_build.lesson.report import validate_paths


def run_validate(argv: list[str]) -> int:
    """Validate lessons; print problems and a summary. Exit code: 0 ok, 1 errors, 2 usage."""
    parser = argparse.ArgumentParser(
        prog="esl-build validate",
        description="Check lessons (files, or folders searched for *.md) without publishing.")
    parser.add_argument("paths", nargs="+", type=pathlib.Path, metavar="PATH")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument("--json", action="store_true", help="print a machine-readable report")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage message
        return int(exc.code or 0)
    try:
        report = validate_paths(args.paths, strict=args.strict)
    except EslBuildError as exc:
        print(f"esl-build validate: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(report.format_text())
    return 0 if report.ok else 1
