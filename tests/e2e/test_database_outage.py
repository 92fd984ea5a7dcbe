"""The database goes away mid-run and comes back: attempts back off and the run completes exactly."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from fixtures.wpjm import nine_feeds, serve_feeds
from jobimporter.config import Settings
from jobimporter.deadletters import DeadLetters
from jobimporter.events import BatchProcessed, EntryChanged
from jobimporter.models import EntryStatus, RunStatus, Trigger
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime
from plugins.mongo import SecantusServer, with_database
from plugins.postgres import _start_server

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]


@pytest.fixture
def own_postgres() -> Any:
    """A PostgreSQL of this test's own, since the test stops it."""
    parent = Path(tempfile.mkdtemp(prefix="jobimporter-outage-"))
    parent.chmod(0o755)
    server = _start_server(parent / "pgdata")
    yield server
    server.cleanup()
    shutil.rmtree(parent, ignore_errors=True)


async def test_a_database_outage_mid_run_backs_off_and_completes(
    tmp_path: Path, redis_url: str, feeds: Any, own_postgres: Any
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=str(own_postgres.get_uri()),
        batch_size=4, concurrency=3, host_interval_s=0, attempts=8, backoff_ms=250,
    )  # fmt: skip
    sources = serve_feeds(feeds, nine_feeds(), delay_s=0.2)
    async with Runtime(settings, workers=True) as rt:
        rows = await rt.ctx.store.sync_feeds(sources)
        after = await rt.ctx.events.last_id()
        run = await start_run(rt.ctx, rows, Trigger.CLI)
        processing = asyncio.Event()

        def on_event(event: Any) -> None:
            if isinstance(event, EntryChanged) and event.status == "processing":
                processing.set()

        waiting = asyncio.create_task(wait_for_run(rt.ctx, run.run_id, after, on_event))
        await asyncio.wait_for(processing.wait(), 30)
        await asyncio.to_thread(own_postgres._cleanup)  # pg_ctl stop: every connection drops
        await asyncio.sleep(3)
        await asyncio.to_thread(own_postgres.ensure_postgres_running)
        done = await asyncio.wait_for(waiting, 120)
        distinct = await rt.ctx.store.count_jobs()

    assert done.status is RunStatus.COMPLETED, [(e.name, e.status, e.error) for e in done.feeds]
    assert sum(e.new for e in done.feeds) == distinct
    for entry in done.feeds:
        assert entry.status is EntryStatus.COMPLETED and entry.failed == 0
        path = "/" + entry.url.split("/", 3)[3]
        assert (
            entry.total_fetched
            == entry.new + entry.updated + entry.unchanged
            == nine_feeds()[path].count(b"<item>")
        )


async def test_a_mongodb_outage_mid_run_backs_off_and_completes(
    tmp_path: Path, redis_url: str, feeds: Any, own_mongo: SecantusServer
) -> None:
    """The same on MongoDB: the server stops (SIGTERM: every connection drops) once feeds are being
    written, and starts again on the same port and data 3 s later."""
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=with_database(own_mongo.url, "jobs"),
        batch_size=4, concurrency=3, host_interval_s=0, attempts=8, backoff_ms=250,
    )  # fmt: skip
    sources = serve_feeds(feeds, nine_feeds(), delay_s=0.5)
    async with Runtime(settings, workers=True) as rt:
        rows = await rt.ctx.store.sync_feeds(sources)
        after = await rt.ctx.events.last_id()
        run = await start_run(rt.ctx, rows, Trigger.CLI)
        batching = asyncio.Event()

        def on_event(event: Any) -> None:
            if isinstance(event, BatchProcessed):
                batching.set()

        waiting = asyncio.create_task(wait_for_run(rt.ctx, run.run_id, after, on_event))
        await asyncio.wait_for(batching.wait(), 30)  # batches are being written
        await asyncio.to_thread(own_mongo.stop)
        assert not waiting.done()  # the outage is mid-run
        await asyncio.sleep(3)
        await asyncio.to_thread(own_mongo.start)
        done = await asyncio.wait_for(waiting, 120)
        distinct = await rt.ctx.store.count_jobs()

    assert done.status is RunStatus.COMPLETED, [(e.name, e.status, e.error) for e in done.feeds]
    assert sum(e.new for e in done.feeds) == distinct
    for entry in done.feeds:
        assert entry.status is EntryStatus.COMPLETED and entry.failed == 0
        path = "/" + entry.url.split("/", 3)[3]
        assert (
            entry.total_fetched
            == entry.new + entry.updated + entry.unchanged
            == nine_feeds()[path].count(b"<item>")
        )


async def first_batch(rt: Runtime, after: str, flag: asyncio.Event) -> None:
    async for _, event in rt.ctx.events.subscribe(after, block_ms=200):
        if isinstance(event, BatchProcessed):
            flag.set()
            return


async def settled(rt: Runtime) -> None:
    """Until no job of the run is waiting, delayed, active or waiting for children."""
    busy = ("waiting", "active", "delayed", "prioritized", "waiting-children")
    for _ in range(600):
        counts = await rt.ctx.queues.counts()
        if not any(c[state] for c in counts.values() for state in busy):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"jobs still under way: {counts}")


