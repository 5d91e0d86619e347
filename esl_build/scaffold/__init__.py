"""``esl-build init DIR``: a lessons repository that builds with ``doit`` at once.

Besides ``dodo.py``, configs and an example lesson it writes a README, a ``.gitignore``, and
the CI workflow with the scripts it runs (``.github/scripts/``). CI installs what
``requirements.txt`` names; esl-build is on no public index, so that file names no esl-build
(and CI stops saying so) unless the running esl-build was installed from a place CI can reach:
a git repository or an archive over https (its PEP 610 ``direct_url.json`` says so).
"""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from esl_build.errors import ConfigInvalid

_HERE = Path(__file__).parent
_RENAMES = {"gitignore": ".gitignore", "github": ".github"}  # packaged without leading dots
_REQUIREMENTS = "requirements.txt"


def scaffold(target: Path) -> list[Path]:
    """Copy the scaffold into ``target`` (missing or empty); return the files created."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigInvalid(f"{target} exists and is not an empty folder; choose a new folder")
    created = []
    for source in sorted(_HERE.rglob("*")):
        relative = source.relative_to(_HERE)
        if source.is_dir() or relative.name in ("__init__.py",) or "__pycache__" in relative.parts:
            continue
        parts = [_RENAMES.get(part, part) for part in relative.parts]
        dest = target.joinpath(*parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        if dest.suffix == ".sh":
            dest.chmod(0o755)  # wheels need not keep modes; the workflow runs them with bash
        created.append(dest)
    requirement = installed_requirement()
    if requirement:
        with open(target / _REQUIREMENTS, "a", encoding="utf-8") as file:
            file.write(f"{requirement}\n")
    return created


def installed_requirement() -> str | None:
    """The requirement line installing this esl-build from where it came, or None when that
    place is not one CI can reach (an index, a local folder or file)."""
    try:
        text = metadata.distribution("esl-build").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    try:
        return requirement_from(json.loads(text)) if text else None
    except (ValueError, AttributeError):
        return None


def requirement_from(direct_url: dict[str, Any]) -> str | None:
    """A pinned requirement line for a PEP 610 ``direct_url.json``, or None.

    Git over https pins the commit (``esl-build @ git+https://…@<commit>``); an https archive
    is named as it is. Anything else (``file:``, an editable folder, a URL with credentials in
    it) gives None: it would not work in CI, or would put a secret in a committed file."""
    url = direct_url.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme != "https" or "@" in urlsplit(url).netloc:
        return None
    vcs = direct_url.get("vcs_info")
    if isinstance(vcs, dict):
        if vcs.get("vcs") != "git" or not vcs.get("commit_id"):
            return None
        subdirectory = direct_url.get("subdirectory")
        suffix = f"#subdirectory={subdirectory}" if subdirectory else ""
        return f"esl-build @ git+{url}@{vcs['commit_id']}{suffix}"
    if isinstance(direct_url.get("archive_info"), dict):
        return f"esl-build @ {url}"
    return None
