"""Files written safely: inter-process (and inter-thread) locks, and atomic replacement."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from esl_build.errors import LeaseHeld

_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float | None = None, what: str = "") -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing).

    Each call opens its own file description, so threads of one process exclude each other
    as well as other processes. With ``timeout``, raise ``LeaseHeld`` when it runs out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LeaseHeld(f"{what or path} is held by another worker; "
                                        "try again when it has finished") from None
                    time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def atomic_path(dest: Path, *, locked: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; when the block succeeds, fsync it and move it
    over ``dest``. Readers see the old or the complete new file, never a mix; on error the
    temp file is removed and ``dest`` is left as it was. Parent folders are created.

    ``locked``: the caller holds a lock that excludes every other writer of ``dest``, so the
    temp file is always ``.<name>.tmp``; a killed writer's leftover is reused by the next
    write instead of accumulating."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if locked:
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.unlink(missing_ok=True)  # a leftover, or a planted symlink: never write through it
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    else:
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        tmp = Path(name)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are meant to be read
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes, *, locked: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_path``)."""
    with atomic_path(path, locked=locked) as tmp:
        tmp.write_bytes(data)


def relative_to(path: Path | str, root: Path | str) -> str | None:
    """``path`` relative to ``root``, posix style, or None when it lies outside ``root``."""
    text, base = os.fspath(path), os.fspath(root).rstrip(os.sep)
    if text.startswith(base + os.sep):  # the common case, without touching the disk
        return text[len(base) + 1:].replace(os.sep, "/")
    try:
        return Path(text).resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return None


def contains(folder: Path | str, path: Path | str) -> bool:
    """Whether ``path`` lies inside ``folder`` once symlinks and ``..`` are resolved (for
    paths read from untrusted files, checked before anything is written there)."""
    base = os.path.realpath(folder)
    return os.path.realpath(path).startswith(base.rstrip(os.sep) + os.sep)


def shown(path: Path | str, root: Path | str) -> str:
    """How messages and manifests name a file: relative to the project root when inside it."""
    relative = relative_to(path, root)
    return relative if relative is not None else Path(path).as_posix()

