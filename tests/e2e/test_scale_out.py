"""One big feed is normalized by every worker process: its feed job only reads and identifies items,
and the batch jobs (taken by any worker) normalize and write them.

Real servers only (the private Redis and PostgreSQL, SQLite in a temp dir, the local feed server).
What a worker process did is read from its own log, from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fixtures.wpjm import load_real_jobs, many_jobs, render_feed
from jobimporter.config import Settings
from jobimporter.events import BatchProcessed
from jobimporter.models import EntryStatus, FeedSource, RawItem, RunStatus, Trigger
from jobimporter.normalize import NORMALIZER_VERSION, identify, normalize
from jobimporter.parse import parse_feed
from jobimporter.queue import BATCH_JOB
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime
from jobimporter.sources import publisher_host

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]

JOB_STATES = ("waiting", "active", "delayed", "prioritized", "waiting-children", "completed", "failed")


def short_jobs(count: int) -> list[dict[str, Any]]:
    """Real jobs, cycled under new ids, with their excerpt as description (a small feed body)."""
    return [dict(job, jobDescription=f"<p>{job['jobExcerpt']}</p>") for job in many_jobs(count)]


def worker_env(settings: Settings, batch_size: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.update(
        REDIS_URL=str(settings.redis_url), DATABASE_URL=str(settings.database_url),
        JOBIMPORTER_DATA_DIR=str(settings.data_dir), JOBIMPORTER_HOST_INTERVAL_S="0",
        JOBIMPORTER_BATCH_SIZE=str(batch_size), JOBIMPORTER_LOG_LEVEL="INFO", JOBIMPORTER_LOG_FORMAT="text",
        JOBIMPORTER_MAX_FEED_BYTES="20000000",
    )  # fmt: skip
    return env


async def test_two_worker_processes_share_one_feeds_batches(
    tmp_path: Path, redis_url: str, pg_database_url: str, feeds: Any
) -> None:
    """One feed, two `jobimporter worker` processes: both normalize and write batches of it (one of
    them read the feed), every batch is written once, by one of them, and the counts are exact."""
    # Small batches: 60 of them for two processes to share in a small feed (the default batch size
    # is what the last test of this file runs with).
    count, batch_size = 600, 10
    feeds.route("/big", body=render_feed(short_jobs(count), title="t", link="https://jobicy.com"))
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_url, database_url=pg_database_url)
    logs = [tmp_path / f"worker-{n}.log" for n in (1, 2)]
    workers = []
    async with Runtime(settings, workers=False) as producer:
        ctx = producer.ctx
        try:
            for log in logs:
                with log.open("wb") as out:
                    command = (sys.executable, "-m", "jobimporter.cli", "worker")
                    env = worker_env(settings, batch_size)
                    workers.append(await asyncio.create_subprocess_exec(*command, env=env, stderr=out))
            await until(lambda: both_listening(ctx))
            feed_rows = await ctx.store.sync_feeds([FeedSource(name="big", url=feeds.url("/big"))])
            after = await ctx.events.last_id()
            run = await start_run(ctx, feed_rows, Trigger.CLI)
            done = await asyncio.wait_for(wait_for_run(ctx, run.run_id, after), 120)
        finally:
            for worker in workers:
                worker.terminate()
                await worker.wait()

    entry = done.feeds[0]
    assert (done.status, entry.total_fetched, entry.new, entry.failed) == (
        RunStatus.COMPLETED,
        count,
        count,
        0,
    )
    batch_jobs = [re.findall(rf"→ {BATCH_JOB} batch-{entry.id}-(\d+)", log.read_text()) for log in logs]
    assert all(batch_jobs), [len(numbers) for numbers in batch_jobs]  # both took part
    written = sorted(int(n) for numbers in batch_jobs for n in numbers)
    assert written == list(range(1, count // batch_size + 1))  # each batch once, by one of them


async def both_listening(ctx: Any) -> bool:
    return min([await queue.get_workers_count() for queue in (ctx.queues.feeds, ctx.queues.batches)]) >= 2


async def until(predicate: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(60):
        while not await predicate():  # noqa: ASYNC110 - worker start-up announces nothing
            await asyncio.sleep(0.1)


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=database_url,
        host_interval_s=0,  # every test feed is on 127.0.0.1; politeness has its own tests
        max_feed_bytes=20_000_000,
    )  # fmt: skip


async def test_an_item_that_fails_to_normalize_in_a_batch_job_fails_alone_with_its_reason(
    settings: Settings,
) -> None:
    """A batch job as a feed job queues it (raw items with their identities), but with one item no
    normalizer accepts (a feed job of another version let a title-less item through) and one entry
    that is not an item at all: the batch is written, those two fail alone with their reasons."""
    base = "https://jobicy.com/?feed=job_feed"
    body = render_feed(load_real_jobs()[:6], title="t", link="https://jobicy.com")
    items = list(parse_feed(io.BytesIO(body)))
    source = publisher_host(base)
    untitled = RawItem(position=7, guid="untitled-7", title=" ", link="https://jobicy.com/jobs/7")
    entries = [queued(item, source, base) for item in [*items[:3], untitled, *items[3:]]]
    entries.append(["not-an-item", "k" * 32])
    data = {"run_id": "run_x", "entry_id": "ent_x", "feed_id": "feed_x", "batch_no": 1, "source": source,
            "base_url": base, "normalizer": NORMALIZER_VERSION, "items": entries, "known": []}  # fmt: skip

    async with Runtime(settings, workers=True) as runtime:
        ctx = runtime.ctx
        after = await ctx.events.last_id()
        await ctx.queues.add_batches([{"name": BATCH_JOB, "data": data, "opts": {"jobId": "batch-ent_x-1"}}])
        announced = await next_batch(ctx, after, "ent_x")
        recorded = (await ctx.store.batch_results("ent_x"))[1]
        stored = [await ctx.store.get_job(identify(i, source=source, base_url=base).key) for i in items]

    assert (announced.new, announced.failed) == (recorded.new, recorded.failed) == (6, 2)
    assert [(f.external_id, f.reason) for f in recorded.failures] == [
        ("untitled-7", "normalize: item #7: no title"),
        ("not-an-item", "invalid: batch item: not an [external_id, key, raw_hash, item] entry"),
    ]
    assert [job["record"] for job in stored] == [normalize(i, source=source, base_url=base) for i in items]


def queued(item: RawItem, source: str, base_url: str) -> list[Any]:
    """The entry a feed job queues for an item: its identity and its raw row. (identify refuses a
    title-less item, so its identity is written out here.)"""
    if not (item.title or "").strip():
        return [item.guid, "u" * 32, "r" * 32, item.to_row()]
    identity = identify(item, source=source, base_url=base_url)
    return [identity.external_id, identity.key, identity.raw_hash, item.to_row()]


async def next_batch(ctx: Any, after: str, entry_id: str) -> BatchProcessed:
    async with asyncio.timeout(30):
        async for _, event in ctx.events.subscribe(after, block_ms=200):
            if isinstance(event, BatchProcessed) and event.entry_id == entry_id:
                return event
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def locked_jobs_table(database_url: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Hold an exclusive lock on the jobs table until the ``unlock`` it yields is awaited: reads go on
    (the feed job's raw-hash lookups), batch writes wait mid-transaction."""
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


