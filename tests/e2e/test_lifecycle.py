"""The job lifecycle and feed health end to end (issue 11): local feed server → queue → workers →
store, at the production settings except where a test says which it shrinks and which test covers
the default.

- a job its feed no longer lists waits out the grace period (default: a day), then expires; a source's
  end date expires a job at that time; a job that comes back is active again;
- an import that failed or was cut short expires nothing;
- feeds sharing jobs, imported together with batches retried, expire each job once with exact counts;
- five imports in a row that fail for good pause a feed, transient failures never do, resuming works.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pytest_lazy_fixtures import lf

from fixtures.jobxml import job_xml
from fixtures.sql import SQL_BACKENDS, is_sqlite, run_sql
from jobimporter.config import Settings
from jobimporter.models import (
    ChangeKind,
    EntryStatus,
    ExpiryReason,
    FeedSource,
    ImportRun,
    JobChange,
    JobStatus,
    RunStatus,
    Trigger,
)
from jobimporter.normalize import record_key
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime
from plugins.feedserver import FeedServer
from plugins.mongo import SecantusServer, with_database

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]

XML = "application/xml"


def key(n: int) -> str:
    return record_key("127.0.0.1", f"R{n}")


def settings_for(tmp_path: Path, redis_url: str, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "redis_url": redis_url,
        "database_url": database_url,
        "batch_size": 7,  # several batches per feed
        # All test feeds are on 127.0.0.1; politeness (and its default) has its own tests, and so has
        # the retry backoff (e2e/test_default_workload.py runs 3 attempts at the default backoff).
        "host_interval_s": 0,
        "backoff_ms": 100,
        **overrides,
    }
    return Settings(**values)


Importer = Callable[..., Awaitable[ImportRun]]


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def runtime(
    tmp_path: Path, redis_url: str, database_url: str, overrides: dict[str, Any]
) -> AsyncIterator[Runtime]:
    if not is_sqlite(database_url):
        # The sweep runs at its default (every 10 s) on SQLite; on PostgreSQL and MongoDB every second,
        # so that the tests that wait for it do not wait ten seconds on each backend.
        overrides = {"expiry_interval_s": 1, **overrides}
    async with Runtime(settings_for(tmp_path, redis_url, database_url, **overrides), workers=True) as rt:
        yield rt


@pytest.fixture
def run_import(runtime: Runtime) -> Importer:
    async def run(*sources: FeedSource) -> ImportRun:
        ctx = runtime.ctx
        feeds = await ctx.store.sync_feeds(list(sources))
        after = await ctx.events.last_id()
        started = await start_run(ctx, feeds, Trigger.CLI)
        return await asyncio.wait_for(wait_for_run(ctx, started.run_id, after), 120)

    return run


def serve(feeds: FeedServer, path: str, body: bytes, **reply: Any) -> FeedSource:
    feeds.route(path, body=body, content_type=XML, **reply)
    return FeedSource(name=path, url=feeds.url(path))


async def wait_for_change(runtime: Runtime, job_key: str, kind: ChangeKind) -> JobChange:
    """The job's change of that kind, once the change log has it (the sweep runs every 10 s on SQLite,
    every second on the others)."""
    async with asyncio.timeout(60):
        while True:
            found = [c for c in await runtime.ctx.store.list_changes(job_key=job_key) if c.kind is kind]
            if found:
                return found[-1]
            await asyncio.sleep(0.2)  # the store is the record: nothing announces a sweep


def entry_of(run: ImportRun, url: str) -> Any:
    return next(e for e in run.feeds if e.url == url)


# ---------------------------------------------------------------- expiry


async def test_a_job_its_feed_dropped_waits_out_the_default_grace_period(
    feeds: FeedServer, runtime: Runtime, run_import: Importer
) -> None:
    """At the default grace period (a day): the entry counts the jobs that left, they stay active,
    waiting (``unlisted_at``), and no expiry is logged. The other tests shrink the grace period."""
    source = serve(feeds, "/jobs.xml", job_xml(range(1, 16)))
    first = await run_import(source)
    feeds.route("/jobs.xml", body=job_xml(range(1, 13)), content_type=XML)
    second = await run_import(source)

    (entry,) = second.feeds
    assert (first.feeds[0].new, entry.status, entry.expired, entry.unchanged) == (
        15,
        EntryStatus.COMPLETED,
        3,
        12,
    )
    left = await runtime.ctx.store.get_job(key(14))
    assert (left["status"], left["unlisted_at"]) == (JobStatus.ACTIVE, entry.finished_at)
    assert (await runtime.ctx.store.get_job(key(2)))["unlisted_at"] is None
    kinds = {c.kind for c in await runtime.ctx.store.list_changes(limit=1000)}
    assert kinds == {ChangeKind.NEW}


@pytest.mark.parametrize("overrides", [{"expire_after_s": 2}], ids=["grace-2s"])
async def test_jobs_that_left_expire_after_the_grace_period_and_come_back_active(
    feeds: FeedServer, runtime: Runtime, run_import: Importer
) -> None:
    """A grace period of 2 s (the default is covered above): the sweep expires the jobs at exactly
    unlisted_at + 2 s, whenever it comes; served again, they are active again."""
    source = serve(feeds, "/jobs.xml", job_xml(range(1, 11)))
    await run_import(source)
    feeds.route("/jobs.xml", body=job_xml(range(1, 9)), content_type=XML)
    dropped = (await run_import(source)).feeds[0]
    assert dropped.expired == 2

    expired = await wait_for_change(runtime, key(10), ChangeKind.EXPIRED)
    assert dropped.finished_at is not None
    assert (expired.at, expired.reason) == (
        dropped.finished_at + timedelta(seconds=2),
        ExpiryReason.LEFT_FEEDS,
    )
    job = await runtime.ctx.store.get_job(key(10))
    assert (job["status"], job["expired_at"]) == (JobStatus.EXPIRED, expired.at)
    assert await runtime.ctx.store.count_jobs(query=_status(JobStatus.EXPIRED)) == 2

    feeds.route("/jobs.xml", body=job_xml(range(1, 11)), content_type=XML)
    back = (await run_import(source)).feeds[0]
    assert (back.expired, back.unchanged) == (0, 10)
    revived = await runtime.ctx.store.list_changes(job_key=key(10))
    assert [c.kind for c in revived] == [ChangeKind.NEW, ChangeKind.EXPIRED, ChangeKind.REACTIVATED]
    assert (await runtime.ctx.store.get_job(key(10)))["status"] is JobStatus.ACTIVE
    assert await runtime.ctx.store.count_jobs(query=_status(JobStatus.ACTIVE)) == 10


def _status(status: JobStatus) -> Any:
    from jobimporter.store.base import JobQuery

    return JobQuery(status=status)


async def test_a_source_end_date_expires_the_job_at_that_time(
    feeds: FeedServer, runtime: Runtime, run_import: Importer
) -> None:
    """``<expirationdate>`` a few seconds ahead: the sweep (every 10 s, the default, on SQLite)
    expires the job with expired_at = its end date, while the feed still lists it."""
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    source = serve(feeds, "/jobs.xml", job_xml(range(1, 5), ends={2: ends, 3: ends + timedelta(days=30)}))
    run = await run_import(source)
    assert run.status is RunStatus.COMPLETED

    expired = await wait_for_change(runtime, key(2), ChangeKind.EXPIRED)
    assert (expired.at, expired.reason) == (ends, ExpiryReason.END_DATE)
    assert (await runtime.ctx.store.get_job(key(2)))["expired_at"] == ends
    assert [(await runtime.ctx.store.get_job(key(n)))["status"] for n in (1, 3, 4)] == [JobStatus.ACTIVE] * 3
    again = (await run_import(source)).feeds[0]  # still listed with the same end date: stays expired
    assert (again.unchanged, again.expired) == (4, 0)
    assert (await runtime.ctx.store.get_job(key(2)))["status"] is JobStatus.EXPIRED


REFUSE_BATCH_2 = {
    "sqlite": (
        (
            "CREATE TRIGGER refuse_batch_2 BEFORE INSERT ON batches WHEN NEW.batch_no = 2 "
            "BEGIN SELECT RAISE(ABORT, 'batch 2 refused by a test trigger'); END"
        ),
    ),
    "postgres": (
        (
            "CREATE FUNCTION refuse_batch_2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.batch_no = 2 THEN RAISE EXCEPTION 'batch 2 refused by a test trigger' "
            "USING ERRCODE = '23514'; END IF; RETURN NEW; END $$"
        ),
        "CREATE TRIGGER refuse_batch_2 BEFORE INSERT ON batches FOR EACH ROW EXECUTE FUNCTION refuse_batch_2()",
    ),
}


def is_mongodb(database_url: str) -> bool:
    return database_url.startswith(("mongodb://", "mongodb+srv://"))


async def mongo_command(database_url: str, command: dict[str, Any], *, admin: bool = False) -> None:
    """Run ``command`` on the test's database (or ``admin``) from a client of the test's own."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await (client.admin if admin else client.get_default_database()).command(command)
    finally:
        await client.close()


