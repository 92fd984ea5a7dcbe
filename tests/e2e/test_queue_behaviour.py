"""How work moves through the queues: priorities, per-host politeness, 429 hold-backs."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from fixtures.wpjm import load_real_jobs, render_feed
from jobimporter.config import Settings
from jobimporter.models import EntryStatus, FeedSource, ImportRun, Priority, RunStatus, Trigger
from jobimporter.queue import feed_job_id
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime
from jobimporter.sources import publisher_host

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]


def settings_for(tmp_path: Path, redis_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data", "redis_url": redis_url, "database_url": f"sqlite:///{tmp_path / 'j.db'}",
        "backoff_ms": 100, "host_interval_s": 0, **changes,
    }  # fmt: skip
    return Settings(**values)


async def import_all(
    settings: Settings, sources: list[FeedSource], *, workers_first: bool = True
) -> ImportRun:
    """Enqueue the run first and only then start the workers, so every job waits in the queue together."""
    async with Runtime(settings, workers=False) as producer:
        feed_rows = await producer.ctx.store.sync_feeds(sources)
        after = await producer.ctx.events.last_id()
        run = await start_run(producer.ctx, feed_rows, Trigger.CLI)
        async with Runtime(settings, workers=True) as consumer:
            return await asyncio.wait_for(wait_for_run(consumer.ctx, run.run_id, after), 60)


def normal_feeds_then_premium(feeds: Any, *, normal: int) -> list[FeedSource]:
    """``normal`` feeds, then one high-priority feed (``/premium``), all on the local feed server."""
    body = render_feed(load_real_jobs()[:3], title="t", link="https://jobicy.com")
    names = [f"normal{i}" for i in range(normal)] + ["premium"]
    for name in names:
        feeds.route(f"/{name}", body=body)
    priority = {"premium": Priority.HIGH}
    return [
        FeedSource(name=n, url=feeds.url(f"/{n}"), priority=priority.get(n, Priority.NORMAL)) for n in names
    ]


async def test_high_priority_feeds_are_fetched_first(tmp_path: Path, redis_url: str, feeds: Any) -> None:
    sources = normal_feeds_then_premium(feeds, normal=4)
    run = await import_all(settings_for(tmp_path, redis_url, concurrency=1), sources)

    assert run.status is RunStatus.COMPLETED
    order = [r.path for r in feeds.requests]
    assert order[0] == "/premium", order  # listed last, enqueued last, fetched first


async def test_a_run_reserves_its_high_priority_feeds_first_slots_before_queueing(
    tmp_path: Path, redis_url: str, feeds: Any
) -> None:
    """At the default interval, on one host: the premium feed's slot is reserved when the run starts,
    so a worker that asks for that host first (here: asking from outside, before any worker runs)
    gets the slot after it, and the premium feed is still fetched first."""
    sources = normal_feeds_then_premium(feeds, normal=2)
    settings = settings_for(tmp_path, redis_url, host_interval_s=Settings().host_interval_s)
    async with Runtime(settings, workers=False) as producer:
        after = await producer.ctx.events.last_id()
        run = await start_run(producer.ctx, await producer.ctx.store.sync_feeds(sources), Trigger.CLI)
        premium = next(e for e in run.feeds if e.name == "premium")
        job = await producer.ctx.queues.feeds.getJob(feed_job_id(premium.id))
        assert job.data["host_slot_attempt"] == 0
        quicker = await producer.ctx.limiter.take(publisher_host(premium.url))
        assert not quicker.go and quicker.slot_ms == job.data["host_slot"] + producer.ctx.limiter.interval_ms
        async with Runtime(settings, workers=True) as consumer:
            done = await asyncio.wait_for(wait_for_run(consumer.ctx, run.run_id, after), 60)

    assert done.status is RunStatus.COMPLETED, [(e.name, e.status, e.error) for e in done.feeds]
    assert feeds.requests[0].path == "/premium"


async def test_one_request_per_host_per_interval_across_workers(
    tmp_path: Path, redis_url: str, feeds: Any
) -> None:
    body = render_feed(load_real_jobs()[:2], title="t", link="https://jobicy.com")
    for n in range(4):
        feeds.route(f"/p{n}", body=body)
    sources = [FeedSource(name=f"p{n}", url=feeds.url(f"/p{n}")) for n in range(4)]
    run = await import_all(settings_for(tmp_path, redis_url, concurrency=4, host_interval_s=0.6), sources)

    assert run.status is RunStatus.COMPLETED
    times = sorted(r.at for r in feeds.requests)
    assert len(times) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.5, gaps  # four workers were free, yet the host saw one request per 0.6 s


async def test_waiting_for_the_host_never_costs_an_attempt(
    tmp_path: Path, redis_url: str, feeds: Any
) -> None:
    """One attempt per job, four feeds on one host at the default interval: three of them step aside
    for their turn, and every one still completes on its only attempt."""
    body = render_feed(load_real_jobs()[:2], title="t", link="https://jobicy.com")
    for n in range(4):
        feeds.route(f"/a{n}", body=body)
    sources = [FeedSource(name=f"a{n}", url=feeds.url(f"/a{n}")) for n in range(4)]
    interval = Settings().host_interval_s  # the default, 2 s
    run = await import_all(settings_for(tmp_path, redis_url, attempts=1, host_interval_s=interval), sources)

    assert run.status is RunStatus.COMPLETED, [(e.name, e.status, e.error) for e in run.feeds]
    assert all(e.status is EntryStatus.COMPLETED and e.error is None for e in run.feeds)
    assert len(feeds.requests) == 4


async def test_a_429_holds_the_whole_host_back_for_its_retry_after(
    tmp_path: Path, redis_url: str, feeds: Any
) -> None:
    """The first request to the host, whichever feed's it is, gets a 429 with Retry-After: 2 while
    the other three feeds hold (or are about to take) slots 0.3 s apart: none of them may reach
    the host within those 2 s, and the limited feed's retry waits them out too."""
    body = render_feed(load_real_jobs()[:2], title="t", link="https://jobicy.com")
    for n in range(4):
        feeds.route(f"/f{n}", body=body)
    feeds.first({"status": 429, "headers": {"Retry-After": "2"}})
    sources = [FeedSource(name=f"f{n}", url=feeds.url(f"/f{n}")) for n in range(4)]
    run = await import_all(settings_for(tmp_path, redis_url, concurrency=4, host_interval_s=0.3), sources)

    assert run.status is RunStatus.COMPLETED
    assert all(e.status is EntryStatus.COMPLETED for e in run.feeds)
    first, *rest = feeds.requests
    assert len(rest) == 4  # the three others and the limited feed's retry
    assert first.path in {r.path for r in rest}, "the limited feed was not retried"
    later = sorted(r.at - first.at for r in rest)
    assert min(later) >= 1.9, f"requests reached the host during its Retry-After: {later}"