@pytest.mark.parametrize("when", ["downloading", "batching"])
async def test_an_outage_longer_than_the_retries_ends_in_dead_letters_and_a_retry_completes(
    tmp_path: Path, redis_url: str, feeds: Any, own_postgres: Any, when: str
) -> None:
    """The database stays away past every attempt: each job lands in the dead letters with the
    database's reason, nothing is counted; once it is back, retrying them completes the run exactly."""
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=str(own_postgres.get_uri()),
        batch_size=4, concurrency=3, host_interval_s=0, attempts=2, backoff_ms=100,
    )  # fmt: skip
    bodies = dict(list(nine_feeds().items())[:4])
    sources = serve_feeds(feeds, bodies, delay_s=0.5)
    async with Runtime(settings, workers=True) as rt:
        rows = await rt.ctx.store.sync_feeds(sources)
        batching = asyncio.Event()
        follow = asyncio.create_task(first_batch(rt, await rt.ctx.events.last_id(), batching))
        run = await start_run(rt.ctx, rows, Trigger.CLI)
        if when == "batching":  # the first batch is stored, the others are in flight
            await asyncio.wait_for(batching.wait(), 30)
        await asyncio.to_thread(own_postgres._cleanup)
        follow.cancel()
        await settled(rt)
        letters = DeadLetters(rt.ctx, rt.redis_url)
        dead = await letters.letters()
        await asyncio.to_thread(own_postgres.ensure_postgres_running)

        assert dead, "every attempt failed, so the jobs must be dead letters"
        for letter in dead:
            assert letter.attempts == 2 and letter.reason, (letter.id, letter.attempts, letter.reason)
            assert "database" in letter.reason.lower(), letter.reason
        stuck = await rt.ctx.store.get_run(run.run_id)
        assert stuck.status is RunStatus.RUNNING  # nothing closed while the database was away

        after = await rt.ctx.events.last_id()
        discarded = None
        if when == "downloading":  # one feed is given up on: its entry closes, failed, with the reason
            discarded = next(d for d in dead if d.queue == rt.ctx.queues.names.feeds)
            await letters.discard(discarded.id)
        assert await letters.retry_all() == len(dead) - (discarded is not None)
        done = await asyncio.wait_for(wait_for_run(rt.ctx, run.run_id, after), 60)
        distinct = await rt.ctx.store.count_jobs()
        assert await letters.count() == 0

    imported = [e for e in done.feeds if discarded is None or e.id != discarded.summary.entry_id]
    assert sum(e.new for e in imported) == distinct
    if discarded is not None:
        (closed,) = [e for e in done.feeds if e.id == discarded.summary.entry_id]
        assert (
            closed.status is EntryStatus.FAILED
            and closed.error == f"dead letter discarded: {discarded.reason}"
        )
        assert done.status is RunStatus.PARTIAL
    else:
        assert done.status is RunStatus.COMPLETED, [(e.name, e.status, e.error) for e in done.feeds]
    for entry in imported:
        path = "/" + entry.url.split("/", 3)[3]
        assert entry.status is EntryStatus.COMPLETED and entry.failed == 0
        assert (
            entry.total_fetched
            == entry.new + entry.updated + entry.unchanged
            == bodies[path].count(b"<item>")
        )


async def test_the_watchdog_closes_a_dead_lettered_import_and_a_retry_still_completes_it(
    tmp_path: Path, redis_url: str, feeds: Any, own_postgres: Any
) -> None:
    """The database stays away past every attempt, so no feed job could close its entry: the run
    would stay ``running`` for ever. The watchdog closes each such entry once the database is back,
    naming the dead letter, and the run finishes; retrying the letters then completes it exactly.
    (``stuck_after_s`` 1 s instead of 300 s, 2 attempts instead of 3: the outage test above runs
    the retries at length, and ``test_watchdog`` says why the bound is shrunk.)"""
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=str(own_postgres.get_uri()),
        batch_size=4, host_interval_s=0, attempts=2, backoff_ms=100, stuck_after_s=1,
        watchdog_interval_s=0.2,
    )  # fmt: skip
    bodies = dict(list(nine_feeds().items())[:3])
    sources = serve_feeds(feeds, bodies, delay_s=0.5)
    async with Runtime(settings, workers=True) as rt:
        rows = await rt.ctx.store.sync_feeds(sources)
        after = await rt.ctx.events.last_id()
        run = await start_run(rt.ctx, rows, Trigger.CLI)
        await asyncio.to_thread(own_postgres._cleanup)  # while the feeds download
        await settled(rt)
        await asyncio.to_thread(own_postgres.ensure_postgres_running)
        closed = await asyncio.wait_for(wait_for_run(rt.ctx, run.run_id, after), 60)
        letters = DeadLetters(rt.ctx, rt.redis_url)
        # Every feed job failed for good. A feed that downloaded before the database had gone (a
        # loaded machine stops PostgreSQL slowly) left dead batches too: they are retried alike.
        assert await letters.count(rt.ctx.queues.names.feeds) == len(bodies)
        dead = await letters.count()
        after = await rt.ctx.events.last_id()
        assert await letters.retry_all() == dead
        done = await asyncio.wait_for(wait_for_run(rt.ctx, run.run_id, after), 60)
        distinct = await rt.ctx.store.count_jobs()

    assert closed.status is RunStatus.FAILED
    for entry in closed.feeds:
        assert entry.status is EntryStatus.FAILED and entry.error, entry
        assert entry.error.startswith("watchdog: its feed job failed for good (store: database unreachable")
        assert entry.error.endswith("it waits in Failed jobs to be retried"), entry.error
    assert done.status is RunStatus.COMPLETED, [(e.name, e.status, e.error) for e in done.feeds]
    assert sum(e.new for e in done.feeds) == distinct
