"""``SQLStore``: the ``JobStore`` over SQLAlchemy's async engine, for SQLite and PostgreSQL.

This module owns the store's lifecycle (engine, capability flags, migrations at start) and its
transaction scaffold: every method runs inside ``translated()``, so callers see ``StoreError`` and
never a driver exception, and in a reader or a writer connection (on SQLite, writers take the
database lock up front). The queries live in ``sql_feeds``, ``sql_history``, ``sql_jobs`` and (the
admin API's reads) ``sql_queries``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobimporter.errors import StoreError
from jobimporter.models import (
    BatchKey,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EntryStatus,
    Feed,
    FeedSource,
    ImportEntry,
    ImportRun,
    ItemFailure,
    JobChange,
    JobRecord,
    UpsertResult,
    Webhook,
    WebhookSource,
    utcnow,
)
from jobimporter.store import (
    sql_changes,
    sql_feeds,
    sql_history,
    sql_jobs,
    sql_lifecycle,
    sql_queries,
    sql_webhooks,
)
from jobimporter.store.base import (
    DeliveryQuery,
    EntryChanges,
    EntryLifecycle,
    EntryQuery,
    FeedChanges,
    FeedHealth,
    HistoryEntry,
    HistoryTotals,
    JobQuery,
    JobStore,
    RunQuery,
    StatsSeries,
    StoredJob,
    WebhookChanges,
)
from jobimporter.store.sql_engine import (
    WRITE_OPTION,
    Capabilities,
    create_engine,
    install_sqlite_hooks,
    migrate,
)
from jobimporter.store.sql_errors import translated

logger = logging.getLogger(__name__)


class SQLStore(JobStore):
    """``engine_or_url``: an async SQLAlchemy URL (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``)
    or an ``AsyncEngine``. The store disposes of an engine only if it built it. A SQLite engine handed
    in gets the store's connection hooks (pragmas, BEGIN IMMEDIATE for writes) added at ``start()``,
    so hand it over before it has opened connections."""

    def __init__(self, engine_or_url: str | URL | AsyncEngine, *, pool_size: int = 10) -> None:
        self._url = None if isinstance(engine_or_url, AsyncEngine) else engine_or_url
        self._engine = engine_or_url if isinstance(engine_or_url, AsyncEngine) else None
        self._close_on_exit = self._engine is None
        self._pool_size = pool_size
        self._writer: AsyncEngine | None = None
        self._caps: Capabilities | None = None

    @property
    def engine(self) -> AsyncEngine:
        """The engine in use (after ``start()``)."""
        if self._engine is None:
            raise StoreError("store: not started")
        return self._engine

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        with translated("start"):
            try:
                await self._start()
            except BaseException:
                # ``async with`` skips __aexit__ when __aenter__ fails: release what we built.
                await self.aclose()
                raise

    async def _start(self) -> None:
        if self._engine is None:
            assert self._url is not None
            self._engine = create_engine(self._url, pool_size=self._pool_size)
        caps = Capabilities.of(self._engine)
        if caps.immediate_writes:
            install_sqlite_hooks(self._engine)
        writer = self._engine.execution_options(**{WRITE_OPTION: True})
        await migrate(writer, caps)
        self._caps, self._writer = caps, writer

    async def aclose(self) -> None:
        self._writer = None
        self._caps = None
        if self._engine is not None and self._close_on_exit:
            engine, self._engine = self._engine, None
            with translated("close"):
                await engine.dispose()

    async def ping(self) -> None:
        async with self._reading("ping") as conn:
            await conn.execute(sa.text("SELECT 1"))

    def _ready(self) -> tuple[AsyncEngine, Capabilities]:
        if self._writer is None or self._caps is None:
            raise StoreError("store: not started (call start() or use 'async with store')")
        return self._writer, self._caps

    @asynccontextmanager
    async def _reading(self, action: str) -> AsyncIterator[AsyncConnection]:
        self._ready()
        with translated(action):
            async with self.engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def _writing(self, action: str) -> AsyncIterator[AsyncConnection]:
        """A writer connection in a transaction committed on success."""
        writer, _ = self._ready()
        with translated(action):
            async with writer.begin() as conn:
                yield conn

    # ------------------------------------------------------------ feeds

    async def sync_feeds(self, sources: Sequence[FeedSource]) -> list[Feed]:
        async with self._writing("sync feeds") as conn:
            return await sql_feeds.sync_feeds(conn, self._ready()[1], sources, utcnow())

    async def list_feeds(self, *, enabled_only: bool = False) -> list[Feed]:
        async with self._reading("list feeds") as conn:
            return await sql_feeds.list_feeds(conn, enabled_only=enabled_only)

    async def get_feed(self, feed_id: str) -> Feed:
        async with self._reading("get feed") as conn:
            return await sql_feeds.get_feed(conn, feed_id)

    async def save_feed_validators(self, feed_id: str, etag: str | None, last_modified: str | None) -> None:
        async with self._writing("save feed validators") as conn:
            await sql_feeds.save_feed_validators(conn, feed_id, etag, last_modified)

    async def add_feed(self, source: FeedSource) -> Feed:
        async with self._writing("add feed") as conn:
            return await sql_feeds.add_feed(conn, self._ready()[1], source, utcnow())

    async def update_feed(self, feed_id: str, changes: FeedChanges) -> Feed:
        async with self._writing("update feed") as conn:
            return await sql_feeds.update_feed(conn, feed_id, changes, utcnow())

    async def delete_feed(self, feed_id: str) -> None:
        async with self._writing("delete feed") as conn:
            await sql_feeds.delete_feed(conn, feed_id)

    async def feed_health(
        self, feed_ids: Sequence[str] | None = None, *, window: int = 20
    ) -> dict[str, FeedHealth]:
        async with self._reading("read feed health") as conn:
            return await sql_queries.feed_health(conn, feed_ids, window)

    # ------------------------------------------------------------ runs and entries

    async def create_run(self, run: ImportRun) -> None:
        async with self._writing("create run") as conn:
            await sql_history.create_run(conn, run)

    async def get_run(self, run_id: str) -> ImportRun:
        async with self._reading("get run") as conn:
            return await sql_history.get_run(conn, run_id)

    async def list_runs(
        self, *, limit: int = 20, offset: int = 0, query: RunQuery | None = None
    ) -> list[ImportRun]:
        async with self._reading("list runs") as conn:
            return await sql_history.list_runs(conn, limit=limit, offset=offset, query=query or RunQuery())

    async def count_runs(self, query: RunQuery | None = None) -> int:
        async with self._reading("count runs") as conn:
            return await sql_queries.count_runs(conn, query or RunQuery())

    async def list_entries(
        self, *, limit: int = 20, offset: int = 0, query: EntryQuery | None = None
    ) -> list[HistoryEntry]:
        async with self._reading("list entries") as conn:
            return await sql_history.list_entries(
                conn, limit=limit, offset=offset, query=query or EntryQuery()
            )

    async def count_entries(self, query: EntryQuery | None = None) -> int:
        async with self._reading("count entries") as conn:
            return await sql_queries.count_entries(conn, query or EntryQuery())

    async def get_entry(self, entry_id: str) -> ImportEntry:
        async with self._reading("get entry") as conn:
            return await sql_history.get_entry(conn, entry_id)

    async def update_entry(self, entry_id: str, changes: EntryChanges) -> ImportEntry:
        async with self._writing("update entry") as conn:
            return await sql_history.update_entry(conn, entry_id, changes)

    async def finalize_entry(
        self,
        entry_id: str,
        *,
        status: EntryStatus,
        finished_at: datetime,
        error: str | None = None,
        missing_batches: Sequence[tuple[int, int, str]] = (),
        lifecycle: EntryLifecycle | None = None,
    ) -> ImportEntry:
        async with self._writing("finalize entry") as conn:
            return await sql_history.finalize_entry(
                conn,
                self._ready()[1],
                entry_id,
                status=status,
                finished_at=finished_at,
                error=error,
                missing_batches=missing_batches,
                lifecycle=lifecycle,
            )

    async def reopen_entry(self, entry_id: str) -> ImportEntry:
        async with self._writing("reopen entry") as conn:
            return await sql_history.reopen_entry(conn, entry_id)

    async def prune_history(self, finished_before: datetime) -> int:
        async with self._writing("prune history") as conn:
            return await sql_history.prune_history(conn, finished_before)

    async def busy_feeds(self, feed_ids: Sequence[str]) -> dict[str, str]:
        async with self._reading("read busy feeds") as conn:
            return await sql_history.busy_feeds(conn, feed_ids)

    async def finalize_run_if_done(self, run_id: str, finished_at: datetime) -> ImportRun | None:
        async with self._writing("finalize run") as conn:
            return await sql_history.finalize_run_if_done(conn, run_id, finished_at)

    async def stats(self, *, limit: int = 50) -> StatsSeries:
        async with self._reading("read stats") as conn:
            return await sql_queries.stats(conn, limit)

    async def history_totals(self) -> HistoryTotals:
        async with self._reading("read history totals") as conn:
            return await sql_queries.history_totals(conn)

    # ------------------------------------------------------------ jobs

    async def upsert_batch(
        self,
        key: BatchKey,
        feed_id: str,
        records: Sequence[JobRecord],
        failures: Sequence[ItemFailure] = (),
        *,
        now: datetime,
        seen_refresh_s: float = 86_400,
        known: Sequence[tuple[str, str]] = (),
    ) -> UpsertResult:
        writer, caps = self._ready()
        # upsert_batch manages its own transaction (it may roll back a batch recorded earlier).
        with translated(f"upsert batch {key}"):
            async with writer.connect() as conn:
                return await sql_jobs.upsert_batch(
                    conn, caps, key, feed_id, records, failures,
                    now=now, seen_refresh_s=seen_refresh_s, known=known,
                )  # fmt: skip

    async def raw_hashes(self, keys: Sequence[str]) -> dict[str, str]:
        async with self._reading("read raw hashes") as conn:
            return await sql_jobs.column_by_key(conn, self._ready()[1], "raw_hash", keys)

    async def batch_results(self, entry_id: str) -> dict[int, UpsertResult]:
        async with self._reading("read batch results") as conn:
            return await sql_jobs.batch_results(conn, entry_id)

    async def get_job(self, key: str) -> StoredJob:
        async with self._reading("get job") as conn:
            return await sql_jobs.get_job(conn, key)

    async def list_jobs(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        feed_id: str | None = None,
        query: JobQuery | None = None,
    ) -> list[StoredJob]:
        async with self._reading("list jobs") as conn:
            return await sql_jobs.list_jobs(
                conn, self._ready()[1], limit=limit, offset=offset, feed_id=feed_id, query=query
            )

    async def count_jobs(self, *, feed_id: str | None = None, query: JobQuery | None = None) -> int:
        async with self._reading("count jobs") as conn:
            return await sql_jobs.count_jobs(conn, self._ready()[1], feed_id=feed_id, query=query)

    async def job_hashes(self, keys: Sequence[str]) -> dict[str, str]:
        async with self._reading("read job hashes") as conn:
            return await sql_jobs.column_by_key(conn, self._ready()[1], "content_hash", keys)

    # ------------------------------------------------------------ lifecycle and change log

    async def expire_due_jobs(self, now: datetime, *, expire_after_s: float, limit: int = 1000) -> int:
        async with self._writing("expire due jobs") as conn:
            return await sql_lifecycle.expire_due_jobs(conn, self._ready()[1], now, expire_after_s, limit)

    async def purge_expired(self, expired_before: datetime) -> int:
        async with self._writing("purge expired jobs") as conn:
            return await sql_lifecycle.purge_expired(conn, expired_before)

    async def list_changes(
        self, *, after: int = 0, limit: int = 100, job_key: str | None = None
    ) -> list[JobChange]:
        async with self._reading("list changes") as conn:
            return await sql_changes.list_changes(conn, after=after, limit=limit, job_key=job_key)

    async def last_change_cursor(self) -> int:
        async with self._reading("read the last change") as conn:
            return await sql_changes.last_change_cursor(conn)

    # ------------------------------------------------------------ webhooks

    async def add_webhook(self, source: WebhookSource) -> Webhook:
        async with self._writing("add webhook") as conn:
            return await sql_webhooks.add_webhook(conn, self._ready()[1], source, utcnow())

    async def sync_webhooks(self, sources: Sequence[WebhookSource]) -> list[Webhook]:
        async with self._writing("sync webhooks") as conn:
            return await sql_webhooks.sync_webhooks(conn, self._ready()[1], sources, utcnow())

    async def list_webhooks(self, *, enabled_only: bool = False) -> list[Webhook]:
        async with self._reading("list webhooks") as conn:
            return await sql_webhooks.list_webhooks(conn, enabled_only=enabled_only)

    async def get_webhook(self, webhook_id: str) -> Webhook:
        async with self._reading("get webhook") as conn:
            return await sql_webhooks.get_webhook(conn, webhook_id)

    async def update_webhook(self, webhook_id: str, changes: WebhookChanges) -> Webhook:
        async with self._writing("update webhook") as conn:
            return await sql_webhooks.update_webhook(conn, webhook_id, changes)

    async def delete_webhook(self, webhook_id: str) -> None:
        async with self._writing("delete webhook") as conn:
            await sql_webhooks.delete_webhook(conn, webhook_id)

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        async with self._writing("add deliveries") as conn:
            return await sql_webhooks.add_deliveries(conn, self._ready()[1], deliveries)

    async def add_changes_delivery(self, delivery: Delivery, *, after: int, until: int) -> bool:
        async with self._writing("add a changes delivery") as conn:
            return await sql_webhooks.add_changes_delivery(conn, delivery, after=after, until=until)

    async def record_attempt(
        self, delivery_id: str, attempt: DeliveryAttempt, status: DeliveryStatus
    ) -> Delivery:
        async with self._writing("record a delivery attempt") as conn:
            return await sql_webhooks.record_attempt(conn, delivery_id, attempt, status)

    async def get_delivery(self, delivery_id: str) -> Delivery:
        async with self._reading("get delivery") as conn:
            return await sql_webhooks.get_delivery(conn, delivery_id)

    async def list_deliveries(
        self, *, limit: int = 50, offset: int = 0, query: DeliveryQuery | None = None
    ) -> list[Delivery]:
        async with self._reading("list deliveries") as conn:
            return await sql_webhooks.list_deliveries(
                conn, limit=limit, offset=offset, query=query or DeliveryQuery()
            )

    async def count_deliveries(self, query: DeliveryQuery | None = None) -> int:
        async with self._reading("count deliveries") as conn:
            return await sql_webhooks.count_deliveries(conn, query or DeliveryQuery())