async def test_a_feed_far_ahead_of_its_batches_waits_for_them_and_loses_nothing(
    tmp_path: Path, redis_url: str, pg_database_url: str, feeds: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A feed of more items than a feed job may have queued and unwritten (10,000), with every batch
    write held up: the feed job queues batches up to that many items and waits, so Redis never holds
    a whole big feed; once the writes go on, every item is written once. Default batch size."""
    from jobimporter import feedjob

    count = feedjob._ITEMS_AHEAD + 1500
    feeds.route("/huge", body=render_feed(short_jobs(count), title="t", link="https://jobicy.com"))
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=pg_database_url, host_interval_s=0,
        max_feed_bytes=50_000_000, feed_timeout_s=600,
    )  # fmt: skip
    limit = feedjob._ITEMS_AHEAD // settings.batch_size
    async with Runtime(settings, workers=True) as runtime:
        ctx = runtime.ctx
        feed_rows = await ctx.store.sync_feeds([FeedSource(name="huge", url=feeds.url("/huge"))])
        after = await ctx.events.last_id()
        with caplog.at_level(logging.DEBUG, logger="jobimporter.feedjob"):
            async with locked_jobs_table(pg_database_url) as unlock:
                run = await start_run(ctx, feed_rows, Trigger.CLI)
                await until(lambda: waits_for_room(caplog))
                queued_jobs = sum((await ctx.queues.batches.getJobCounts(*JOB_STATES)).values())
                entry = await ctx.store.get_entry(run.feeds[0].id)
                await unlock()
        done = await asyncio.wait_for(wait_for_run(ctx, run.run_id, after), 300)

    assert entry.status is EntryStatus.PROCESSING and entry.total_fetched == 0  # still reading
    assert queued_jobs == limit  # up to the limit (10 batches of 100 go at a time), and no further
    final = done.feeds[0]
    assert (final.status, final.total_fetched, final.new, final.failed) == (
        EntryStatus.COMPLETED, count, count, 0
    )  # fmt: skip


async def waits_for_room(caplog: pytest.LogCaptureFixture) -> bool:
    return any("waiting for room" in record.getMessage() for record in caplog.records)
