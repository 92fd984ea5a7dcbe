"""A worker killed with SIGKILL in the middle of writing batches loses nothing and counts nothing twice.

The test holds an exclusive lock on the jobs table, so the worker process's batch transactions stop
half-way (batch claimed, upsert waiting); then it kills the worker, releases the lock and lets a fresh
worker take over the stalled jobs once their BullMQ locks lapse.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fixtures.wpjm import nine_feeds
from jobimporter.config import Settings
from jobimporter.models import EntryStatus, FeedSource, RunStatus, Trigger
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


async def test_worker_killed_mid_batch_loses_nothing(
    tmp_path: Path, redis_url: str, pg_database_url: str, feeds: Any
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=pg_database_url,
        batch_size=5, lock_duration_ms=2000, stalled_interval_ms=1000, backoff_ms=100, host_interval_s=0,
    )  # fmt: skip
    sources = []
    for path, body in nine_feeds().items():
        feeds.route(path, body=body)
        sources.append(FeedSource(name=path, url=feeds.url(path)))

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

        assert finished.status is RunStatus.COMPLETED, [(e.url, e.status, e.error) for e in finished.feeds]
        distinct = await ctx.store.count_jobs()
        assert sum(e.new for e in finished.feeds) == distinct
        for entry in finished.feeds:
            assert entry.status is EntryStatus.COMPLETED
            assert entry.total_fetched == entry.new + entry.updated + entry.unchanged + entry.failed
            assert entry.failed == 0
            path = "/" + entry.url.split("/", 3)[3]
            assert entry.total_fetched == nine_feeds()[path].count(b"<item>")
