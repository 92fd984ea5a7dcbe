"""A private MongoDB-compatible server for the test session, and a fresh database per test.

The server is SecantusDB (``secantusd-py``, pinned in the ``test`` extra), a MongoDB wire-protocol
server that presents itself as a one-node replica set, so pymongo runs transactions on it. It is
GPL-2.0: only ever started as a separate process, never imported.

- ``mongo_url`` (session): ``JOBIMPORTER_TEST_MONGODB_URL`` when set (a real MongoDB replica set,
  opt-in), else a SecantusDB started on a free port with its data in a temp dir and stopped when the
  session ends;
- ``mongo_database_url`` (function): that server with a database ``t_<uuid>`` of the test's own,
  dropped afterwards, so tests never see each other's documents;
- ``SecantusServer``: start, stop and restart one; tests that stop the server or arm fail points
  start one of their own even when a real MongoDB is given.

A session that dies without running its finalizers would leave a server running, so each start
also spawns a small detached watchdog that stops the server (and removes a directory it owns) once
the pytest process is gone.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.errors import PyMongoError

# Read once at import: the per-test ``clean_environ`` fixture removes JOBIMPORTER_* variables.
EXTERNAL_URL = os.environ.get("JOBIMPORTER_TEST_MONGODB_URL", "").strip() or None
_READY_TIMEOUT_S = 60.0

# argv: pytest pid, server pid, directory to remove ("" = none)
_WATCHDOG = """
import os, shutil, signal, sys, time
pid, server, remove = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def alive(p):
    try:
        os.kill(p, 0)
    except ProcessLookupError:
        return False
    return True
while alive(pid):
    time.sleep(1)
if alive(server):
    os.kill(server, signal.SIGTERM)
    for _ in range(100):
        if not alive(server):
            break
        time.sleep(0.1)
    else:
        os.kill(server, signal.SIGKILL)
if remove:
    shutil.rmtree(remove, ignore_errors=True)
"""


def secantusd() -> str:
    """The ``secantusd-py`` launcher of the environment running the tests."""
    beside = Path(sys.executable).with_name("secantusd-py")
    found = str(beside) if beside.exists() else shutil.which("secantusd-py")
    if found is None:
        raise RuntimeError("tests: secantusd-py not found; install the test extra: pip install -e '.[test]'")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class SecantusServer:
    """One SecantusDB process on 127.0.0.1, its data in ``storage``; ``extra_args`` go to the launcher
    (``--standalone``, ``--enable-test-commands``). The port stays the same across restarts."""

    def __init__(self, storage: Path, *, extra_args: Sequence[str] = (), owned_dir: Path | None = None):
        self.storage = storage
        self.port = free_port()
        self.extra_args = tuple(extra_args)
        self.owned_dir = owned_dir  # removed by the watchdog if pytest dies
        self.log = storage.parent / f"secantus-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        assert self._process is not None, "not running"
        return self._process.pid

    def start(self) -> None:
        args = [secantusd(), "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--storage-path", str(self.storage), "--log-level", "WARNING", *self.extra_args]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        watch = [str(os.getpid()), str(self._process.pid), str(self.owned_dir or "")]
        self._watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, *watch], start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Until the server answers ``ping`` (it opens its storage first, about a second)."""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        with MongoClient(self.url, serverSelectionTimeoutMS=250, directConnection=True) as client:
            while True:
                try:
                    client.admin.command("ping")
                    return
                except PyMongoError:
                    if (
                        self._process is None
                        or self._process.poll() is not None
                        or time.monotonic() > deadline
                    ):
                        self.stop()
                        raise RuntimeError(f"tests: SecantusDB did not start: {self._log_tail()}") from None

    def _log_tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return " | ".join(text.strip().splitlines()[-5:]) or "no output"

    def stop(self) -> None:
        """SIGTERM and wait until it has exited (its storage is unlocked then)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.terminate()
            watchdog.wait()


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    if EXTERNAL_URL is not None:
        yield EXTERNAL_URL
        return
    parent = Path(tempfile.mkdtemp(prefix="jobimporter-mongotest-"))
    server = SecantusServer(parent / "data", owned_dir=parent)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)


def with_database(url: str, database: str, **options: str) -> str:
    """``url`` naming ``database`` (its other options kept, ``options`` added)."""
    parts = urlsplit(url)
    query = "&".join([*filter(None, [parts.query]), *(f"{k}={v}" for k, v in options.items())])
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", query, ""))


@pytest.fixture
async def mongo_database_url(mongo_url: str) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex}"
    yield with_database(mongo_url, name)
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@pytest.fixture
def own_mongo() -> Iterator[SecantusServer]:
    """A SecantusDB of the test's own (started, fail points enabled), for tests that stop it or arm
    fail points."""
    parent = Path(tempfile.mkdtemp(prefix="jobimporter-mongo-own-"))
    server = SecantusServer(parent / "data", extra_args=["--enable-test-commands"], owned_dir=parent)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)