async def refuse_batch_2(database_url: str, refused: bool = True) -> None:
    """From outside, make the database refuse every batch 2 for good, or (``refused=False``) take them
    again: a trigger on SQL, a validator of the ``batches`` collection on MongoDB."""
    if is_mongodb(database_url):
        validator = {"batch_no": {"$ne": 2}} if refused else {}
        await mongo_command(database_url, {"collMod": "batches", "validator": validator})
    elif refused:
        await run_sql(database_url, *REFUSE_BATCH_2["sqlite" if is_sqlite(database_url) else "postgres"])
    else:
        on_table = "" if is_sqlite(database_url) else " ON batches"
        await run_sql(database_url, "DROP TRIGGER refuse_batch_2" + on_table)


@pytest.mark.parametrize("overrides", [{"expire_after_s": 0}], ids=["grace-0"])
async def test_a_failed_or_cut_short_import_expires_nothing(
    feeds: FeedServer, runtime: Runtime, run_import: Importer, database_url: str
) -> None:
    """With no grace period at all (so anything unlinked would expire at once): a 404, a document
    broken after two items, and an import whose second batch the database refuses for good (a
    trigger, or on MongoDB a collection validator, from outside) expire nothing; a complete import
    then does."""
    source = serve(feeds, "/jobs.xml", job_xml(range(1, 15)))
    assert (await run_import(source)).feeds[0].new == 14

    feeds.route("/jobs.xml", status=404, body=b"gone", content_type="text/plain")
    gone = (await run_import(source)).feeds[0]
    broken_body = job_xml(range(1, 3))[: -len("</source>")] + b"<job><title>Engineer 3"
    feeds.route("/jobs.xml", body=broken_body, content_type=XML)
    broken = (await run_import(source)).feeds[0]
    await refuse_batch_2(database_url)
    feeds.route("/jobs.xml", body=job_xml(range(1, 11)), content_type=XML)
    cut = (await run_import(source)).feeds[0]

    assert (gone.status, gone.expired) == (EntryStatus.FAILED, 0)
    assert (broken.status, broken.total_fetched, broken.expired) == (EntryStatus.FAILED, 2, 0)
    assert (cut.status, cut.failed, cut.expired) == (EntryStatus.COMPLETED, 3, 0), cut
    refusal = "Document failed validation" if is_mongodb(database_url) else "refused by a test trigger"
    assert refusal in cut.failures[0]["reason"], cut.failures
    store = runtime.ctx.store
    assert await store.count_jobs(query=_status(JobStatus.ACTIVE)) == 14
    assert ChangeKind.EXPIRED not in {c.kind for c in await store.list_changes(limit=1000)}

    await refuse_batch_2(database_url, refused=False)
    whole = (await run_import(source)).feeds[0]
    assert whole.expired == 4  # 11..14
    assert await store.count_jobs(query=_status(JobStatus.EXPIRED)) == 4


