"""The watchdog: an open import whose queue job is gone is re-queued once, then closed with a reason,
so its run finishes; a stuck run never blocks the next run's feeds without saying so.

The fault comes from outside: the feed job is deleted from Redis, as a Redis that restarted without
its data (no AOF, a flushed instance) would lose it. ``stuck_after_s`` is 1 s here instead of the
default 300 s, which no test can wait out; the code path is the same, only the bound differs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fixtures.wpjm import load_real_jobs, render_feed
from jobimporter.config import Settings
from jobimporter.models import EntryStatus, FeedSource, RunStatus, Trigger
from jobimporter.queue import feed_job_id
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime
from jobimporter.watchdog import Watchdog, WatchdogSettings

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]

STUCK_AFTER_S = 1.0


def settings_for(tmp_path: Path, redis_url: str, **changes: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'j.db'}",
        stuck_after_s=STUCK_AFTER_S, watchdog_interval_s=0.2, **changes,
    )  # fmt: skip


async def test_a_vanished_feed_job_is_queued_again_and_its_run_completes(
    tmp_path: Path, redis_url: str, feeds: Any
) -> None:
    body = render_feed(load_real_jobs()[:5], title="t", link="https://jobicy.com")
    for name in ("kept", "lost"):
        feeds.route(f"/{name}", body=body)
    sources = [FeedSource(name=n, url=feeds.url(f"/{n}")) for n in ("kept", "lost")]
    settings = settings_for(tmp_path, redis_url)
    async with Runtime(settings, workers=False) as producer:
        rows = await producer.ctx.store.sync_feeds(sources)
        after = await producer.ctx.events.last_id()
        run = await start_run(producer.ctx, rows, Trigger.CLI)
        lost = next(e for e in run.feeds if e.name == "lost")
        assert await producer.ctx.queues.feeds.remove(feed_job_id(lost.id)) == 1  # Redis lost it
        async with Runtime(settings, workers=True) as worker:  # its watchdog sees to the lost one
            done = await asyncio.wait_for(wait_for_run(worker.ctx, run.run_id, after), 60)

    assert done.status is RunStatus.COMPLETED, [(e.name, e.status, e.error) for e in done.feeds]
    assert [e.total_fetched for e in done.feeds] == [5, 5]
    assert sum(e.new for e in done.feeds) == 5 and sum(e.unchanged for e in done.feeds) == 5
    assert len(feeds.requests_for("/lost")) == 1  # queued again once, fetched once


async def test_a_job_that_vanishes_again_is_closed_with_the_reason(tmp_path: Path, redis_url: str) -> None:
    settings = settings_for(tmp_path, redis_url)
    source = FeedSource(name="gone", url="https://gone.example/feed")
    async with Runtime(settings, workers=False) as rt:  # no workers: only the watchdog acts
        (row,) = await rt.ctx.store.sync_feeds([source])
        run = await start_run(rt.ctx, [row], Trigger.CRON)
        job_id = feed_job_id(run.feeds[0].id)
        watchdog = Watchdog(
            rt.ctx, rt.redis_url, prefix=settings.queue_prefix, settings=WatchdogSettings(STUCK_AFTER_S)
        )
        try:
            actions = []
            for _ in range(2):  # vanish, be re-queued; vanish again, be closed
                assert await rt.ctx.queues.feeds.remove(job_id) == 1
                assert await watchdog.sweep() == 0  # a suspect now, not yet stuck
                await asyncio.sleep(STUCK_AFTER_S)  # the bound itself is what passes here
                actions.append(await watchdog.sweep())
                state = await rt.ctx.queues.feeds.getJobState(job_id)
                actions.append(state)
        finally:
            await watchdog.aclose()
        closed = await rt.ctx.store.get_run(run.run_id)

    assert actions == [1, "prioritized", 1, "unknown"]  # re-queued the first time only
    assert closed.status is RunStatus.FAILED
    (entry,) = closed.feeds
    assert entry.status is EntryStatus.FAILED
    assert entry.error and entry.error.startswith("watchdog: its feed job vanished from the queue"), (
        entry.error
    )


async def test_a_stuck_run_makes_the_next_runs_skip_its_feeds_with_the_run_and_its_age(
    tmp_path: Path, redis_url: str
) -> None:
    settings = settings_for(tmp_path, redis_url)
    async with Runtime(settings, workers=False) as rt:
        (row,) = await rt.ctx.store.sync_feeds([FeedSource(name="slow", url="https://slow.example/feed")])
        stuck = await start_run(rt.ctx, [row], Trigger.CRON)
        later = await start_run(rt.ctx, [row], Trigger.CRON)
    (entry,) = later.feeds
    assert entry.status is EntryStatus.SKIPPED
    assert entry.error is not None
    assert f"(run {stuck.run_id}, started " in entry.error and " ago) is still in progress" in entry.error
