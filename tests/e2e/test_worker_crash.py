"""A worker killed with SIGKILL in the middle of writing batches loses nothing and counts nothing twice.

On PostgreSQL the test holds an exclusive lock on the jobs table, so the worker process's batch
transactions stop half-way (batch claimed, upsert waiting); then it kills the worker, releases the lock
and lets a fresh worker take over the stalled jobs once their BullMQ locks lapse. On MongoDB a fail
point holds the worker's inserts instead: that case is test_changelog's MongoDB test, which makes the
same checks (see the note below ``fail_point``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pymongo import AsyncMongoClient

from fixtures.redis_proxy import FreezingRedisProxy
from fixtures.wpjm import load_real_jobs, nine_feeds, render_feed, serve_feeds
from jobimporter.config import Settings
from jobimporter.models import EntryStatus, FeedSource, ImportRun, RunStatus, Trigger
from jobimporter.queue import feed_job_id
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime

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


@contextlib.asynccontextmanager
async def locked_jobs_table(database_url: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Hold an exclusive lock on the jobs table until the ``unlock`` it yields is awaited (or the
    block ends): reads go on, batch upserts wait mid-transaction (batch claimed, upsert waiting)."""
    blocker = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("LOCK TABLE jobs IN EXCLUSIVE MODE")
    held = True

    async def unlock() -> None:
        nonlocal held
        if held:
            held = False
            await transaction.rollback()

    try:
        yield unlock
    finally:
        await unlock()
        await blocker.close()


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
        async with locked_jobs_table(pg_database_url):  # batch upserts now hang mid-transaction
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


# On MongoDB the same kill (a fail point of the test's own SecantusDB holds the doomed worker's inserts,
# the held transactions stay open until the server reaps them after 60 s, the rescuer's batches meet
# them as write conflicts and retry) is test_changelog's MongoDB test, which asserts these counts with
# ``assert_exact_and_complete`` besides the change log: the minute of reaping is waited out once.


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
    tmp_path: Path, redis_url: str, pg_database_url: str, feeds: Any
) -> None:
    """The rarer crash point of the test above: a worker dies after storing its feed job's finalize
    step but before waiting for the batches. Its Redis connections pass through a proxy that freezes
    right after that step is stored; the worker is then killed, with its batches still pending (the
    jobs table is locked). The feed job retaken by a fresh worker must wait for them rather than
    count them as lost."""
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=pg_database_url,
        lock_duration_ms=2000, stalled_interval_ms=1000, backoff_ms=100, host_interval_s=0,
    )  # fmt: skip
    feeds.route("/f", body=render_feed(load_real_jobs()[:20], title="t", link="https://jobicy.com"))
    async with (
        Runtime(settings, workers=False) as producer,
        FreezingRedisProxy(redis_url, trigger=b'"step":"finalize"') as proxy,
        locked_jobs_table(pg_database_url) as unlock,
    ):
        ctx = producer.ctx
        feed_rows = await ctx.store.sync_feeds([FeedSource(name="f", url=feeds.url("/f"))])
        env = worker_env(settings) | {"REDIS_URL": proxy.url}
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobimporter.cli", "worker", env=env
        )
        try:
            after = await ctx.events.last_id()
            run = await start_run(ctx, feed_rows, Trigger.CLI)
            await asyncio.wait_for(proxy.frozen.wait(), 30)
            worker.send_signal(signal.SIGKILL)
            await asyncio.wait_for(worker.wait(), 10)
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
        job_id = feed_job_id(run.feeds[0].id)
        stored = await ctx.queues.feeds.getJob(job_id)  # the crash state: finalize stored, still active
        assert (stored.data["step"], await ctx.queues.feeds.getJobState(job_id)) == ("finalize", "active")
        assert (await ctx.store.batch_results(run.feeds[0].id)) == {}  # every batch still pending

        async with Runtime(settings, workers=True) as rescuer:

            async def retaken() -> bool:  # and waiting for its batches, or (wrongly) finished without them
                if await ctx.queues.feeds.getJobState(job_id) == "waiting-children":
                    return True
                return (await ctx.store.get_run(run.run_id)).status is not RunStatus.RUNNING

            await wait_until(retaken)
            await unlock()  # the batches can be written now
            done = await asyncio.wait_for(wait_for_run(rescuer.ctx, run.run_id, after), 60)

    (closed,) = done.feeds
    assert (closed.status, closed.new, closed.failed, closed.error) == (EntryStatus.COMPLETED, 20, 0, None)
    assert done.status is RunStatus.COMPLETED