# The first claims of batches fail as a serialization failure would (transient), so those batches are
# retried; a sequence counts them, since it is not rolled back with the refused statement.
REFUSE_FIRST_CLAIMS = (
    "CREATE SEQUENCE batch_claims",
    (
        "CREATE FUNCTION refuse_first_claims() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF nextval('batch_claims') <= 4 THEN "
        "RAISE EXCEPTION 'could not serialize access (a test trigger)' USING ERRCODE = '40001'; "
        "END IF; RETURN NEW; END $$"
    ),
    (
        "CREATE TRIGGER refuse_first_claims BEFORE INSERT ON batches FOR EACH ROW "
        "EXECUTE FUNCTION refuse_first_claims()"
    ),
)


@pytest.fixture
def own_mongo_database_url(own_mongo: SecantusServer) -> str:
    """A database on a SecantusDB of the test's own: its fail points reach no other test."""
    return with_database(own_mongo.url, "jobs")


# The first batch claims of a run refused as a transient failure, from outside: a trigger counting
# them on PostgreSQL; on MongoDB a fail point of the test's own server that answers the inserts after
# the run's two (its run and its entries) with a write conflict, without the label that would make
# pymongo retry the transaction itself, so the batch jobs are retried as on PostgreSQL.
_CLAIM_CONFLICT = {"failCommands": ["insert"], "errorCode": 112, "errorLabels": []}


async def refuse_first_claims(database_url: str) -> None:
    if is_mongodb(database_url):
        fail_point = {"configureFailPoint": "failCommand", "mode": {"skip": 2, "times": 4}}
        await mongo_command(database_url, {**fail_point, "data": _CLAIM_CONFLICT}, admin=True)
    elif not is_sqlite(database_url):
        await run_sql(database_url, *REFUSE_FIRST_CLAIMS)


