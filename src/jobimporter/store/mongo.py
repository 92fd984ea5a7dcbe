"""``MongoStore``: the ``JobStore`` on MongoDB through pymongo's asyncio API (``AsyncMongoClient``).

This module owns the store's lifecycle (client, the replica-set check, migrations at start) and its
transaction scaffold: every method runs inside ``translated()``, so callers see ``StoreError`` and
never a driver exception, and the writes that must be atomic (a batch with its recorded result and
its changes, a run with its entries, closing an entry with what it does to its feed's jobs, closing
and reopening runs, the expiry sweep, a changes delivery with its endpoint's cursor) run in snapshot
transactions with majority commits, retried whole by ``with_transaction`` when they meet a concurrent
write. Transactions need a replica set (or a sharded cluster): against a standalone server
``start()`` refuses with the way to make one.

The queries live in ``mongo_feeds``, ``mongo_history``, ``mongo_jobs``, ``mongo_lifecycle``,
``mongo_changes``, ``mongo_webhooks`` and (the admin API's reads) ``mongo_queries``; collections,
indexes and migrations in ``mongo_schema``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from bson.codec_options import CodecOptions
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

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
    mongo_changes,
    mongo_feeds,
    mongo_history,
    mongo_jobs,
    mongo_lifecycle,
    mongo_queries,
    mongo_webhooks,
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
from jobimporter.store.mongo_errors import translated
from jobimporter.store.mongo_schema import Document, migrate

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_DATABASE = "jobimporter"
# Defaults for options the URL does not set: how long a call waits for a usable server (pymongo's
# own default is 30 s), and the name the server's logs and currentOp show.
_URL_DEFAULTS: dict[str, Any] = {"serverSelectionTimeoutMS": 10_000, "appname": "jobimporter"}
_CODECS: CodecOptions[Document] = CodecOptions(tz_aware=True, tzinfo=UTC)


def create_client(url: str) -> AsyncMongoClient[Document]:
    """A client for ``url`` that returns aware UTC datetimes; options in the URL win over ours."""
    given = {name.lower() for name, _ in parse_qsl(urlsplit(url).query)}
    defaults = {name: value for name, value in _URL_DEFAULTS.items() if name.lower() not in given}
    return AsyncMongoClient(url, tz_aware=True, tzinfo=UTC, connect=False, **defaults)


async def require_replica_set(client: AsyncMongoClient[Document]) -> None:
    """Refuse a standalone server: multi-document transactions need a replica set or mongos."""
    hello = await client.admin.command("hello")
    if hello.get("setName") or hello.get("msg") == "isdbgrid" or hello.get("serviceId"):
        return
    where = hello.get("me") or ", ".join(f"{host}:{port}" for host, port in client.nodes) or "the URL"
    raise StoreError(
        f"store: the MongoDB server at {where} is a standalone server, but jobimporter needs a replica "
        "set (for transactions); start mongod with --replSet rs0 and run rs.initiate() once: a "
        "one-node replica set will do"
    )


class MongoStore(JobStore):
    """``client_or_url``: a ``mongodb://`` or ``mongodb+srv://`` URL, or an ``AsyncMongoClient`` (left
    open by ``aclose()``). ``database``: the database name; default the URL's, else ``jobimporter``."""

    def __init__(
        self, client_or_url: str | AsyncMongoClient[Document], *, database: str | None = None
    ) -> None:
        self._url = client_or_url if isinstance(client_or_url, str) else None
        self._client = None if isinstance(client_or_url, str) else client_or_url
        self._close_on_exit = self._client is None
        self._database_name = database
        self._db: AsyncDatabase[Document] | None = None

    @property
    def client(self) -> AsyncMongoClient[Document]:
        """The client in use (after ``start()``)."""
        if self._client is None:
            raise StoreError("store: not started")
        return self._client

    @property
    def database(self) -> AsyncDatabase[Document]:
        if self._db is None:
            raise StoreError("store: not started (call start() or use 'async with store')")
        return self._db

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
        if self._client is None:
            assert self._url is not None
            self._client = create_client(self._url)
        name = self._database_name or self._client.get_default_database(DEFAULT_DATABASE).name
        db = self._client.get_database(name, codec_options=_CODECS)
        await require_replica_set(self._client)
        version = await migrate(db)
        logger.info("store: MongoDB database %r at schema version %d", name, version)
        self._db = db

    async def aclose(self) -> None:
        self._db = None
        if self._client is not None and self._close_on_exit:
            client, self._client = self._client, None
            with translated("close"):
                await client.close()

    async def ping(self) -> None:
        with translated("ping"):
            await self.database.command("ping")

    async def _in_transaction(self, body: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        """Run ``body`` in a snapshot transaction committed with majority write concern; a write
        conflict or a lost connection runs it again (pymongo's ``with_transaction``, up to 120 s)."""
        async with self.client.start_session() as session:
            return await session.with_transaction(
                body, read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority")
            )

    # ------------------------------------------------------------ feeds

    async def sync_feeds(self, sources: Sequence[FeedSource]) -> list[Feed]:
        with translated("sync feeds"):
            return await mongo_feeds.sync_feeds(self.database, sources, utcnow())

    async def list_feeds(self, *, enabled_only: bool = False) -> list[Feed]:
        with translated("list feeds"):
            return await mongo_feeds.list_feeds(self.database, enabled_only=enabled_only)

    async def get_feed(self, feed_id: str) -> Feed:
        with translated("get feed"):
            return await mongo_feeds.get_feed(self.database, feed_id)

    async def save_feed_validators(self, feed_id: str, etag: str | None, last_modified: str | None) -> None:
        with translated("save feed validators"):
            await mongo_feeds.save_feed_validators(self.database, feed_id, etag, last_modified)

    async def add_feed(self, source: FeedSource) -> Feed:
        with translated("add feed"):
            return await mongo_feeds.add_feed(self.database, source, utcnow())

    async def update_feed(self, feed_id: str, changes: FeedChanges) -> Feed:
        with translated("update feed"):
            return await mongo_feeds.update_feed(self.database, feed_id, changes, utcnow())

    async def delete_feed(self, feed_id: str) -> None:
        with translated("delete feed"):
            await mongo_feeds.delete_feed(self.database, feed_id)

    async def feed_health(
        self, feed_ids: Sequence[str] | None = None, *, window: int = 20
    ) -> dict[str, FeedHealth]:
        with translated("read feed health"):
            return await mongo_queries.feed_health(self.database, feed_ids, window)

    # ------------------------------------------------------------ runs and entries

    async def create_run(self, run: ImportRun) -> None:
        db = self.database
        with translated("create run"):
            await self._in_transaction(lambda session: mongo_history.create_run(db, run, session))

    async def get_run(self, run_id: str) -> ImportRun:
        with translated("get run"):
            return await mongo_history.get_run(self.database, run_id)

    async def list_runs(
        self, *, limit: int = 20, offset: int = 0, query: RunQuery | None = None
    ) -> list[ImportRun]:
        with translated("list runs"):
            return await mongo_history.list_runs(
                self.database, limit=limit, offset=offset, query=query or RunQuery()
            )

    async def count_runs(self, query: RunQuery | None = None) -> int:
        with translated("count runs"):
            return await mongo_history.count_runs(self.database, query or RunQuery())

    async def list_entries(
        self, *, limit: int = 20, offset: int = 0, query: EntryQuery | None = None
    ) -> list[HistoryEntry]:
        with translated("list entries"):
            return await mongo_history.list_entries(
                self.database, limit=limit, offset=offset, query=query or EntryQuery()
            )

    async def count_entries(self, query: EntryQuery | None = None) -> int:
        with translated("count entries"):
            return await mongo_history.count_entries(self.database, query or EntryQuery())

    async def get_entry(self, entry_id: str) -> ImportEntry:
        with translated("get entry"):
            return await mongo_history.get_entry(self.database, entry_id)

    async def update_entry(self, entry_id: str, changes: EntryChanges) -> ImportEntry:
        with translated("update entry"):
            return await mongo_history.update_entry(self.database, entry_id, changes)

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
        db = self.database
        with translated("finalize entry"):
            return await self._in_transaction(
                lambda session: mongo_history.finalize_entry(
                    db,
                    session,
                    entry_id,
                    status=status,
                    finished_at=finished_at,
                    error=error,
                    missing_batches=missing_batches,
                    lifecycle=lifecycle,
                )
            )

    async def reopen_entry(self, entry_id: str) -> ImportEntry:
        db = self.database
        with translated("reopen entry"):
            return await self._in_transaction(
                lambda session: mongo_history.reopen_entry(db, entry_id, session)
            )

    async def prune_history(self, finished_before: datetime) -> int:
        with translated("prune history"):
            return await mongo_history.prune_history(self.database, finished_before)

    async def busy_feeds(self, feed_ids: Sequence[str]) -> dict[str, str]:
        with translated("read busy feeds"):
            return await mongo_history.busy_feeds(self.database, feed_ids)

    async def finalize_run_if_done(self, run_id: str, finished_at: datetime) -> ImportRun | None:
        db = self.database
        with translated("finalize run"):
            closed = await self._in_transaction(
                lambda session: mongo_history.finalize_run_if_done(db, run_id, finished_at, session)
            )
            return await mongo_history.get_run(db, run_id) if closed else None

    async def stats(self, *, limit: int = 50) -> StatsSeries:
        with translated("read stats"):
            return await mongo_queries.stats(self.database, limit)

    async def history_totals(self) -> HistoryTotals:
        with translated("read history totals"):
            return await mongo_queries.history_totals(self.database)

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
        db = self.database
        with translated(f"upsert batch {key}"):
            return await mongo_jobs.upsert_batch(
                db, self._in_transaction, key, feed_id, records, failures,
                now=now, seen_refresh_s=seen_refresh_s, known=known,
            )  # fmt: skip

    async def raw_hashes(self, keys: Sequence[str]) -> dict[str, str]:
        with translated("read raw hashes"):
            return await mongo_jobs.field_by_key(self.database, "raw_hash", keys)

    async def batch_results(self, entry_id: str) -> dict[int, UpsertResult]:
        with translated("read batch results"):
            return await mongo_jobs.batch_results(self.database, entry_id)

    async def get_job(self, key: str) -> StoredJob:
        with translated("get job"):
            return await mongo_jobs.get_job(self.database, key)

    async def list_jobs(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        feed_id: str | None = None,
        query: JobQuery | None = None,
    ) -> list[StoredJob]:
        with translated("list jobs"):
            return await mongo_jobs.list_jobs(
                self.database, limit=limit, offset=offset, feed_id=feed_id, query=query
            )

    async def count_jobs(self, *, feed_id: str | None = None, query: JobQuery | None = None) -> int:
        with translated("count jobs"):
            return await mongo_jobs.count_jobs(self.database, feed_id=feed_id, query=query)

    async def job_hashes(self, keys: Sequence[str]) -> dict[str, str]:
        with translated("read job hashes"):
            return await mongo_jobs.field_by_key(self.database, "content_hash", keys)

    # ------------------------------------------------------------ lifecycle and change log

    async def expire_due_jobs(self, now: datetime, *, expire_after_s: float, limit: int = 1000) -> int:
        db = self.database
        with translated("expire due jobs"):
            if not await mongo_lifecycle.any_due(db, now, expire_after_s):
                return 0
            return await self._in_transaction(
                lambda session: mongo_lifecycle.expire_due_jobs(db, session, now, expire_after_s, limit)
            )

    async def purge_expired(self, expired_before: datetime) -> int:
        with translated("purge expired jobs"):
            return await mongo_lifecycle.purge_expired(self.database, expired_before)

    async def list_changes(
        self, *, after: int = 0, limit: int = 100, job_key: str | None = None
    ) -> list[JobChange]:
        with translated("list changes"):
            return await mongo_changes.list_changes(self.database, after=after, limit=limit, job_key=job_key)

    async def last_change_cursor(self) -> int:
        with translated("read the last change"):
            return await mongo_changes.last_change_cursor(self.database)

    # ------------------------------------------------------------ webhooks

    async def add_webhook(self, source: WebhookSource) -> Webhook:
        with translated("add webhook"):
            return await mongo_webhooks.add_webhook(self.database, source, utcnow())

    async def sync_webhooks(self, sources: Sequence[WebhookSource]) -> list[Webhook]:
        with translated("sync webhooks"):
            return await mongo_webhooks.sync_webhooks(self.database, sources, utcnow())

    async def list_webhooks(self, *, enabled_only: bool = False) -> list[Webhook]:
        with translated("list webhooks"):
            return await mongo_webhooks.list_webhooks(self.database, enabled_only=enabled_only)

    async def get_webhook(self, webhook_id: str) -> Webhook:
        with translated("get webhook"):
            return await mongo_webhooks.get_webhook(self.database, webhook_id)

    async def update_webhook(self, webhook_id: str, changes: WebhookChanges) -> Webhook:
        with translated("update webhook"):
            return await mongo_webhooks.update_webhook(self.database, webhook_id, changes)

    async def delete_webhook(self, webhook_id: str) -> None:
        with translated("delete webhook"):
            await mongo_webhooks.delete_webhook(self.database, webhook_id)

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        with translated("add deliveries"):
            return await mongo_webhooks.add_deliveries(self.database, deliveries)

    async def add_changes_delivery(self, delivery: Delivery, *, after: int, until: int) -> bool:
        db = self.database
        with translated("add a changes delivery"):
            return await self._in_transaction(
                lambda session: mongo_webhooks.add_changes_delivery(
                    db, session, delivery, after=after, until=until
                )
            )

    async def record_attempt(
        self, delivery_id: str, attempt: DeliveryAttempt, status: DeliveryStatus
    ) -> Delivery:
        with translated("record a delivery attempt"):
            return await mongo_webhooks.record_attempt(self.database, delivery_id, attempt, status)

    async def get_delivery(self, delivery_id: str) -> Delivery:
        with translated("get delivery"):
            return await mongo_webhooks.get_delivery(self.database, delivery_id)

    async def list_deliveries(
        self, *, limit: int = 50, offset: int = 0, query: DeliveryQuery | None = None
    ) -> list[Delivery]:
        with translated("list deliveries"):
            return await mongo_webhooks.list_deliveries(
                self.database, limit=limit, offset=offset, query=query or DeliveryQuery()
            )

    async def count_deliveries(self, query: DeliveryQuery | None = None) -> int:
        with translated("count deliveries"):
            return await mongo_webhooks.count_deliveries(self.database, query or DeliveryQuery())
