"""Alembic environment for the SQL store.

``SQLStore.start()`` runs migrations in-process: it opens a transaction on its async engine, takes
the migration lock, and hands the sync side of that connection in through
``config.attributes["connection"]`` (via ``AsyncConnection.run_sync``). Run from the ``alembic``
command line instead (e.g. ``alembic -x url=sqlite+aiosqlite:///dev.db revision --autogenerate``),
this file builds its own async engine from ``-x url=...`` or ``sqlalchemy.url``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from jobimporter.store.schema import VERSION_TABLE, metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("store: migrations need a connection (SQLStore.start) or -x url=...")
    asyncio.run(_run_standalone(url))


if context.is_offline_mode():
    raise RuntimeError("store: offline (--sql) migrations are not supported")
_main()
