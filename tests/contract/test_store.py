"""The ``JobStore`` contract, written once against the ABC and run over every backend.

Each test names the contract sentence it checks (``store/base.py``). Backend-only checks (such as
PostgreSQL's ``xmin``) skip elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import sqlite3
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pymongo import AsyncMongoClient
from sqlalchemy.ext.asyncio import create_async_engine

from jobimporter.errors import Conflict, NotFound, StoreError
from jobimporter.mapping import FieldMapping
from jobimporter.models import (
    BatchKey,
    EntryStatus,
    FeedFormat,
    FeedSource,
    ImportEntry,
    ImportRun,
    ItemFailure,
    JobRecord,
    Priority,
    RunStatus,
    Trigger,
    UpsertResult,
    new_id,
)
from jobimporter.store import JobStore, create_store
from jobimporter.store.base import EntryQuery, JobQuery, RunQuery
from jobimporter.store.mongo import MongoStore
from jobimporter.store.mongo_schema import INDEXES, JOBS, SCHEMA, SCHEMA_VERSION
from jobimporter.store.schema import VERSION_TABLE, metadata
from jobimporter.store.sql import SQLStore
from jobimporter.store.sql_engine import _enable_wal
from plugins.mongo import SecantusServer, with_database

from .conftest import started_store

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


# ---------------------------------------------------------------- builders


def job(n: int, version: str = "v1", **fields: Any) -> JobRecord:
    """Job ``n``; a different ``version`` (or field) is different content, hence a different hash."""
    values: dict[str, Any] = {
        "title": f"Engineer {n} ({version})",
        "company": "ACME",
        "locations": ["Berlin", "Remote"],
        "job_types": ["full-time"],
        "categories": ["dev"],
        "description_html": f"<p>Job {n}</p>",
        "description_text": f"Job {n}",
        "url": f"https://jobs.example/{n}",
        "published_at": T0 - DAY,
        "salary_min": 1000.0,
        "extra": {"version": version},
        **fields,
    }
    digest = hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()[:40]
    return JobRecord(
        key=f"job{n:08d}",
        source="jobs.example",
        external_id=f"https://jobs.example/{n}",
        content_hash=digest,
        **values,
    )


def jobs(numbers: range | list[int], version: str = "v1") -> list[JobRecord]:
    return [job(n, version) for n in numbers]


def source(name: str, url: str, **fields: Any) -> FeedSource:
    return FeedSource(name=name, url=url, **fields)


def new_run(*statuses: EntryStatus, started_at: datetime = T0, failed: int = 0) -> ImportRun:
    run_id = new_id("run")
    entries = [
        ImportEntry(
            id=f"{run_id}-e{9 - i}",  # ids sort against creation order: ordering must follow position
            run_id=run_id,
            feed_id=f"feed_{i}",
            url=f"https://feeds.example/{i}",
            name=f"Feed {i}",
            status=status,
            failed=failed,
        )
        for i, status in enumerate(statuses)
    ]
    return ImportRun(run_id=run_id, trigger=Trigger.MANUAL, started_at=started_at, feeds=entries)


async def stored_run(store: JobStore, *statuses: EntryStatus, started_at: datetime = T0) -> ImportRun:
    run = new_run(*statuses, started_at=started_at)
    await store.create_run(run)
    return run


def is_postgres(store: JobStore) -> bool:
    return isinstance(store, SQLStore) and store.engine.dialect.name == "postgresql"


async def xmins(store: JobStore, keys: list[str]) -> dict[str, str]:
    """PostgreSQL's row version of each job: it changes whenever the row is written."""
    assert isinstance(store, SQLStore)
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT key, xmin::text AS version FROM jobs WHERE key = ANY(:keys)"), {"keys": keys}
        )
        return {row.key: row.version for row in rows}


@asynccontextmanager
async def unwritten(store: JobStore, keys: list[str]) -> AsyncIterator[None]:
    """Asserts that the block writes none of the jobs ``keys``: on PostgreSQL their xmin stays, on
    MongoDB the database's change stream shows no write to them (read up to a marker written after
    the block); SQLite shows no trace of a write."""
    if is_postgres(store):
        before = await xmins(store, keys)
        yield
        assert await xmins(store, keys) == before
    elif isinstance(store, MongoStore):
        async with mongo_writes(store, keys) as written:
            yield
        assert written == [], f"written: {written}"
    else:
        yield


def unlinked_rows(store: JobStore, keys: list[str]) -> list[str]:
    """Of ``keys``, the jobs whose row a new feed link leaves as it is: all of them on SQL (a link is a
    row of its own), none on MongoDB (``feed_ids`` is part of the job document)."""
    return [] if isinstance(store, MongoStore) else keys


@asynccontextmanager
async def mongo_writes(store: MongoStore, keys: list[str]) -> AsyncIterator[list[str]]:
    """The writes to the jobs ``keys`` during the block, from the database's change stream."""
    db, marker = store.database, new_id("marker")
    written: list[str] = []
    async with await db.watch([{"$match": {"ns.coll": {"$in": [JOBS, "test_markers"]}}}]) as stream:
        yield written
        await db["test_markers"].insert_one({"_id": marker})  # the stream is read up to it
        async for change in stream:
            key = change["documentKey"]["_id"]
            if key == marker:
                break
            if key in keys:
                written.append(f"{change['operationType']} {key}")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------- lifecycle


async def test_start_creates_the_schema_the_tables_describe(sql_store: SQLStore) -> None:
    """start(): "bring the schema to the current version" — and the migration matches schema.py."""
    opts = {"compare_type": True, "version_table": VERSION_TABLE}
    async with sql_store.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c, opts=opts), metadata)
        )
    assert diff == []


async def test_start_creates_the_collections_and_indexes_mongo_schema_describes(
    mongo_store: MongoStore,
) -> None:
    """start() on MongoDB: every collection, the indexes ``INDEXES`` lists, the version document."""
    db = mongo_store.database
    assert set(await db.list_collection_names()) >= {*INDEXES, SCHEMA}
    for name, wanted in INDEXES.items():
        info = await db[name].index_information()
        keys = {tuple(index["key"]): bool(index.get("unique")) for index in info.values()}
        for index in wanted:
            spec = index.document
            assert keys.get(tuple(spec["key"].items())) == bool(spec.get("unique")), (name, spec, keys)
    assert (await db[SCHEMA].find_one({"_id": "version"}) or {}).get("version") == SCHEMA_VERSION


async def test_a_mongodb_schema_newer_than_the_code_is_refused(mongo_database_url: str) -> None:
    async with started_store(mongo_database_url) as store:
        assert isinstance(store, MongoStore)
        await store.database[SCHEMA].update_one({"_id": "version"}, {"$set": {"version": SCHEMA_VERSION + 1}})
    with pytest.raises(StoreError) as caught:
        await create_store(mongo_database_url).start()
    assert str(caught.value) == (
        f"store: the MongoDB database is at schema version {SCHEMA_VERSION + 1}, newer than this "
        f"jobimporter knows ({SCHEMA_VERSION}); upgrade jobimporter"
    )
    assert not caught.value.transient


async def test_start_again_and_concurrently_is_safe(database_url: str) -> None:
    """start(): "Safe to call from several processes at once" (here: several stores at once, then again)."""
    stores = [create_store(database_url) for _ in range(4)]
    await asyncio.gather(*(s.start() for s in stores))
    try:
        await asyncio.gather(*(s.ping() for s in stores))
    finally:
        await asyncio.gather(*(s.aclose() for s in stores))
    async with started_store(database_url) as again:
        assert await again.count_jobs() == 0