async def test_runs_started_at_once_from_two_processes_never_take_the_same_feed(
    tmp_path: Path, redis_url: str, server_database_url: str
) -> None:
    """Two manual triggers (and a cron tick) at the same moment, from two processes' runtimes: each
    feed is queued in exactly one run and skipped, with the reason, in the others."""
    settings = settings_for(tmp_path, redis_url, database_url=server_database_url)
    sources = [FeedSource(name=f"f{i}", url=f"https://f{i}.example/feed") for i in range(5)]
    async with Runtime(settings, workers=False) as one, Runtime(settings, workers=False) as two:
        feed_rows = await one.ctx.store.sync_feeds(sources)
        runs = await asyncio.gather(
            start_run(one.ctx, feed_rows, Trigger.MANUAL),
            start_run(two.ctx, feed_rows, Trigger.MANUAL),
            start_run(two.ctx, feed_rows, Trigger.CRON),
        )
        stored = [await one.ctx.store.get_run(run.run_id) for run in runs]
        queued = await one.ctx.queues.feeds.getJobCounts("waiting", "prioritized")

    for feed in feed_rows:
        statuses = sorted(e.status.value for run in stored for e in run.feeds if e.feed_id == feed.id)
        assert statuses == ["queued", "skipped", "skipped"], (feed.name, statuses)
    skipped = [e for run in stored for e in run.feeds if e.status is EntryStatus.SKIPPED]
    assert all(e.error and "still in progress" in e.error for e in skipped)
    assert sum(int(count) for count in queued.values()) == len(feed_rows)  # one feed job per feed
