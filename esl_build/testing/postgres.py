"""A throwaway PostgreSQL server on 127.0.0.1, for tests of the postgres manifest store.

``with PostgresServer.start() as server: ... server.dsn ...`` runs ``initdb`` into a fresh
folder and ``pg_ctl start`` on a free port (trust authentication, loopback only, fsync off),
and removes everything on exit. PostgreSQL refuses to run as root, so under root the server
runs as the ``postgres`` user (which Debian's ``postgresql`` package creates).

``PostgresServer.available()`` says why not when no server binaries are installed
(``apt-get install postgresql``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def _binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (Debian keeps them off PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(folder, "initdb")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server; ``dsn`` connects to its ``postgres`` database as user ``esl``."""

    folder: Path
    port: int
    bin_dir: Path

    @property
    def dsn(self) -> str:
        return f"postgresql://esl@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def available() -> str:
        """Empty when a server can be started here, else the reason."""
        if _binaries() is None:
            return "PostgreSQL server binaries not installed (apt-get install postgresql)"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser to start PostgreSQL as another user"
        return ""

    @classmethod
    @contextlib.contextmanager
    def start(cls) -> Iterator[PostgresServer]:
        why = cls.available()
        if why:
            raise RuntimeError(why)
        bin_dir = _binaries()
        assert bin_dir is not None
        folder = Path(tempfile.mkdtemp(prefix="esl-pg-"))
        server = cls(folder, _free_port(), bin_dir)
        try:
            if os.geteuid() == 0:
                shutil.chown(folder, "postgres", "postgres")
            server._run("initdb", "-D", str(folder / "data"), "-U", "esl", "--auth=trust",
                        "--no-sync", "-E", "UTF8")
            options = (f"-p {server.port} -c listen_addresses=127.0.0.1 "
                       f"-c unix_socket_directories={folder} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off")
            server._run("pg_ctl", "-D", str(folder / "data"), "-o", options, "-w",
                        "-l", str(folder / "server.log"), "start")
            yield server
        finally:
            with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
                server._run("pg_ctl", "-D", str(folder / "data"), "-m", "immediate", "stop")
            shutil.rmtree(folder, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.folder, timeout=120)
