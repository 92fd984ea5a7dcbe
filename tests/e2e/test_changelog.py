"""The change log as a job board syncs from it (issue 11): a consumer that reads page after page by
cursor while imports run, across a worker killed with SIGKILL in the middle of writing batches, gets
every change once, in order, and misses none.

PostgreSQL and MongoDB, where batches commit concurrently in several connections (on SQLite writers
take turns, so commit order is cursor order by construction). The worker subprocess is stalled
mid-batch from outside (PostgreSQL: an exclusive lock on the jobs table; MongoDB: a fail point holding
its inserts), killed, and replaced, as in test_worker_crash.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from e2e.test_worker_crash import (
    DOOMED,
    assert_exact_and_complete,
    fail_point,
    held_inserts,
    locked_jobs_table,
    wait_until,
    worker_env,
)
from fixtures.wpjm import changed_copy, load_real_jobs, nine_feeds, render_feed, serve_feeds
from jobimporter.config import Settings
from jobimporter.models import ChangeKind, Feed, ImportRun, JobChange, RunStatus, Trigger
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime
from jobimporter.store.base import JobStore
from plugins.mongo import SecantusServer, with_database

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]


class Consumer:
    """Reads the log as a client of ``GET /api/changes`` does: small pages, keeping the last cursor."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.seen: list[JobChange] = []
        self.cursor = 0
        self.pages = 0

    async def read_until(self, done: asyncio.Event) -> None:
        while True:
            finished = done.is_set()  # read once more after the imports ended: then nothing is left
            page = await self.store.list_changes(after=self.cursor, limit=7)
            self.seen += page
            self.pages += bool(page)
            if page:
                self.cursor = page[-1].cursor
            elif finished:
                return
            else:
                await asyncio.sleep(0.02)  # a reader polling the API; nothing to wait on


async def test_a_consumer_gets_every_change_once_in_order_across_a_worker_kill(
    tmp_path: Path, redis_url: str, pg_database_url: str, feeds: Any
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=pg_database_url,
        batch_size=5, lock_duration_ms=2000, stalled_interval_ms=1000, backoff_ms=100, host_interval_s=0,
    )  # fmt: skip
    sources = serve_feeds(feeds, nine_feeds())
    done = asyncio.Event()

    async with Runtime(settings, workers=False) as producer:
        ctx = producer.ctx
        consumer = Consumer(ctx.store)
        reading = asyncio.create_task(consumer.read_until(done))
        feed_rows = await ctx.store.sync_feeds(sources)
        async with locked_jobs_table(pg_database_url):
            worker = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "jobimporter.cli", "worker", env=worker_env(settings)
            )
            try:
                after = await ctx.events.last_id()
                run = await start_run(ctx, feed_rows, Trigger.CLI)

                async def batches_active() -> bool:
                    return (await ctx.queues.counts())[ctx.queues.names.batches]["active"] >= 3

                await wait_until(batches_active)
                worker.send_signal(signal.SIGKILL)
                await asyncio.wait_for(worker.wait(), 10)
            finally:
                if worker.returncode is None:
                    worker.kill()
                    await worker.wait()

        first, second = await rescue_and_reimport(settings, feeds, feed_rows, run, after, timeout_s=90)
        done.set()
        await asyncio.wait_for(reading, 30)
        everything = await ctx.store.list_changes(after=0, limit=100_000)
        distinct = await ctx.store.count_jobs()

    assert_every_change_once(consumer, everything, distinct, first, second)


async def rescue_and_reimport(
    settings: Settings, feeds: Any, feed_rows: list[Feed], run: ImportRun, after: str, *, timeout_s: float
) -> tuple[ImportRun, ImportRun]:
    """A fresh worker finishes the stalled run; then a second import with three jobs changed."""
    async with Runtime(settings, workers=True) as rescuer:
        first = await asyncio.wait_for(wait_for_run(rescuer.ctx, run.run_id, after), timeout_s)
        jobs = load_real_jobs()[:50]
        edited = {str(j["id"]) for j in jobs[:3]}
        body = render_feed(
            [changed_copy(j) if str(j["id"]) in edited else j for j in jobs],
            title="Jobicy",
            link="https://jobicy.com",
        )
        feeds.route("/?feed=job_feed", body=body)
        after = await rescuer.ctx.events.last_id()
        again = await start_run(rescuer.ctx, feed_rows, Trigger.CLI)
        second = await asyncio.wait_for(wait_for_run(rescuer.ctx, again.run_id, after), 90)
    return first, second


def assert_every_change_once(
    consumer: Consumer, everything: list[JobChange], distinct: int, first: ImportRun, second: ImportRun
) -> None:
    assert (first.status, second.status) == (RunStatus.COMPLETED, RunStatus.COMPLETED)
    cursors = [change.cursor for change in consumer.seen]
    assert cursors == sorted(set(cursors))  # in order, nothing twice
    assert consumer.seen == everything  # and nothing missed
    assert consumer.pages > 10  # it really read while the imports ran, a page at a time
    new = [change.job_key for change in consumer.seen if change.kind is ChangeKind.NEW]
    assert len(new) == len(set(new)) == distinct == sum(e.new for e in first.feeds)
    updated = [change for change in consumer.seen if change.kind is ChangeKind.UPDATED]
    assert len(updated) == 3 == sum(e.updated for e in second.feeds)
    assert all("description_html" in change.fields for change in updated)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_consumer_gets_every_change_once_in_order_across_a_worker_kill_on_mongodb(
    tmp_path: Path, redis_url: str, feeds: Any, own_mongo: SecantusServer
) -> None:
    """The same on MongoDB: a fail point of the test's own server holds every insert of the doomed
    worker (its appName) until three are held, then it is killed; the rescuer's batches meet the
    dead worker's open transactions (reaped after 60 s) as write conflicts and retry, hence
    ``attempts`` raised (8 attempts of at most 30 s outlast the reaping). This is also the MongoDB
    case of test_worker_crash: the run's counts are checked as there."""
    url = with_database(own_mongo.url, "jobs")
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=url, attempts=8,
        batch_size=5, lock_duration_ms=2000, stalled_interval_ms=1000, backoff_ms=100, host_interval_s=0,
    )  # fmt: skip
    sources = serve_feeds(feeds, nine_feeds())
    done = asyncio.Event()
    admin: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(own_mongo.url)

    async with Runtime(settings, workers=False) as producer:
        ctx = producer.ctx
        consumer = Consumer(ctx.store)
        reading = asyncio.create_task(consumer.read_until(done))
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
            await wait_until(none_held)  # the held inserts ran, in transactions nobody will commit
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
            await fail_point(admin, "off")
            await admin.close()
        first, second = await rescue_and_reimport(settings, feeds, feed_rows, run, after, timeout_s=240)
        done.set()
        await asyncio.wait_for(reading, 30)
        everything = await ctx.store.list_changes(after=0, limit=100_000)
        distinct = await ctx.store.count_jobs()

    assert_exact_and_complete(first, distinct)  # test_worker_crash's check, which runs on SQL only
    assert_every_change_once(consumer, everything, distinct, first, second)
