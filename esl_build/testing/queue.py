"""A throwaway Redis and queue workers, for esl-build's queue tests and benchmarks.

::

    with RedisServer() as redis, QueueWorkers(repo, redis.url, count=2) as workers:
        queue = JobQueue(Settings.resolve(env=workers.env).queue)
        queue.enqueue({"md": "unit1"})

``RedisServer`` runs the real ``redis-server`` on a free port of 127.0.0.1, in memory
(``--save "" --appendonly no``), and stops it on exit. ``QueueWorkers`` starts
``esl-build worker`` processes over a ``LessonsRepo`` and kills what is left of them on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from esl_build.testing.repo import LessonsRepo

__all__ = ["QueueWorkers", "RedisServer", "free_port"]


def free_port() -> int:
    """A TCP port nothing listens on at the moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` on 127.0.0.1 for the length of a ``with`` block."""

    def __init__(self, folder: Path | None = None):
        self.port = free_port()
        self.folder = folder
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--protected-mode", "yes"]
        if self.folder is not None:
            command += ["--dir", str(self.folder)]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("redis-server exited at start")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer within 10 s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


class QueueWorkers:
    """``count`` ``esl-build worker`` processes over ``repo``, fed from ``broker_url``.

    ``env`` is the environment they run with (the repo's, the queue's, ``extra``); pass it to
    ``Settings.resolve`` to enqueue to the same queue. Each worker's log is a file in
    ``log_dir`` (default: the repo's ``build/`` folder)."""

    def __init__(self, repo: LessonsRepo, broker_url: str, *, count: int = 1,
                 concurrency: int = 1, pool: str = "prefork",
                 extra: dict[str, str] | None = None, log_dir: Path | None = None):
        self.repo = repo
        self.count, self.concurrency, self.pool = count, concurrency, pool
        self.env = repo.process_env({"ESL_BUILD_QUEUE_URL": broker_url,
                                     "ESL_BUILD_ROOT": str(repo.root), **(extra or {})})
        self.log_dir = log_dir or repo.root / "build"
        self.processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def start_one(self) -> subprocess.Popen[bytes]:
        """Start one more worker process."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"worker-{len(self.processes)}.log", "wb")  # noqa: SIM115
        self._logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "esl_build.cli", "worker", "--concurrency",
             str(self.concurrency), "--pool", self.pool, "--loglevel", "INFO"],
            cwd=self.repo.root, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: stop() reaches its children
        self.processes.append(process)
        return process

    def wait_ready(self, timeout: float = 30) -> None:
        """Until every worker process has said it is ready to consume."""
        deadline = time.monotonic() + timeout
        for index, process in enumerate(self.processes):
            path = self.log_dir / f"worker-{index}.log"
            while b" ready." not in path.read_bytes():
                if process.poll() is not None:
                    raise RuntimeError(f"worker {index} exited:\n{self.log(index)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {index} not ready:\n{self.log(index)}")
                time.sleep(0.05)

    def log(self, index: int) -> str:
        return (self.log_dir / f"worker-{index}.log").read_text(errors="replace")

    def start(self) -> QueueWorkers:
        for _ in range(self.count):
            self.start_one()
        self.wait_ready()
        return self

    def stop(self) -> None:
        """Warm shutdown (SIGTERM: running jobs finish), then SIGKILL what is left."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for log in self._logs:
            log.close()

    def __enter__(self) -> QueueWorkers:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