async def test_start_from_several_processes(database_url: str) -> None:
    """start(): "Safe to call from several processes at once (concurrent migrations are serialized)"."""
    script = (
        "import asyncio, sys\n"
        "from jobimporter.store import create_store\n"
        "async def main():\n"
        "    async with create_store(sys.argv[1]) as store:\n"
        "        await store.sync_feeds([])\n"
        "asyncio.run(main())\n"
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, database_url, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    outcomes = [(p, (await p.communicate())[1].decode()[-2000:]) for p in procs]
    assert [p.returncode for p, _ in outcomes] == [0, 0, 0], [err for _, err in outcomes]


_WRITER_SCRIPT = """
import asyncio, json, sys
from datetime import datetime, UTC
from jobimporter.models import BatchKey, JobRecord
from jobimporter.store import create_store

async def main(url, worker):
    async with create_store(url) as store:
        results = []
        for batch_no in range(1, 6):
            first = batch_no * 100
            records = [
                JobRecord(key=f"job{n:08d}", source="jobs.example", external_id=str(n), title=f"Job {n}",
                          content_hash=f"hash{n:08d}")
                for n in range(first, first + 150)
            ]
            now = datetime(2026, 1, 5, tzinfo=UTC)
            result = await store.upsert_batch(BatchKey(f"ent_{worker}", batch_no), "feed_a", records, now=now)
            results.append(result.new)
        print(json.dumps(results))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_writers_in_several_processes_queue_instead_of_failing(database_url: str) -> None:
    """Concurrent writers from several processes (SQLite: BEGIN IMMEDIATE + busy timeout) all succeed,
    and each key is new exactly once across them."""
    async with started_store(database_url):
        pass  # schema first, so the writers race on data, not on migrations (tested above)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WRITER_SCRIPT, database_url, str(worker), stdout=PIPE, stderr=PIPE
        )
        for worker in range(3)
    ]
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err.decode()[-2000:] for _, err in outputs]
    new_per_batch = [json.loads(out) for out, _ in outputs]
    assert sum(map(sum, new_per_batch)) == 550  # keys 100..649, each new once
    async with started_store(database_url) as store:
        assert await store.count_jobs() == 550


async def test_in_memory_sqlite_serves_concurrent_tasks() -> None:
    async with started_store("sqlite://") as store:
        results = await asyncio.gather(
            *(
                store.upsert_batch(BatchKey("ent_a", n), "feed_a", jobs(range(n, n + 10)), now=T0)
                for n in range(5)
            )
        )
        assert sum(r.new for r in results) == 14
        assert await store.count_jobs() == 14


async def test_a_store_handed_an_engine_leaves_it_open(sql_database_url: str) -> None:
    """Lifecycle: "one handed an engine/client leaves it open"."""
    async_url = sql_database_url.replace("sqlite://", "sqlite+aiosqlite://").replace(
        "postgresql://", "postgresql+asyncpg://"
    )
    engine = create_async_engine(async_url)
    try:
        async with SQLStore(engine) as store:
            await store.ping()
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT count(*) FROM jobs"))).scalar_one() == 0
    finally:
        await engine.dispose()


async def test_a_store_handed_a_mongo_client_leaves_it_open(mongo_url: str) -> None:
    """Lifecycle: "one handed an engine/client leaves it open"; it uses the database it is told."""
    name = f"t_{new_id('db')}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)  # no tz_aware: the store's own
    try:
        async with MongoStore(client, database=name) as store:
            await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", [job(1)], now=T0)
            assert (await store.get_job(job(1).key))["first_seen"] == T0  # aware UTC all the same
        assert await client[name][JOBS].count_documents({}) == 1  # still open
    finally:
        await client.drop_database(name)
        await client.close()


async def test_unreachable_postgres_is_a_transient_store_error() -> None:
    """Errors: "every method raises StoreError (transient=True when ... lost connection)", never a driver error."""
    store = create_store(f"postgresql://postgres@127.0.0.1:{closed_port()}/nowhere")
    with pytest.raises(StoreError) as caught:
        await store.start()
    assert type(caught.value) is StoreError
    assert caught.value.transient
    assert str(caught.value).startswith("store: ")
    with pytest.raises(StoreError):
        await store.ping()  # not started: still a StoreError


async def test_unreachable_mongodb_is_a_transient_store_error() -> None:
    """The same on MongoDB, once the client's server selection gives up (10 s unless the URL says)."""
    store = create_store(f"mongodb://127.0.0.1:{closed_port()}/nowhere")
    with pytest.raises(StoreError) as caught:
        await store.start()
    assert type(caught.value) is StoreError
    assert caught.value.transient
    assert str(caught.value).startswith("store: database unreachable (start): ")
    with pytest.raises(StoreError, match="not started"):
        await store.ping()


async def test_a_standalone_mongodb_is_refused_with_how_to_start_a_replica_set(tmp_path: Path) -> None:
    """MongoDB transactions need a replica set: start() refuses a standalone server in one line."""
    server = SecantusServer(tmp_path / "data", extra_args=["--standalone"])
    server.start()
    try:
        store = create_store(with_database(server.url, "jobs"))
        with pytest.raises(StoreError) as caught:
            await store.start()
    finally:
        server.stop()
    message = str(caught.value)
    assert message == (
        f"store: the MongoDB server at 127.0.0.1:{server.port} is a standalone server, but jobimporter "
        "needs a replica set (for transactions); start mongod with --replSet rs0 and run rs.initiate() "
        "once: a one-node replica set will do"
    )
    assert "\n" not in message and not caught.value.transient


async def test_unopenable_sqlite_is_a_permanent_store_error(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'jobs.db'}")
    with pytest.raises(StoreError) as caught:
        await store.start()
    assert type(caught.value) is StoreError
    assert not caught.value.transient


async def test_methods_before_start_raise_store_error(sqlite_url: str) -> None:
    with pytest.raises(StoreError, match="not started"):
        await create_store(sqlite_url).get_feed("feed_x")


# ---------------------------------------------------------------- feeds


async def test_sync_feeds_adds_updates_and_keeps_ids_and_validators(store: JobStore) -> None:
    """sync_feeds: add new ones with fresh ids, update name/format/enabled/priority, keep ids and
    validators, leave feeds not in sources alone, return the feeds in the order of sources."""
    first = await store.sync_feeds(
        [source("B", "https://b.example/feed"), source("A", "https://a.example/feed")]
    )
    assert [f.name for f in first] == ["B", "A"]
    assert len({f.id for f in first}) == 2
    await store.save_feed_validators(first[1].id, '"etag-1"', "Mon, 05 Jan 2026 12:00:00 GMT")

    changed = source(
        "A2", "https://a.example/feed", format=FeedFormat.RSS, enabled=False, priority=Priority.HIGH
    )
    second = await store.sync_feeds([changed, source("C", "https://c.example/feed")])

    assert second[0].id == first[1].id
    assert (second[0].name, second[0].format, second[0].enabled, second[0].priority) == (
        "A2",
        FeedFormat.RSS,
        False,
        Priority.HIGH,
    )
    assert (second[0].etag, second[0].last_modified) == ('"etag-1"', "Mon, 05 Jan 2026 12:00:00 GMT")
    assert await store.get_feed(first[0].id) == first[0]  # not in sources: untouched
    assert len(await store.list_feeds()) == 3


async def test_a_feed_keeps_its_own_cron_until_its_source_or_an_edit_drops_it(store: JobStore) -> None:
    """``cron``: None means the scheduler's; the sources file decides it for the feeds it lists."""
    (feed,) = await store.sync_feeds([source("A", "https://a.example/feed", cron="*/15 * * * *")])
    assert feed.cron == "*/15 * * * *" and (await store.list_feeds(enabled_only=True))[0].cron == feed.cron
    (again,) = await store.sync_feeds([source("A", "https://a.example/feed")])
    assert (again.id, again.cron) == (feed.id, None)  # the file no longer sets one
    assert (await store.update_feed(feed.id, {"cron": "0 6 * * *"})).cron == "0 6 * * *"
    assert (await store.update_feed(feed.id, {"name": "A2"})).cron == "0 6 * * *"  # other edits keep it
    assert (await store.update_feed(feed.id, {"cron": None})).cron is None
    added = await store.add_feed(source("B", "https://b.example/feed", cron="*/5 * * * * *"))
    assert (await store.get_feed(added.id)).cron == "*/5 * * * * *"


async def test_sync_feeds_with_a_url_twice_keeps_one_feed(store: JobStore) -> None:
    feeds = await store.sync_feeds([source("X", "https://x.example/"), source("Y", "https://x.example/")])
    assert feeds[0].id == feeds[1].id
    assert [f.name for f in await store.list_feeds()] == ["Y"]


async def test_list_feeds_orders_by_name_then_url_and_filters_enabled(store: JobStore) -> None:
    await store.sync_feeds(
        [
            source("b", "https://2.example/"),
            source("a", "https://9.example/"),
            source("b", "https://1.example/", enabled=False),
        ]
    )
    assert [(f.name, f.url) for f in await store.list_feeds()] == [
        ("a", "https://9.example/"),
        ("b", "https://1.example/"),
        ("b", "https://2.example/"),
    ]
    assert [f.url for f in await store.list_feeds(enabled_only=True)] == [
        "https://9.example/",
        "https://2.example/",
    ]


async def test_missing_feed_is_not_found(store: JobStore) -> None:
    with pytest.raises(NotFound) as caught:
        await store.get_feed("feed_missing")
    assert (caught.value.kind, caught.value.ident) == ("feed", "feed_missing")
    with pytest.raises(NotFound):
        await store.save_feed_validators("feed_missing", "x", None)


# ---------------------------------------------------------------- runs and entries


async def test_create_and_get_run_with_entries_in_creation_order(store: JobStore) -> None:
    """create_run stores the run with its entries; get_run returns entries "ordered as created"."""
    run = await stored_run(store, EntryStatus.QUEUED, EntryStatus.QUEUED, EntryStatus.QUEUED)
    assert await store.get_run(run.run_id) == run
    assert await store.get_entry(run.feeds[1].id) == run.feeds[1]


async def test_create_run_is_atomic(store: JobStore) -> None:
    """create_run: "together with its entries, atomically"."""
    run = new_run(EntryStatus.QUEUED, EntryStatus.QUEUED)
    clash = run.model_copy(update={"feeds": [run.feeds[0], run.feeds[0]]})  # same entry id twice
    with pytest.raises(StoreError) as caught:
        await store.create_run(clash)
    assert not caught.value.transient
    with pytest.raises(NotFound):
        await store.get_run(run.run_id)


async def test_list_runs_newest_first_with_entries_and_paging(store: JobStore) -> None:
    """list_runs: "newest first (by started_at, then id), each with its entries"."""
    old = await stored_run(store, EntryStatus.QUEUED, started_at=T0)
    tied = sorted(
        [await stored_run(store, EntryStatus.QUEUED, started_at=T0 + DAY) for _ in range(2)],
        key=lambda r: r.run_id,
    )
    newest = await stored_run(store, EntryStatus.QUEUED, EntryStatus.QUEUED, started_at=T0 + 2 * DAY)

    listed = await store.list_runs()
    assert [r.run_id for r in listed] == [newest.run_id, tied[1].run_id, tied[0].run_id, old.run_id]
    assert listed[0] == newest
    assert [r.run_id for r in await store.list_runs(limit=2, offset=1)] == [tied[1].run_id, tied[0].run_id]


async def test_missing_run_and_entry_are_not_found(store: JobStore) -> None:
    for call in (
        store.get_run("run_missing"),
        store.get_entry("ent_missing"),
        store.update_entry("ent_missing", {"http_status": 200}),
        store.finalize_entry("ent_missing", status=EntryStatus.COMPLETED, finished_at=T0),
        store.finalize_run_if_done("run_missing", T0),
    ):
        with pytest.raises(NotFound):
            await call


async def test_update_entry_sets_fields_and_returns_the_entry(store: JobStore) -> None:
    run = await stored_run(store, EntryStatus.QUEUED)
    entry = await store.update_entry(
        run.feeds[0].id,
        {
            "status": EntryStatus.FETCHING,
            "started_at": T0,
            "http_status": 200,
            "bytes": 1234,
            "total_fetched": 7,
        },
    )
    assert (entry.status, entry.started_at, entry.http_status, entry.bytes, entry.total_fetched) == (
        EntryStatus.FETCHING,
        T0,
        200,
        1234,
        7,
    )
    assert await store.get_entry(entry.id) == entry


@pytest.mark.parametrize("final", [EntryStatus.COMPLETED, EntryStatus.FAILED, EntryStatus.NOT_MODIFIED])
async def test_update_entry_never_reopens_a_final_entry(store: JobStore, final: EntryStatus) -> None:
    """update_entry: "An entry in a final status is not moved back to a non-final one (the update is
    ignored and the stored entry returned)"."""
    run = await stored_run(store, EntryStatus.QUEUED)
    entry_id = run.feeds[0].id
    closed = await store.finalize_entry(entry_id, status=final, finished_at=T0)

    returned = await store.update_entry(entry_id, {"status": EntryStatus.PROCESSING, "http_status": 500})
    assert returned == closed
    assert await store.get_entry(entry_id) == closed
    # Changes that do not reopen it still apply.
    assert (await store.update_entry(entry_id, {"http_status": 304})).http_status == 304


# ---------------------------------------------------------------- upsert_batch


async def test_upsert_classifies_new_updated_unchanged_and_stamps_times(store: JobStore) -> None:
    """upsert_batch: new (first_seen = last_seen = last_changed = now), updated (last_changed and
    last_seen = now, first_seen kept), unchanged (not written: times untouched)."""
    first = await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", jobs(range(10)), now=T0)
    assert first == UpsertResult(new=10)
    stored = await store.get_job(job(0).key)
    assert (stored["first_seen"], stored["last_seen"], stored["last_changed"]) == (T0, T0, T0)
    assert stored["record"] == job(0)

    later = T0 + timedelta(hours=1)
    batch = [job(n, "v2") if n < 3 else job(n) for n in range(12)]
    second = await store.upsert_batch(BatchKey("ent_b", 1), "feed_a", batch, now=later)
    assert second == UpsertResult(new=2, updated=3, unchanged=7)

    updated = await store.get_job(job(0).key)
    assert updated["record"] == job(0, "v2")
    assert (updated["first_seen"], updated["last_seen"], updated["last_changed"]) == (T0, later, later)
    unchanged = await store.get_job(job(5).key)
    assert (unchanged["first_seen"], unchanged["last_seen"], unchanged["last_changed"]) == (T0, T0, T0)
    assert await store.job_hashes([job(0).key, job(5).key, "job_missing"]) == {
        job(0).key: job(0, "v2").content_hash,
        job(5).key: job(5).content_hash,
    }


async def test_unchanged_rows_are_not_written(store: JobStore) -> None:
    """upsert_batch: an unchanged record "is not written at all" (on PostgreSQL: its xmin stays)."""
    records = jobs(range(20))
    await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", records, now=T0)
    keys = [r.key for r in records]

    async with unwritten(store, keys):
        result = await store.upsert_batch(
            BatchKey("ent_b", 1), "feed_a", records, now=T0 + timedelta(minutes=5)
        )

    assert result == UpsertResult(unchanged=20)
    for key in keys:
        stored = await store.get_job(key)
        assert (stored["last_seen"], stored["last_changed"]) == (T0, T0)


async def test_an_unchanged_record_with_a_new_raw_hash_stores_it_once(store: JobStore) -> None:
    """upsert_batch: unchanged, "except that ... a different raw_hash is stored", so the next import
    can skip normalizing; that next import writes nothing."""
    first = [r.model_copy(update={"raw_hash": "raw-1"}) for r in jobs(range(4))]
    await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", first, now=T0)
    second = [r.model_copy(update={"raw_hash": "raw-2"}) for r in first]  # same content

    result = await store.upsert_batch(BatchKey("ent_b", 1), "feed_a", second, now=T0 + timedelta(minutes=5))

    keys = [r.key for r in first]
    assert result == UpsertResult(unchanged=4)
    assert await store.raw_hashes(keys) == dict.fromkeys(keys, "raw-2")
    assert [(await store.get_job(key))["last_changed"] for key in keys] == [T0] * 4
    async with unwritten(store, keys):
        again = await store.upsert_batch(
            BatchKey("ent_c", 1), "feed_a", second, now=T0 + timedelta(minutes=9)
        )
    assert again == UpsertResult(unchanged=4)


async def test_unchanged_rows_refresh_last_seen_when_stale(store: JobStore) -> None:
    """upsert_batch: unchanged "except that last_seen is refreshed when older than seen_refresh_s"."""
    await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", jobs(range(3)), now=T0)
    soon, late = T0 + timedelta(seconds=30), T0 + timedelta(seconds=120)

    assert await store.upsert_batch(
        BatchKey("ent_b", 1), "feed_a", jobs(range(3)), now=soon, seen_refresh_s=60
    ) == (UpsertResult(unchanged=3))
    assert (await store.get_job(job(1).key))["last_seen"] == T0
    assert await store.upsert_batch(
        BatchKey("ent_c", 1), "feed_a", jobs(range(3)), now=late, seen_refresh_s=60
    ) == (UpsertResult(unchanged=3))
    refreshed = await store.get_job(job(1).key)
    assert (refreshed["first_seen"], refreshed["last_seen"], refreshed["last_changed"]) == (T0, late, T0)


async def test_the_same_batch_key_twice_returns_the_recorded_result(store: JobStore) -> None:
    """upsert_batch: "Calling again with a key already recorded writes nothing and returns the
    recorded result" — and the entry's counts do not double."""
    run = await stored_run(store, EntryStatus.PROCESSING)
    entry_id = run.feeds[0].id
    failures = (ItemFailure("item #3", "invalid: title missing"),)
    first = await store.upsert_batch(BatchKey(entry_id, 1), "feed_a", jobs(range(5)), failures, now=T0)

    again = await store.upsert_batch(BatchKey(entry_id, 1), "feed_a", jobs(range(5, 9), "v2"), now=T0 + DAY)

    assert again == first == UpsertResult(new=5, failed=1, failures=failures)
    assert await store.count_jobs() == 5
    assert (await store.get_job(job(0).key))["last_seen"] == T0
    assert await store.batch_results(entry_id) == {1: first}
    entry = await store.finalize_entry(entry_id, status=EntryStatus.COMPLETED, finished_at=T0 + DAY)
    assert (entry.new, entry.failed) == (5, 1)


async def test_the_same_batch_key_concurrently_is_written_once(store: JobStore) -> None:
    """upsert_batch: exactly once "even from a concurrent caller"."""
    key = BatchKey("ent_a", 1)
    results = await asyncio.gather(
        *(store.upsert_batch(key, "feed_a", jobs(range(30)), now=T0) for _ in range(3))
    )
    assert results == [UpsertResult(new=30)] * 3
    assert await store.batch_results("ent_a") == {1: UpsertResult(new=30)}


async def test_concurrent_batches_sharing_keys_make_each_key_new_once(store: JobStore) -> None:
    """upsert_batch: "Correct under concurrent batches that share keys: each key is new in exactly one"."""
    left, right = jobs(range(100)), jobs(range(50, 150))
    results = await asyncio.gather(
        store.upsert_batch(BatchKey("ent_l", 1), "feed_l", left, now=T0),
        store.upsert_batch(BatchKey("ent_r", 1), "feed_r", right, now=T0),
    )
    assert sum(r.new for r in results) == 150
    assert sum(r.unchanged for r in results) == 50
    assert sum(r.updated + r.failed for r in results) == 0
    assert await store.count_jobs() == 150
    shared = await store.get_job(job(75).key)
    assert shared["feed_ids"] == ["feed_l", "feed_r"]


async def test_failures_and_duplicates_count_as_failed(store: JobStore) -> None:
    """upsert_batch: "failures (items that failed before reaching the store) count as failed"; a key
    twice in one batch keeps the last and fails the earlier one."""
    early = [ItemFailure("item #7", "invalid: no title")]
    batch = [job(1), job(2, "old"), job(3), job(2, "new")]
    result = await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", batch, early, now=T0)

    assert (result.new, result.updated, result.unchanged, result.failed) == (3, 0, 0, 2)
    assert result.failures == (
        ItemFailure("item #7", "invalid: no title"),
        ItemFailure(job(2).external_id, "duplicate of another item in this batch"),
    )
    assert (await store.get_job(job(2).key))["record"] == job(2, "new")


async def test_a_batch_of_failures_only_is_recorded(store: JobStore) -> None:
    failures = [ItemFailure(f"item #{i}", "invalid") for i in range(3)]
    result = await store.upsert_batch(BatchKey("ent_a", 0), "feed_a", [], failures, now=T0)
    assert result == UpsertResult(failed=3, failures=tuple(failures))
    assert await store.batch_results("ent_a") == {0: result}


Spoil = Callable[[JobRecord, range], JobRecord]


def _with(**fields: Any) -> Spoil:
    return lambda record, _: record.model_copy(update=fields)


def _identity_of_the_first(record: JobRecord, numbers: range) -> JobRecord:
    """Another key with the (source, external_id) of the batch's first job: the unique index refuses
    it on the server, whichever backend."""
    return record.model_copy(update={"external_id": job(numbers[0]).external_id})


def _refused_values(store: JobStore) -> list[tuple[str, Spoil, str]]:
    """(label, how the record is spoiled, words the reason must contain) for each backend's refusals."""
    unencodable = "cannot encode object" if isinstance(store, MongoStore) else "not JSON serializable"
    cases: list[tuple[str, Spoil, str]] = [
        ("unserializable extra", _with(extra={"tags": {"a", "b"}}), unencodable),
        ("identity of another job", _identity_of_the_first, "external_id"),
    ]
    if is_postgres(store):  # SQLite and MongoDB store NUL characters as they are
        cases.append(("NUL in text", _with(title="Engineer \x00 nul"), "0x00"))
    if isinstance(store, MongoStore):  # BSON's own limits; JSON columns take both
        cases.append(("NUL in a key", _with(extra={"a\x00b": "x"}), "NULL byte"))
        cases.append(("int over 64 bits", _with(extra={"n": 2**70}), "8-byte ints"))
        # Over 16 MB the server refuses the document; over a 48 MB message the driver does.
        cases.append(("over 16 MB", _with(description_html="x" * 17_000_000), "16777216"))
        cases.append(("over 48 MB", _with(description_html="x" * 49_000_000), "MongoDB holds at most"))
    return cases


@pytest.mark.parametrize("existing", [False, True], ids=["insert", "update"])
async def test_a_record_the_database_refuses_fails_alone(store: JobStore, existing: bool) -> None:
    """upsert_batch: "a record the database refuses fails alone with the reason; the rest of the
    batch is written"."""
    for case, (label, spoil, reason) in enumerate(_refused_values(store)):
        numbers = range(case * 10, case * 10 + 5)
        if existing:
            await store.upsert_batch(BatchKey(f"ent_{label}", 1), "feed_a", jobs(numbers), now=T0)
        bad = spoil(job(numbers[2], "v2"), numbers)
        batch = [job(n, "v2") if n != numbers[2] else bad for n in numbers]

        result = await store.upsert_batch(BatchKey(f"ent_{label}", 2), "feed_a", batch, now=T0 + DAY)

        assert (result.new + result.updated, result.failed) == (4, 1), label
        assert result.failures[0].external_id == bad.external_id
        assert result.failures[0].reason.startswith("could not be stored: ")
        assert reason in result.failures[0].reason, (label, result.failures[0].reason)
        hashes = await store.job_hashes([r.key for r in batch])
        assert hashes.get(bad.key) == (job(numbers[2]).content_hash if existing else None)
        assert all(hashes[r.key] == r.content_hash for r in batch if r is not bad)


async def test_jobs_are_linked_to_every_feed_they_were_seen_in(store: JobStore) -> None:
    """upsert_batch: "the job is linked to feed_id (the set of feeds it was seen in)"."""
    await store.upsert_batch(BatchKey("ent_b", 1), "feed_b", jobs(range(4)), now=T0)
    await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", jobs(range(2, 6)), now=T0 + DAY)

    assert (await store.get_job(job(0).key))["feed_ids"] == ["feed_b"]
    assert (await store.get_job(job(3).key))["feed_ids"] == ["feed_a", "feed_b"]
    assert await store.count_jobs() == 6
    assert await store.count_jobs(feed_id="feed_a") == 4
    assert {j["record"].key for j in await store.list_jobs(feed_id="feed_b")} == {
        job(n).key for n in range(4)
    }
    assert await store.list_jobs(feed_id="feed_none") == []


async def test_list_jobs_most_recently_changed_first(store: JobStore) -> None:
    await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", jobs(range(3)), now=T0)
    await store.upsert_batch(BatchKey("ent_a", 2), "feed_a", [job(1, "v2")], now=T0 + DAY)

    listed = await store.list_jobs()
    assert [j["record"].key for j in listed] == [job(1).key, job(0).key, job(2).key]
    assert listed[0]["last_changed"] == T0 + DAY
    assert [j["record"].key for j in await store.list_jobs(limit=1, offset=1)] == [job(0).key]


async def test_missing_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(NotFound):
        await store.get_job("job_missing")


async def test_batch_results_by_batch_number(store: JobStore) -> None:
    await store.upsert_batch(BatchKey("ent_a", 2), "feed_a", jobs(range(2)), now=T0)
    await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", jobs(range(1, 4)), now=T0)
    await store.upsert_batch(BatchKey("ent_other", 1), "feed_a", jobs(range(9, 10)), now=T0)
    assert await store.batch_results("ent_a") == {1: UpsertResult(new=2, unchanged=1), 2: UpsertResult(new=2)}
    assert await store.batch_results("ent_none") == {}


# ---------------------------------------------------------------- finalize


async def test_finalize_entry_sums_batches_adds_missing_and_is_idempotent(store: JobStore) -> None:
    """finalize_entry: counts and failures are the sum of recorded batches plus item_count failed items
    per missing batch without a result; sets status, finished_at, error, duration_s; idempotent."""
    run = await stored_run(store, EntryStatus.QUEUED)
    entry_id = run.feeds[0].id
    await store.update_entry(entry_id, {"status": EntryStatus.PROCESSING, "started_at": T0})
    early = [ItemFailure("item #1", "invalid")]
    await store.upsert_batch(BatchKey(entry_id, 0), "feed_0", [], early, now=T0)
    await store.upsert_batch(BatchKey(entry_id, 1), "feed_0", jobs(range(4)), now=T0)
    await store.upsert_batch(BatchKey(entry_id, 3), "feed_0", [job(0, "v2"), job(1)], now=T0)
    missing = [(2, 3, "batch 2 failed after 3 attempt(s): boom"), (3, 2, "recorded, so ignored")]

    finished = T0 + timedelta(seconds=90)
    entry = await store.finalize_entry(
        entry_id,
        status=EntryStatus.COMPLETED,
        finished_at=finished,
        error="1 of 3 batches failed",
        missing_batches=missing,
    )

    assert (entry.new, entry.updated, entry.unchanged, entry.failed) == (4, 1, 1, 4)
    assert entry.failures[0] == {"external_id": "item #1", "reason": "invalid"}
    assert [f["reason"] for f in entry.failures[1:]] == ["batch 2 failed after 3 attempt(s): boom"] * 3
    assert len({f["external_id"] for f in entry.failures}) == 4
    assert (entry.status, entry.finished_at, entry.error, entry.duration_s) == (
        EntryStatus.COMPLETED,
        finished,
        "1 of 3 batches failed",
        90.0,
    )
    again = await store.finalize_entry(
        entry_id,
        status=EntryStatus.COMPLETED,
        finished_at=finished,
        error="1 of 3 batches failed",
        missing_batches=missing,
    )
    assert again == entry == await store.get_entry(entry_id)


async def test_finalize_run_waits_for_every_entry_and_wins_once(store: JobStore) -> None:
    """finalize_run_if_done: None while an entry is open; then the run, to exactly one caller."""
    run = await stored_run(store, EntryStatus.QUEUED, EntryStatus.QUEUED)
    await store.finalize_entry(run.feeds[0].id, status=EntryStatus.COMPLETED, finished_at=T0)
    assert await store.finalize_run_if_done(run.run_id, T0) is None
    assert (await store.get_run(run.run_id)).status is RunStatus.RUNNING

    await store.finalize_entry(run.feeds[1].id, status=EntryStatus.NOT_MODIFIED, finished_at=T0)
    results = await asyncio.gather(*(store.finalize_run_if_done(run.run_id, T0 + DAY) for _ in range(6)))

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert (winners[0].status, winners[0].finished_at) == (RunStatus.COMPLETED, T0 + DAY)
    assert winners[0] == await store.get_run(run.run_id)
    assert await store.finalize_run_if_done(run.run_id, T0 + 2 * DAY) is None


@pytest.mark.parametrize(
    ("statuses", "item_failed", "expected"),
    [
        ((EntryStatus.COMPLETED, EntryStatus.NOT_MODIFIED), 0, RunStatus.COMPLETED),
        ((EntryStatus.COMPLETED, EntryStatus.COMPLETED), 1, RunStatus.PARTIAL),
        ((EntryStatus.COMPLETED, EntryStatus.FAILED), 0, RunStatus.PARTIAL),
        ((EntryStatus.NOT_MODIFIED, EntryStatus.FAILED), 0, RunStatus.PARTIAL),
        ((EntryStatus.FAILED, EntryStatus.FAILED), 0, RunStatus.FAILED),
        ((), 0, RunStatus.COMPLETED),
    ],
    ids=["all-clean", "an-item-failed", "a-feed-failed", "not-modified-and-failed", "all-failed", "no-feeds"],
)
async def test_finalize_run_status_rules(
    store: JobStore, statuses: tuple[EntryStatus, ...], item_failed: int, expected: RunStatus
) -> None:
    """finalize_run_if_done: completed when all entries completed or not modified and no item failed,
    failed when every entry failed, else partial."""
    run = await stored_run(store, *([EntryStatus.QUEUED] * len(statuses)))
    for entry, status in zip(run.feeds, statuses, strict=True):
        if item_failed:
            failures = [ItemFailure("item #1", "invalid")] * item_failed
            await store.upsert_batch(BatchKey(entry.id, 0), entry.feed_id, [], failures, now=T0)
        await store.finalize_entry(entry.id, status=status, finished_at=T0)

    closed = await store.finalize_run_if_done(run.run_id, T0 + DAY)
    assert closed is not None
    assert closed.status is expected


# ---------------------------------------------------------------- SQLite specifics


class _LockedCursor:
    def __init__(self, message: str) -> None:
        self.message = message

    def execute(self, sql: str) -> None:
        raise sqlite3.OperationalError(self.message)


def test_sqlite_wal_switch_tolerates_a_concurrent_switch() -> None:
    """Two processes creating the database at once: SQLite refuses one WAL switch immediately
    ("database is locked", no busy wait); the other's switch covers the file, so start() goes on."""
    _enable_wal(_LockedCursor("database is locked"))
    with pytest.raises(sqlite3.OperationalError):
        _enable_wal(_LockedCursor("disk I/O error"))


# ---------------------------------------------------------------- raw-hash fast path


async def test_raw_hashes_returns_the_stored_raw_hash_of_stored_jobs(store: JobStore) -> None:
    """raw_hashes: "raw_hash by key for the stored jobs among keys that have one"."""
    with_raw = [job(n).model_copy(update={"raw_hash": f"raw{n:05d}"}) for n in range(3)]
    await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", [*with_raw, job(7)], now=T0)

    found = await store.raw_hashes([job(n).key for n in (0, 1, 2, 7, 9)])

    assert found == {job(n).key: f"raw{n:05d}" for n in range(3)}  # job 7 has none, job 9 is not stored


async def test_known_items_count_as_unchanged_and_are_linked_without_writes(store: JobStore) -> None:
    """upsert_batch: each stored ``known`` key "is unchanged (last_seen refreshed when stale, linked
    to feed_id)"; one no longer stored "fails with a reason"."""
    await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", jobs(range(4)), now=T0)
    await store.upsert_batch(BatchKey("ent_a", 2), "feed_b", [job(3)], now=T0)  # job 3: linked already
    keys = [job(n).key for n in range(4)]
    known = [(job(n).key, job(n).external_id) for n in range(4)] + [("gone0001", "https://jobs.example/gone")]

    async with unwritten(store, [*unlinked_rows(store, keys[:3]), keys[3]]):
        result = await store.upsert_batch(
            BatchKey("ent_b", 1), "feed_b", jobs(range(4, 6)), now=T0 + timedelta(seconds=5), known=known
        )

    assert (result.new, result.updated, result.unchanged, result.failed) == (2, 0, 4, 1)
    assert result.failures[0].external_id == "https://jobs.example/gone"
    assert "next run" in result.failures[0].reason
    assert (await store.get_job(job(1).key))["feed_ids"] == ["feed_a", "feed_b"]
    assert (await store.get_job(job(1).key))["last_seen"] == T0  # recent: not rewritten

    late = T0 + timedelta(seconds=120)
    stale = await store.upsert_batch(
        BatchKey("ent_c", 1), "feed_b", [], now=late, seen_refresh_s=60, known=known[:2]
    )
    assert stale == UpsertResult(unchanged=2)
    assert (await store.get_job(job(0).key))["last_seen"] == late
    assert (await store.get_job(job(0).key))["last_changed"] == T0


async def test_a_batch_of_known_items_only_is_confirmed_linked_and_recorded_once(store: JobStore) -> None:
    """upsert_batch with ``known`` only (what an unchanged re-import sends; one statement on
    PostgreSQL): stored keys are unchanged and linked, a vanished one fails with its reason, and a
    second delivery of the batch returns what the first recorded."""
    await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", jobs(range(3)), now=T0)
    gone = ("gone0001", "https://jobs.example/gone")
    known = [(job(0).key, job(0).external_id), gone, *[(job(n).key, job(n).external_id) for n in (1, 2)]]

    keys = [job(n).key for n in range(3)]
    async with unwritten(store, unlinked_rows(store, keys)):  # recent last_seen: no job row written
        result = await store.upsert_batch(
            BatchKey("ent_b", 1), "feed_b", [], now=T0 + timedelta(seconds=5), known=known
        )

    assert (result.new, result.updated, result.unchanged, result.failed) == (0, 0, 3, 1)
    assert [f.external_id for f in result.failures] == ["https://jobs.example/gone"]
    assert "next run" in result.failures[0].reason
    for n in range(3):
        stored = await store.get_job(job(n).key)
        assert (stored["feed_ids"], stored["last_seen"]) == (["feed_a", "feed_b"], T0)

    async with unwritten(store, keys):  # linked and seen recently: nothing to write
        quiet = await store.upsert_batch(
            BatchKey("ent_c", 1), "feed_b", [], now=T0 + timedelta(seconds=7), known=known
        )
    assert quiet == result
    again = await store.upsert_batch(
        BatchKey("ent_b", 1), "feed_b", [], now=T0 + timedelta(seconds=9), known=known[:1]
    )
    assert again == result
    assert await store.batch_results("ent_b") == {1: result}


# ---------------------------------------------------------------- admin API: history lists


async def history_run(
    store: JobStore,
    trigger: Trigger,
    started_at: datetime,
    *feeds_and_statuses: tuple[str, EntryStatus],
    fetch_s: float | None = None,
) -> ImportRun:
    """A stored run of ``trigger`` whose entries are closed as given (counts: 1 new each)."""
    run_id = new_id("run")
    entries = [
        ImportEntry(id=f"{run_id}-{i}", run_id=run_id, feed_id=feed_id, url=f"https://{feed_id}.example/",
                    name=f"Feed {feed_id}")
        for i, (feed_id, _) in enumerate(feeds_and_statuses)
    ]  # fmt: skip
    await store.create_run(ImportRun(run_id=run_id, trigger=trigger, started_at=started_at, feeds=entries))
    for entry, (feed_id, status) in zip(entries, feeds_and_statuses, strict=True):
        await store.update_entry(entry.id, {"started_at": started_at, "fetch_s": fetch_s})
        if status.is_final:
            await store.upsert_batch(BatchKey(entry.id, 1), feed_id, [job(hash(entry.id) % 10_000)], now=T0)
            error = "fetch: HTTP 404" if status is EntryStatus.FAILED else None
            await store.finalize_entry(
                entry.id, status=status, finished_at=started_at + timedelta(seconds=30), error=error
            )
        else:
            await store.update_entry(entry.id, {"status": status})
    await store.finalize_run_if_done(run_id, started_at + timedelta(minutes=1))
    return await store.get_run(run_id)


async def test_list_and_count_runs_with_filters_and_sort(store: JobStore) -> None:
    """list_runs/count_runs: filters trigger, status, feed_id, since <= started_at < until; sort."""
    ok, cut = EntryStatus.COMPLETED, EntryStatus.FAILED
    a = await history_run(store, Trigger.CRON, T0, ("feed_a", ok))
    b = await history_run(store, Trigger.MANUAL, T0 + DAY, ("feed_a", ok), ("feed_b", cut))
    c = await history_run(store, Trigger.CRON, T0 + 2 * DAY, ("feed_b", cut))
    d = await history_run(store, Trigger.CLI, T0 + 3 * DAY, ("feed_b", EntryStatus.FETCHING))
    assert [r.status for r in (a, b, c, d)] == [
        RunStatus.COMPLETED, RunStatus.PARTIAL, RunStatus.FAILED, RunStatus.RUNNING
    ]  # fmt: skip

    async def ids(query: RunQuery, **page: int) -> list[str]:
        return [r.run_id for r in await store.list_runs(query=query, **page)]

    assert await ids(RunQuery()) == [d.run_id, c.run_id, b.run_id, a.run_id]
    assert await ids(RunQuery(newest_first=False)) == [a.run_id, b.run_id, c.run_id, d.run_id]
    assert await ids(RunQuery(trigger=Trigger.CRON)) == [c.run_id, a.run_id]
    assert await ids(RunQuery(status=RunStatus.PARTIAL)) == [b.run_id]
    assert await ids(RunQuery(feed_id="feed_a")) == [b.run_id, a.run_id]
    assert await ids(RunQuery(since=T0 + DAY, until=T0 + 3 * DAY)) == [c.run_id, b.run_id]
    assert await ids(RunQuery(trigger=Trigger.CRON, feed_id="feed_b")) == [c.run_id]
    assert await ids(RunQuery(), limit=2, offset=1) == [c.run_id, b.run_id]
    listed = await store.list_runs(query=RunQuery(feed_id="feed_a"))
    assert listed[0] == b  # a run keeps all its entries, not only the feed's
    assert await store.count_runs() == 4
    assert await store.count_runs(RunQuery(feed_id="feed_b", status=RunStatus.FAILED)) == 1
    assert await store.count_runs(RunQuery(since=T0 + 4 * DAY)) == 0


async def test_list_and_count_entries_with_filters_and_their_trigger(store: JobStore) -> None:
    """list_entries/count_entries: filters run_id, feed_id, status (entry), trigger and dates (run);
    ordered by run like list_runs, then as created; each with its run's trigger."""
    ok, cut = EntryStatus.COMPLETED, EntryStatus.FAILED
    a = await history_run(store, Trigger.CRON, T0, ("feed_a", ok), ("feed_b", cut))
    b = await history_run(store, Trigger.MANUAL, T0 + DAY, ("feed_a", cut), ("feed_b", ok))

    async def ids(query: EntryQuery, **page: int) -> list[str]:
        return [h["entry"].id for h in await store.list_entries(query=query, **page)]

    everything = [b.feeds[0].id, b.feeds[1].id, a.feeds[0].id, a.feeds[1].id]
    assert await ids(EntryQuery()) == everything
    assert await ids(EntryQuery(newest_first=False)) == [a.feeds[0].id, a.feeds[1].id, *everything[:2]]
    assert await ids(EntryQuery(run_id=a.run_id)) == [a.feeds[0].id, a.feeds[1].id]
    assert await ids(EntryQuery(feed_id="feed_b")) == [b.feeds[1].id, a.feeds[1].id]
    assert await ids(EntryQuery(status=cut)) == [b.feeds[0].id, a.feeds[1].id]
    assert await ids(EntryQuery(trigger=Trigger.CRON)) == [a.feeds[0].id, a.feeds[1].id]
    assert await ids(EntryQuery(since=T0 + DAY)) == everything[:2]
    assert await ids(EntryQuery(until=T0 + DAY)) == everything[2:]
    assert await ids(EntryQuery(), limit=2, offset=1) == everything[1:3]
    first = (await store.list_entries(query=EntryQuery(run_id=b.run_id)))[0]
    assert first == {"entry": b.feeds[0], "trigger": Trigger.MANUAL}
    assert await store.count_entries() == 4
    assert await store.count_entries(EntryQuery(feed_id="feed_a", status=ok)) == 1


# ---------------------------------------------------------------- admin API: feeds


async def test_add_feed_gives_a_fresh_id_and_refuses_a_stored_url(store: JobStore) -> None:
    """add_feed: "a new feed with a fresh id and no validators. Conflict if a feed has that URL"."""
    added = await store.add_feed(source("New", "https://new.example/feed", priority=Priority.HIGH))
    assert added.id.startswith("feed_") and (added.etag, added.last_modified) == (None, None)
    assert await store.get_feed(added.id) == added
    assert added.priority is Priority.HIGH
    with pytest.raises(Conflict) as caught:
        await store.add_feed(source("Again", "https://new.example/feed"))
    assert "already exists" in str(caught.value) and not caught.value.transient
    assert [f.name for f in await store.list_feeds()] == ["New"]


async def test_update_feed_sets_fields_a_new_url_clears_validators(store: JobStore) -> None:
    """update_feed: sets the given fields; a new URL clears the validators; NotFound; Conflict."""
    feed, other = await store.sync_feeds(
        [source("A", "https://a.example/feed"), source("B", "https://b.example/feed")]
    )
    await store.save_feed_validators(feed.id, '"e1"', "Mon, 05 Jan 2026 12:00:00 GMT")

    paused = await store.update_feed(feed.id, {"enabled": False, "priority": Priority.HIGH, "name": "A2"})
    assert (paused.enabled, paused.priority, paused.name, paused.etag) == (False, Priority.HIGH, "A2", '"e1"')
    assert await store.update_feed(feed.id, {}) == paused
    assert (await store.update_feed(feed.id, {"url": feed.url})).etag == '"e1"'  # same URL: kept

    moved = await store.update_feed(feed.id, {"url": "https://a2.example/feed", "format": FeedFormat.ATOM})
    assert (moved.url, moved.format, moved.etag, moved.last_modified) == (
        "https://a2.example/feed", FeedFormat.ATOM, None, None
    )  # fmt: skip
    with pytest.raises(Conflict):
        await store.update_feed(feed.id, {"url": other.url})
    with pytest.raises(NotFound):
        await store.update_feed("feed_missing", {"enabled": True})
    assert await store.get_feed(feed.id) == moved


async def test_delete_feed_keeps_its_history_and_job_links(store: JobStore) -> None:
    """delete_feed: "Its import history and the jobs' links to it stay. NotFound if absent"."""
    (feed,) = await store.sync_feeds([source("A", "https://a.example/feed")])
    run = await history_run(store, Trigger.CLI, T0, (feed.id, EntryStatus.COMPLETED))
    key = (await store.list_jobs())[0]["record"].key

    await store.delete_feed(feed.id)

    with pytest.raises(NotFound):
        await store.get_feed(feed.id)
    with pytest.raises(NotFound):
        await store.delete_feed(feed.id)
    assert await store.get_run(run.run_id) == run
    assert (await store.get_job(key))["feed_ids"] == [feed.id]
    readded = await store.add_feed(source("A", "https://a.example/feed"))  # the URL is free again
    assert readded.id != feed.id


async def test_feed_health_from_the_entries(store: JobStore) -> None:
    """feed_health: last status and run, last success, success rate and median fetch time over the
    newest `window` final entries, last error; None values for a feed without history."""
    quiet, busy = await store.sync_feeds(
        [source("Quiet", "https://quiet.example/"), source("Busy", "https://busy.example/")]
    )
    ok, cut = EntryStatus.COMPLETED, EntryStatus.FAILED
    plan = [(ok, 1.0), (cut, None), (EntryStatus.NOT_MODIFIED, 3.0), (ok, 2.0), (cut, 9.0)]
    for day, (status, fetch_s) in enumerate(plan):
        await history_run(store, Trigger.CRON, T0 + day * DAY, (busy.id, status), fetch_s=fetch_s)
    await history_run(store, Trigger.CRON, T0 + 9 * DAY, (busy.id, EntryStatus.FETCHING))

    health = await store.feed_health()

    assert set(health) == {quiet.id, busy.id}
    assert health[quiet.id] == {
        "last_status": None, "last_run_at": None, "last_success_at": None,
        "success_rate": None, "median_fetch_s": None, "last_error": None, "permanent_failures": 0,
    }  # fmt: skip
    h = health[busy.id]
    assert (h["last_status"], h["last_run_at"]) == (EntryStatus.FETCHING, T0 + 9 * DAY)
    assert h["last_success_at"] == T0 + 3 * DAY + timedelta(seconds=30)
    assert h["success_rate"] == pytest.approx(3 / 5)
    assert h["median_fetch_s"] == pytest.approx(2.5)  # of 1, 3, 2, 9 (one entry recorded none)
    assert h["last_error"] == "fetch: HTTP 404"

    narrow = (await store.feed_health([busy.id], window=2))[busy.id]
    assert narrow["success_rate"] == pytest.approx(1 / 2)
    assert narrow["median_fetch_s"] == pytest.approx(5.5)  # of 2 and 9
    assert await store.feed_health(["feed_gone"]) == {"feed_gone": health[quiet.id]}


# ---------------------------------------------------------------- admin API: job search


async def searchable_jobs(store: JobStore) -> dict[str, JobRecord]:
    records = {
        "py": job(1, title="Senior Python Engineer", company="Acme", job_types=["full-time"],
                  categories=["dev", "data"], locations=["Berlin"], published_at=T0 - 3 * DAY),
        "rust": job(2, title="Rust developer", company="Oxide 100% remote", job_types=["contract"],
                    categories=["dev"], locations=["Remote"], published_at=T0 - DAY),
        "sales": job(3, title="Account executive", company="Shop", description_text="Sell PYTHON books",
                     job_types=["full-time"], categories=["sales"], locations=["Paris", "Remote"],
                     published_at=None),
    }  # fmt: skip
    await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", [records["py"], records["rust"]], now=T0)
    await store.upsert_batch(BatchKey("ent_b", 1), "feed_b", [records["sales"]], now=T0 + DAY)
    return records


async def test_job_search_text_filters_and_count(store: JobStore) -> None:
    """JobQuery: q over title/company/description_text (case-insensitive, literal); feed; list
    membership (exact); posted date (published_at, else first_seen); count_jobs agrees."""
    r = await searchable_jobs(store)

    async def found(**fields: Any) -> set[str]:
        query = JobQuery(**fields)
        listed = {j["record"].key for j in await store.list_jobs(query=query)}
        assert await store.count_jobs(query=query) == len(listed)
        return {name for name, record in r.items() if record.key in listed}

    assert await found() == {"py", "rust", "sales"}
    assert await found(q="python") == {"py", "sales"}  # title, description (any case)
    assert await found(q="ACME") == {"py"}
    assert await found(q="100%") == {"rust"}  # % is literal
    assert await found(q="1_0") == set()  # and so is _
    assert await found(feed_id="feed_b") == {"sales"}
    assert await found(job_type="full-time") == {"py", "sales"}
    assert await found(category="dev") == {"py", "rust"}
    assert await found(location="Remote") == {"rust", "sales"}
    assert await found(location="remote") == set()  # exact element match
    assert await found(location="Rem") == set()
    assert await found(since=T0 - 2 * DAY) == {"rust", "sales"}  # sales: no published_at, first seen T0+1d
    assert await found(until=T0 - 2 * DAY) == {"py"}
    assert await found(q="python", job_type="full-time", location="Paris", feed_id="feed_b") == {"sales"}
    assert await store.count_jobs(feed_id="feed_a", query=JobQuery(category="dev")) == 2


async def test_job_search_sorts_with_missing_values_last(store: JobStore) -> None:
    """JobQuery: ordered by sort (descending when asked), then key; missing values last."""
    r = await searchable_jobs(store)

    async def order(**fields: Any) -> list[str]:
        by_key = {record.key: name for name, record in r.items()}
        return [by_key[j["record"].key] for j in await store.list_jobs(query=JobQuery(**fields))]

    assert await order() == ["sales", "py", "rust"]  # last_changed desc, then key
    assert await order(sort="title", descending=False) == ["sales", "rust", "py"]
    assert await order(sort="published_at") == ["rust", "py", "sales"]
    assert await order(sort="published_at", descending=False) == ["py", "rust", "sales"]
    assert await order(sort="title", descending=False, q="e") == ["sales", "rust", "py"]
    paged = await store.list_jobs(limit=1, offset=1, query=JobQuery(sort="published_at"))
    assert [j["record"].key for j in paged] == [r["py"].key]


# ---------------------------------------------------------------- admin API: reopen, stats, totals


async def test_reopen_entry_queues_it_again_and_reopens_its_run(store: JobStore) -> None:
    """reopen_entry: entry queued with error/started/finished/duration cleared, its run running with
    finished_at cleared; finalizing again closes both anew; NotFound."""
    run = await history_run(
        store, Trigger.CRON, T0, ("feed_a", EntryStatus.FAILED), ("feed_b", EntryStatus.COMPLETED)
    )
    assert run.status is RunStatus.PARTIAL and run.finished_at is not None
    failed = run.feeds[0]

    reopened = await store.reopen_entry(failed.id)

    assert (reopened.status, reopened.error, reopened.started_at, reopened.finished_at) == (
        EntryStatus.QUEUED, None, None, None
    )  # fmt: skip
    assert reopened.duration_s is None and reopened.new == failed.new  # counts wait for finalize
    again = await store.get_run(run.run_id)
    assert (again.status, again.finished_at) == (RunStatus.RUNNING, None)
    assert (await store.update_entry(failed.id, {"status": EntryStatus.FETCHING})).status is (
        EntryStatus.FETCHING
    )  # an open entry moves on as usual
    await store.finalize_entry(failed.id, status=EntryStatus.COMPLETED, finished_at=T0 + DAY)
    closed = await store.finalize_run_if_done(run.run_id, T0 + DAY)
    assert closed is not None and (closed.status, closed.finished_at) == (RunStatus.COMPLETED, T0 + DAY)
    with pytest.raises(NotFound):
        await store.reopen_entry("ent_missing")


async def test_stats_series_oldest_first_with_feed_points(store: JobStore) -> None:
    """stats: the newest `limit` runs oldest first with totals and duration; per feed one point per
    entry in those runs, in run order; feeds by name; a deleted feed keeps its entries' name."""
    zed, alpha = await store.sync_feeds(
        [source("Zed", "https://z.example/"), source("Alpha", "https://a.example/")]
    )
    ok, cut = EntryStatus.COMPLETED, EntryStatus.FAILED
    await history_run(store, Trigger.CRON, T0, (zed.id, ok))
    second = await history_run(store, Trigger.CRON, T0 + DAY, (zed.id, ok), (alpha.id, cut), fetch_s=1.5)
    third = await history_run(store, Trigger.MANUAL, T0 + 2 * DAY, ("feed_gone", ok))

    series = await store.stats(limit=2)

    assert [p["run_id"] for p in series["runs"]] == [second.run_id, third.run_id]
    point = series["runs"][0]
    assert (point["trigger"], point["status"], point["started_at"]) == (
        Trigger.CRON, RunStatus.PARTIAL, T0 + DAY
    )  # fmt: skip
    entries_new = sum(e.new for e in second.feeds)
    assert (point["new"], point["failed"], point["duration_s"]) == (entries_new, 0, 60.0)
    assert [(s["feed_id"], s["name"]) for s in series["feeds"]] == [
        (alpha.id, "Alpha"), ("feed_gone", "Feed feed_gone"), (zed.id, "Zed")
    ]  # fmt: skip
    (alpha_point,) = series["feeds"][0]["points"]
    assert (alpha_point["run_id"], alpha_point["status"], alpha_point["fetch_s"]) == (
        second.run_id, cut, 1.5
    )  # fmt: skip
    assert alpha_point["duration_s"] == 30.0
    assert [p["run_id"] for p in series["feeds"][2]["points"]] == [second.run_id]
    assert len((await store.stats())["runs"]) == 3
    assert await store.stats(limit=0) == {"runs": [], "feeds": []}


async def test_history_totals_count_runs_entries_and_items(store: JobStore) -> None:
    """history_totals: runs by trigger and status; entries and their items by feed and status."""
    ok, cut = EntryStatus.COMPLETED, EntryStatus.FAILED
    await history_run(store, Trigger.CRON, T0, ("feed_a", ok), ("feed_b", cut))
    await history_run(store, Trigger.CRON, T0 + DAY, ("feed_a", ok))
    await history_run(store, Trigger.CLI, T0 + 2 * DAY, ("feed_a", EntryStatus.QUEUED))

    totals = await store.history_totals()

    runs = {(t["trigger"], t["status"]): t["runs"] for t in totals["runs"]}
    assert runs == {
        (Trigger.CRON, RunStatus.PARTIAL): 1, (Trigger.CRON, RunStatus.COMPLETED): 1,
        (Trigger.CLI, RunStatus.RUNNING): 1,
    }  # fmt: skip
    by_feed = {(t["feed_id"], t["status"]): t for t in totals["entries"]}
    assert set(by_feed) == {("feed_a", ok), ("feed_b", cut), ("feed_a", EntryStatus.QUEUED)}
    a = by_feed[("feed_a", ok)]
    assert (a["entries"], a["new"] + a["unchanged"], a["failed"]) == (2, 2, 0)
    assert by_feed[("feed_a", EntryStatus.QUEUED)]["new"] == 0


async def test_busy_feeds_are_those_with_an_unfinished_entry_in_a_running_run(store: JobStore) -> None:
    """busy_feeds: "an entry not final, in a run still running"."""
    running = await stored_run(store, EntryStatus.PROCESSING, EntryStatus.COMPLETED, EntryStatus.QUEUED)
    assert await store.busy_feeds(["feed_0", "feed_1", "feed_2", "feed_9"]) == {
        "feed_0": running.run_id,
        "feed_2": running.run_id,
    }
    assert await store.busy_feeds([]) == {}


async def test_skipped_entries_count_as_clean_when_the_run_closes(store: JobStore) -> None:
    """finalize_run_if_done: completed when entries "completed, were not modified or were skipped"."""
    run = await stored_run(store, EntryStatus.SKIPPED, EntryStatus.NOT_MODIFIED)
    closed = await store.finalize_run_if_done(run.run_id, T0 + DAY)
    assert closed is not None and closed.status is RunStatus.COMPLETED


async def test_prune_history_deletes_finished_runs_before_the_cutoff_with_their_entries(
    store: JobStore,
) -> None:
    """prune_history: runs that finished before the cutoff go, with entries and batch results; running
    runs stay whatever their age; jobs are not touched."""
    old = await stored_run(store, EntryStatus.COMPLETED, started_at=T0)
    await store.upsert_batch(BatchKey(old.feeds[0].id, 1), "feed_0", jobs(range(3)), now=T0)
    await store.finalize_run_if_done(old.run_id, T0 + timedelta(hours=1))
    running = await stored_run(store, EntryStatus.PROCESSING, started_at=T0)
    recent = await stored_run(store, EntryStatus.COMPLETED, started_at=T0 + 10 * DAY)
    await store.finalize_run_if_done(recent.run_id, T0 + 10 * DAY)

    assert await store.prune_history(T0 + 5 * DAY) == 1

    with pytest.raises(NotFound):
        await store.get_run(old.run_id)
    with pytest.raises(NotFound):
        await store.get_entry(old.feeds[0].id)
    assert await store.batch_results(old.feeds[0].id) == {}
    assert (await store.get_run(running.run_id)).status is RunStatus.RUNNING
    assert (await store.get_run(recent.run_id)).run_id == recent.run_id
    assert await store.count_jobs() == 3
    assert await store.prune_history(T0 + 5 * DAY) == 0


# ---------------------------------------------------------------- sources beyond RSS (0004)


async def test_new_record_fields_round_trip_and_filter(store: JobStore) -> None:
    """The apply URL, workplace, employment types and expiry are stored as given (inserted and
    overwritten) and found by the workplace and employment-type filters."""
    expires = T0 + 30 * DAY
    remote = job(1, apply_url="https://jobs.example/1/apply", workplace="remote",
                 employment_types=["full-time", "contract"], expires_at=expires)  # fmt: skip
    onsite = job(2, workplace="onsite", employment_types=["part-time"])
    await store.upsert_batch(BatchKey("ent_n", 1), "feed_a", [remote, onsite], now=T0)
    assert (await store.get_job(remote.key))["record"] == remote
    changed = job(2, "v2", workplace="hybrid", employment_types=["internship"], expires_at=expires)
    await store.upsert_batch(BatchKey("ent_n", 2), "feed_a", [changed], now=T0 + DAY)
    assert (await store.get_job(changed.key))["record"] == changed

    async def found(**fields: Any) -> set[str]:
        query = JobQuery(**fields)
        listed = {j["record"].key for j in await store.list_jobs(query=query)}
        assert await store.count_jobs(query=query) == len(listed)
        return listed

    assert await found(workplace="remote") == {remote.key}
    assert await found(workplace="hybrid") == {changed.key}
    assert await found(employment_type="contract") == {remote.key}
    assert await found(employment_type="internship", workplace="hybrid") == {changed.key}
    assert await found(employment_type="part-time") == set()


async def test_a_feeds_profile_mapping_and_page_cap_are_kept_and_edited(store: JobStore) -> None:
    mapping = FieldMapping.model_validate(
        {"items": "$.data[*]", "fields": {"title": "name", "locations": {"path": "place", "split": ","}}}
    )
    (feed,) = await store.sync_feeds(
        [source("M", "https://m.example/api", profile="none", mapping=mapping, max_pages=3)]
    )
    assert (feed.profile, feed.mapping, feed.max_pages) == ("none", mapping, 3)
    assert await store.get_feed(feed.id) == feed
    edited = await store.update_feed(feed.id, {"mapping": None, "profile": "stackoverflow", "max_pages": 7})
    assert (edited.profile, edited.mapping, edited.max_pages) == ("stackoverflow", None, 7)
    (again,) = await store.sync_feeds([source("M", "https://m.example/api")])
    assert (again.id, again.profile, again.mapping, again.max_pages) == (feed.id, "auto", None, 50)
