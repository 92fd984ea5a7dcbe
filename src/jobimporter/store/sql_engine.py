"""Engines for the SQL store: building one per dialect, its capability flags, SQLite's locking rules,
and running the Alembic migrations at start.

SQLite: WAL, a 30 s busy timeout and foreign keys on every connection; the driver's own transaction
handling is switched off so that we emit ``BEGIN`` ourselves, ``BEGIN IMMEDIATE`` for writes, so
concurrent writers (tasks or processes) queue on the lock instead of failing half-way, and
SAVEPOINTs work. PostgreSQL: a pool sized for about ten concurrent tasks; concurrent migrations are
serialized with a transaction-scoped advisory lock.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from jobimporter.errors import ConfigError
from jobimporter.store.schema import VERSION_TABLE

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 30.0
# Execution option that marks a connection as a writer (SQLite then begins with BEGIN IMMEDIATE).
WRITE_OPTION = "jobimporter_write"
# Key of the PostgreSQL advisory lock that serializes migrations ("jobimpor" as a big-endian int64).
_MIGRATION_LOCK_KEY = int.from_bytes(b"jobimpor", "big")
_SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}",
    # With WAL: no corruption and no loss on an app crash; a power cut may lose the last commits
    # (a batch and its recorded result together), for far fewer fsyncs.
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)
_SQLITE_WAL = "PRAGMA journal_mode = WAL"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the connected dialect can do, decided once in ``SQLStore.start()``."""

    dialect: str
    advisory_locks: bool  # PostgreSQL: serialize migrations across processes
    immediate_writes: bool  # SQLite: writers take the database lock up front
    array_binds: bool  # PostgreSQL: bulk statements bind whole columns as arrays (see sql_upserts)
    copy_new_rows: bool  # PostgreSQL over asyncpg: jobs not stored yet go in with COPY (see sql_upserts)
    max_bind_params: int  # stay under it when a query lists many keys
    jsonb: bool  # PostgreSQL: JSON list membership with jsonb's ``?``; SQLite: ``json_each`` (sql_queries)

    @classmethod
    def of(cls, engine: AsyncEngine) -> Capabilities:
        name = engine.dialect.name
        if name not in ("postgresql", "sqlite"):
            raise ConfigError(f"store: unsupported SQL dialect {name!r}")
        is_pg = name == "postgresql"
        return cls(
            dialect=name,
            advisory_locks=is_pg,
            immediate_writes=not is_pg,
            array_binds=is_pg,
            copy_new_rows=is_pg and engine.dialect.driver == "asyncpg",
            max_bind_params=32_000 if is_pg or sqlite3.sqlite_version_info >= (3, 32) else 999,
            jsonb=is_pg,
        )

    def insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that can take ``ON CONFLICT`` clauses in this dialect."""
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)


def create_engine(url: str | URL, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine for an ``sqlite+aiosqlite`` or ``postgresql+asyncpg`` URL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_async_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, **_sqlite_pool(parsed)
        )
        install_sqlite_hooks(engine)
        return engine
    if backend == "postgresql":
        return create_async_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size // 2,
            pool_timeout=30,
            pool_recycle=1800,
            connect_args={
                "timeout": 10,  # connect
                "command_timeout": 60,
                "server_settings": {"application_name": "jobimporter"},
            },
        )
    raise ConfigError(f"store: SQLStore needs an sqlite or postgresql URL, not {parsed.drivername!r}")


def _sqlite_pool(url: URL) -> dict[str, Any]:
    if url.database not in (None, "", ":memory:"):
        return {}  # SQLAlchemy's default: a queue pool of file connections
    # Each connection to ":memory:" is a database of its own, and SQLAlchemy's default for it
    # (one connection shared by every task) breaks when two tasks open transactions at once. One
    # pooled connection handed out to one task at a time keeps one database and queues the tasks.
    return {"poolclass": AsyncAdaptedQueuePool, "pool_size": 1, "max_overflow": 0}


def install_sqlite_hooks(engine: AsyncEngine) -> None:
    """Set SQLite's pragmas on each new connection and let us issue BEGIN (idempotent)."""
    if not event.contains(engine.sync_engine, "connect", _sqlite_on_connect):
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # The sqlite3 module would otherwise BEGIN DEFERRED on its own before DML and commit before
    # DDL, which breaks IMMEDIATE locking and SAVEPOINTs.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent, so usually a no-op).

    Two processes opening a new database at once both try the switch, and SQLite answers one of
    them "database is locked" at once, without waiting (that would deadlock). The other's switch
    applies to the file, and this connection follows it from its next transaction, so that answer
    is harmless."""
    try:
        cursor.execute(_SQLITE_WAL)
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        logger.debug("store: another connection is switching the SQLite file to WAL (%s)", exc)


def _sqlite_on_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def _alembic_config(connection: Connection) -> Config:
    config = Config()  # no alembic.ini: everything the environment needs is set here
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> str | None:
    command.upgrade(_alembic_config(connection), "head")
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


async def migrate(write_engine: AsyncEngine, caps: Capabilities) -> str | None:
    """Bring the schema to the newest revision, one process at a time; returns that revision."""
    async with write_engine.begin() as conn:
        if caps.advisory_locks:
            # Transaction-scoped: released by the COMMIT that also publishes the new schema.
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        # On SQLite the write engine's BEGIN IMMEDIATE already holds the database lock.
        revision = await conn.run_sync(_upgrade)
    logger.info("store: %s schema at revision %s", caps.dialect, revision)
    return revision
