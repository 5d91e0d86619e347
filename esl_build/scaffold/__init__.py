"""``esl-build init DIR``: a lessons repository that builds with ``doit`` at once."""

from __future__ import annotations

import shutil
from pathlib import Path

from esl_build.errors import ConfigInvalid

_HERE = Path(__file__).parent
_RENAMES = {"gitignore": ".gitignore", "github": ".github"}  # packaged without leading dots


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
        created.append(dest)
    return created