async def assert_four_claims_refused(database_url: str, run: ImportRun) -> None:
    if is_mongodb(database_url):  # an insert now goes through only if all four refusals were spent
        await mongo_command(database_url, {"insert": "spent", "documents": [{"_id": 1}]})
    elif not is_sqlite(database_url):  # 4 claims refused, then every batch of the run written
        claims = await run_sql(database_url, "SELECT last_value FROM batch_claims")
        assert claims == [sum(e.batches for e in run.feeds) + 4]


@pytest.mark.parametrize("overrides", [{"expire_after_s": 0}], ids=["grace-0"])
@pytest.mark.parametrize(
    "database_url",
    [
        *SQL_BACKENDS,
        pytest.param(lf("own_mongo_database_url"), id="mongodb", marks=pytest.mark.external_service),
    ],
)
async def test_feeds_sharing_jobs_expire_each_job_once_whatever_is_retried(
    feeds: FeedServer, runtime: Runtime, run_import: Importer, database_url: str
) -> None:
    """Two feeds that share jobs 1..20 (a: 21..30 of its own, b: 31..40), imported together; then a
    drops 16..20 and 26..30, b drops 11..20 and 31..40. Each entry counts its own links gone, each job
    no feed lists expires once (one change), and a job one feed still lists stays active. On
    PostgreSQL and MongoDB the first batch claims of the second run are refused as transient
    failures (serialization, write conflict), so those batches are retried."""
    a = serve(feeds, "/a.xml", job_xml([*range(1, 21), *range(21, 31)]))
    b = serve(feeds, "/b.xml", job_xml([*range(1, 21), *range(31, 41)]))
    first = await run_import(a, b)
    assert sum(e.new for e in first.feeds) == 40
    before = await runtime.ctx.store.last_change_cursor()
    await refuse_first_claims(database_url)
    feeds.route("/a.xml", body=job_xml([*range(1, 16), *range(21, 26)]), content_type=XML)
    feeds.route("/b.xml", body=job_xml(range(1, 11)), content_type=XML)

    second = await run_import(a, b)

    assert second.status is RunStatus.COMPLETED, [(e.url, e.error) for e in second.feeds]
    assert (entry_of(second, a.url).expired, entry_of(second, b.url).expired) == (10, 20)
    assert [(e.new, e.updated, e.failed) for e in second.feeds] == [(0, 0, 0)] * 2
    changes = await runtime.ctx.store.list_changes(after=before, limit=1000)
    expired = sorted(c.job_key for c in changes if c.kind is ChangeKind.EXPIRED)
    assert expired == sorted(key(n) for n in [16, 17, 18, 19, 20, *range(26, 31), *range(31, 41)])
    assert {c.kind for c in changes} == {ChangeKind.EXPIRED}
    store = runtime.ctx.store
    assert [(await store.get_job(key(n)))["status"] for n in (11, 15, 21, 25)] == [JobStatus.ACTIVE] * 4
    await assert_four_claims_refused(database_url, second)


# ---------------------------------------------------------------- feed health


async def test_five_permanent_failures_pause_a_feed_transient_ones_never_and_it_resumes(
    feeds: FeedServer, runtime: Runtime, run_import: Importer
) -> None:
    """At the default (5): five imports in a row answered 404 pause the feed, with the reason and the
    time; five answered 503 (each retried 3 times) do not. Resumed, it is imported again, and a
    success puts its count back to zero."""
    gone = serve(feeds, "/gone.xml", b"gone", status=404)
    flaky = serve(feeds, "/flaky.xml", b"busy", status=503)
    for _ in range(5):
        run = await run_import(gone, flaky)
        assert {e.status for e in run.feeds} == {EntryStatus.FAILED}
    store = runtime.ctx.store
    stored_gone, stored_flaky = await store.sync_feeds([gone, flaky])
    assert stored_gone.enabled is False and stored_gone.paused_at == entry_of(run, gone.url).finished_at
    assert stored_gone.paused_reason is not None and "404" in stored_gone.paused_reason
    assert "5 imports in a row" in stored_gone.paused_reason
    assert (stored_flaky.enabled, stored_flaky.paused_at) == (True, None)
    health = await store.feed_health([stored_gone.id, stored_flaky.id])
    assert (health[stored_gone.id]["permanent_failures"], health[stored_flaky.id]["permanent_failures"]) == (
        5,
        0,
    )

    resumed = await store.update_feed(stored_gone.id, {"enabled": True})
    assert (resumed.enabled, resumed.paused_at) == (True, None)
    feeds.route("/gone.xml", body=job_xml(range(1, 3)), content_type=XML)
    back = await run_import(gone)
    assert back.feeds[0].new == 2
    assert (await store.feed_health([stored_gone.id]))[stored_gone.id]["permanent_failures"] == 0
