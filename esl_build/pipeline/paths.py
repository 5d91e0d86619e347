"""A caller's ``md`` → a lesson id, never a path outside the lessons folder.

Accepted: ``lessons/<id>.md`` (relative to the lessons repository), a lesson id (``unit1``,
``b1/unit1``), a path under the lessons folder (``b1/unit1.md``), or an absolute path inside
it. Refused with a ``ValidationError`` naming ``md``: ``..`` parts, backslashes, control
characters, hidden folders, files that are not ``.md``, anything that resolves (through
symlinks too) outside the lessons folder, and lessons that do not exist.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from esl_build.errors import ValidationError
from esl_build.settings import Settings


def lesson_id_for(md: str, settings: Settings) -> str:
    """The lesson id ``md`` names inside ``settings.lessons_dir``."""
    lessons = os.path.realpath(settings.lessons_dir)
    if any(ord(c) < 32 for c in md) or "\\" in md:
        raise _bad("must not contain control characters or backslashes")
    if os.path.isabs(md):
        relative = _inside(os.path.normpath(md), os.path.normpath(settings.lessons_dir))
        if relative is None:
            raise _bad("is outside the lessons folder")
    else:
        relative = md
        prefix = settings.relative(settings.lessons_dir) + "/"
        if relative.startswith(prefix) and relative.endswith(".md"):
            relative = relative[len(prefix):]
    parts = PurePosixPath(relative).parts
    if not parts or any(p in ("..", ".") or p.startswith(".") for p in parts):
        raise _bad("must name a lesson under the lessons folder, without '..' or hidden parts")
    if not relative.endswith(".md") and "." in parts[-1]:
        raise _bad("must be a lesson id or a .md file")
    lesson_id = "/".join(parts)[:-3] if relative.endswith(".md") else "/".join(parts)
    if not lesson_id:
        raise _bad("must be a lesson id or a .md file")
    source = os.path.join(lessons, lesson_id + ".md")
    real = os.path.realpath(source)
    if _inside(real, lessons) is None:
        raise _bad("resolves outside the lessons folder")
    if not os.path.isfile(real):
        raise ValidationError(f"md: no lesson {lesson_id!r} under "
                              f"{settings.relative(settings.lessons_dir)}/", field="md")
    return lesson_id


def _inside(path: str, folder: str) -> str | None:
    """``path`` relative to ``folder`` (posix), or None when it is not inside it."""
    try:
        if os.path.commonpath([path, folder]) != folder or path == folder:
            return None
    except ValueError:
        return None
    return os.path.relpath(path, folder).replace(os.sep, "/")


def _bad(why: str) -> ValidationError:
    return ValidationError(f"md {why}", field="md")
