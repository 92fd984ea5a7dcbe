"""A worker killed with SIGKILL in the middle of writing batches loses nothing and counts nothing twice.

On PostgreSQL the test holds an exclusive lock on the jobs table, so the worker process's batch
transactions stop half-way (batch claimed, upsert waiting); then it kills the worker, releases the lock
and lets a fresh worker take over the stalled jobs once their BullMQ locks lapse. On MongoDB a fail
point holds the worker's inserts instead (see that test).
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pymongo import AsyncMongoClient

from fixtures.wpjm import load_real_jobs, nine_feeds, render_feed, serve_feeds
from jobimporter.config import Settings
from jobimporter.feedjob import FeedJobData, _batch_job, _Queued
from jobimporter.models import (
    EntryStatus,
    FeedSource,
    ImportEntry,
    ImportRun,
    RunStatus,
    Trigger,
    new_id,
    utcnow,
)
from jobimporter.normalize import normalize
from jobimporter.parse import parse_feed
from jobimporter.queue import feed_job_id
from jobimporter.runs import feed_job, start_run, wait_for_run
from jobimporter.runtime import Runtime
from plugins.mongo import SecantusServer, with_database

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.update(
        REDIS_URL=str(settings.redis_url),
        DATABASE_URL=str(settings.database_url),
        JOBIMPORTER_DATA_DIR=str(settings.data_dir),
        JOBIMPORTER_LOCK_DURATION_MS=str(settings.lock_duration_ms),
        JOBIMPORTER_STALLED_INTERVAL_MS=str(settings.stalled_interval_ms),
        JOBIMPORTER_CONCURRENCY="4",
        JOBIMPORTER_HOST_INTERVAL_S="0",
        # Deliberately not the test's batch size: a feed job retried by the rescuer must still cut
        # its items exactly as the killed worker did.
        JOBIMPORTER_BATCH_SIZE="7",
        JOBIMPORTER_LOG_LEVEL="WARNING",
    )
    return env


async def wait_until(predicate: Any) -> None:
    async with asyncio.timeout(30):
        while not await predicate():  # noqa: ASYNC110 - Redis queue counts announce nothing
            await asyncio.sleep(0.1)


async def test_worker_killed_mid_batch_loses_nothing(
    tmp_path: Path, redis_url: str, pg_database_url: str, feeds: Any
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=pg_database_url,
        batch_size=5, lock_duration_ms=2000, stalled_interval_ms=1000, backoff_ms=100, host_interval_s=0,
    )  # fmt: skip
    sources = serve_feeds(feeds, nine_feeds())

    async with Runtime(settings, workers=False) as producer:
        ctx = producer.ctx
        feed_rows = await ctx.store.sync_feeds(sources)
        blocker = await asyncpg.connect(pg_database_url.replace("postgresql+asyncpg", "postgresql"))
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE jobs IN EXCLUSIVE MODE")  # batch upserts now hang mid-transaction
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobimporter.cli", "worker", env=worker_env(settings)
        )
        try:
            after = await ctx.events.last_id()
            run = await start_run(ctx, feed_rows, Trigger.CLI)

            async def batches_active() -> bool:
                counts = await ctx.queues.counts()
                return counts[ctx.queues.names.batches]["active"] >= 3

            await wait_until(batches_active)
            worker.send_signal(signal.SIGKILL)
            await asyncio.wait_for(worker.wait(), 10)
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
            await transaction.rollback()
            await blocker.close()

        async with Runtime(settings, workers=True) as rescuer:  # a fresh worker takes over the stalled jobs
            finished = await asyncio.wait_for(wait_for_run(rescuer.ctx, run.run_id, after), 60)

        assert_exact_and_complete(finished, await ctx.store.count_jobs())


DOOMED = "doomed-worker"  # the appName of the worker the MongoDB test kills


async def held_inserts(admin: AsyncMongoClient[dict[str, Any]]) -> int:
    """How many inserts of the doomed worker the fail point is holding (``currentOp``)."""
    ops = (await admin.admin.command({"currentOp": 1}))["inprog"]
    return sum(
        1
        for op in ops
        if op.get("op") == "insert"
        and (op.get("clientMetadata") or {}).get("application", {}).get("name") == DOOMED
    )


async def fail_point(admin: AsyncMongoClient[dict[str, Any]], mode: str, **data: Any) -> None:
    await admin.admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": data})


@pytest.mark.timeout(300)
async def test_worker_killed_mid_batch_on_mongodb_loses_nothing(
    tmp_path: Path, redis_url: str, feeds: Any, own_mongo: SecantusServer
) -> None:
    """The same on MongoDB. A fail point of the test's own server holds every insert of the doomed
    worker (told apart by the appName in its URL) for 3 s before running it, so its batch
    transactions stop half-way (jobs read, writes on their way); once three are held the worker is
    killed. The held inserts then run in transactions nobody will commit: MongoDB keeps those open
    until transactionLifetimeLimitSeconds (60 s) reaps them, and until then the rescuer's batches
    that touch the same jobs meet write conflicts and are retried. ``attempts`` is raised so the
    retries outlast that wait (30 s per attempt at most); backoffs, lock and stall intervals are
    shortened as in the PostgreSQL test."""
    url = with_database(own_mongo.url, "jobs")
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=url, attempts=8,
        batch_size=5, lock_duration_ms=2000, stalled_interval_ms=1000, backoff_ms=100, host_interval_s=0,
    )  # fmt: skip
    sources = serve_feeds(feeds, nine_feeds())
    admin: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(own_mongo.url)

    async with Runtime(settings, workers=False) as producer:
        ctx = producer.ctx
        feed_rows = await ctx.store.sync_feeds(sources)
        hold = {"failCommands": ["insert"], "appName": DOOMED, "blockConnection": True, "blockTimeMS": 3000}
        await fail_point(admin, "alwaysOn", **hold)
        env = worker_env(settings) | {"DATABASE_URL": with_database(own_mongo.url, "jobs", appName=DOOMED)}
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobimporter.cli", "worker", env=env
        )
        try:
            after = await ctx.events.last_id()
            run = await start_run(ctx, feed_rows, Trigger.CLI)

            async def three_held() -> bool:
                return await held_inserts(admin) >= 3

            async def none_held() -> bool:
                return await held_inserts(admin) == 0

            await wait_until(three_held)
            worker.send_signal(signal.SIGKILL)
            await asyncio.wait_for(worker.wait(), 10)
            await fail_point(admin, "off")
            # The held inserts run now, in transactions their dead client will never commit: the
            # rescuer starts once they have, so it meets them.
            await wait_until(none_held)
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
            await fail_point(admin, "off")
            await admin.close()

        async with Runtime(settings, workers=True) as rescuer:
            finished = await asyncio.wait_for(wait_for_run(rescuer.ctx, run.run_id, after), 240)

        assert_exact_and_complete(finished, await ctx.store.count_jobs())


def assert_exact_and_complete(finished: ImportRun, distinct: int) -> None:
    troubled = [
        (e.url, e.status.value, e.error, e.failed, e.failures[:3])
        for e in finished.feeds
        if e.status is not EntryStatus.COMPLETED or e.failed
    ]
    assert finished.status is RunStatus.COMPLETED, troubled
    assert sum(e.new for e in finished.feeds) == distinct
    for entry in finished.feeds:
        assert entry.status is EntryStatus.COMPLETED
        assert entry.total_fetched == entry.new + entry.updated + entry.unchanged + entry.failed
        assert entry.failed == 0
        path = "/" + entry.url.split("/", 3)[3]
        assert entry.total_fetched == nine_feeds()[path].count(b"<item>")


async def test_a_feed_job_retaken_after_its_fan_out_waits_for_its_pending_batches(
    tmp_path: Path, redis_url: str
) -> None:
    """The state a worker leaves when it dies after storing its finalize step but before waiting for
    its batches (the rarer crash point of the test above): the feed job is retaken with a batch
    still pending, and must wait for it rather than count it as lost."""
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'j.db'}",
        host_interval_s=0,
    )  # fmt: skip
    body = render_feed(load_real_jobs()[:3], title="t", link="https://jobicy.com")
    async with Runtime(settings, workers=False) as producer:
        ctx = producer.ctx
        (feed,) = await ctx.store.sync_feeds([FeedSource(name="f", url="https://jobicy.com/?feed=job_feed")])
        entry = ImportEntry(
            id=new_id("imp"), run_id=new_id("run"), feed_id=feed.id, url=feed.url, name=feed.name
        )
        run = ImportRun(run_id=entry.run_id, trigger=Trigger.CLI, started_at=utcnow(), feeds=[entry])
        await ctx.store.create_run(run)
        records = [
            normalize(raw, source="jobicy.com", base_url=feed.url) for raw in parse_feed(io.BytesIO(body))
        ]
        job = feed_job(entry, feed, ctx)
        data = FeedJobData.from_job(job["data"])  # type: ignore[arg-type]
        data.step, data.batch_size, data.batch_sizes = "finalize", 3, [3]
        await ctx.queues.feeds.add(job["name"], asdict(data), job["opts"])
        parent = {"id": feed_job_id(entry.id), "queue": ctx.queues.feeds.qualifiedName}
        queued = [_Queued(record.key, record.model_dump(mode="json")) for record in records]
        batch = _batch_job(data, 1, queued, [], ctx, parent)
        batch["opts"]["delay"] = 1500  # still pending when the feed job is taken
        await ctx.queues.add_batches([batch])
        after = await ctx.events.last_id()
        async with Runtime(settings, workers=True) as worker:
            done = await asyncio.wait_for(wait_for_run(worker.ctx, run.run_id, after), 30)

    (closed,) = done.feeds
    assert (closed.status, closed.new, closed.failed, closed.error) == (EntryStatus.COMPLETED, 3, 0, None)
    assert done.status is RunStatus.COMPLETED
