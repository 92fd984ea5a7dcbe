"""Starting and closing import runs: one run, one import entry and one queued feed job per feed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from jobimporter.context import ImportContext
from jobimporter.errors import NotFound, StoreError
from jobimporter.events import EntryChanged, Event, RunFinished, RunStarted
from jobimporter.models import (
    EntryStatus,
    Feed,
    ImportEntry,
    ImportRun,
    Priority,
    RunStatus,
    Trigger,
    duration_text,
    new_id,
    utcnow,
)
from jobimporter.queue import FEED_JOB, feed_job_options
from jobimporter.sources import publisher_host
from jobimporter.store.base import EntryLifecycle

log = logging.getLogger(__name__)


async def start_run(ctx: ImportContext, feeds: Sequence[Feed], trigger: Trigger) -> ImportRun:
    """Record a run with an entry per feed, then enqueue one feed job per queued entry.

    The run is stored before anything is queued, so a worker never meets an entry it cannot find. A
    feed whose previous import is still under way gets a ``skipped`` entry instead of a second,
    concurrent fetch: the slot is recorded, not lost. Looking for busy feeds and storing the run is
    one critical section across processes, so two runs started at once (two manual triggers, a
    trigger and a cron tick) cannot both take the same feed.
    """
    run_id = new_id("run")
    feeds = sorted(feeds, key=lambda feed: feed.priority is not Priority.HIGH)  # the order jobs are taken
    async with ctx.locks.held("start-run"):
        now = utcnow()
        busy = await busy_runs(ctx, [f.id for f in feeds])
        entries = [_entry(run_id, feed, busy.get(feed.id), now) for feed in feeds]
        run = ImportRun(run_id=run_id, trigger=trigger, started_at=now, feeds=entries)
        await ctx.store.create_run(run)
    await ctx.events.publish(RunStarted(run_id=run_id, trigger=trigger.value, feeds=len(entries)))
    queued = [(e, f) for e, f in zip(entries, feeds, strict=True) if e.status is EntryStatus.QUEUED]
    slots = await _first_slots(ctx, queued)
    jobs = [feed_job(e, f, ctx, host_slot=slots.get(e.id)) for e, f in queued]
    if jobs:
        await ctx.queues.feeds.addBulk(jobs)
    log.info(
        "run %s started (%s) with %d feeds, %d skipped as still importing",
        run_id, trigger.value, len(entries), len(entries) - len(jobs), extra={"run_id": run_id},
    )  # fmt: skip
    if not jobs:
        await finish_run_if_done(ctx, run_id)
    return run


async def _first_slots(ctx: ImportContext, queued: Sequence[tuple[ImportEntry, Feed]]) -> dict[str, int]:
    """Each high-priority feed's slot at its host, by entry id, reserved in order before any job is
    queued: feed jobs are taken in priority order, but the workers that take them ask for slots in
    whatever order they get to it."""
    high = [(e, f) for e, f in queued if f.priority is Priority.HIGH]
    return {e.id: await ctx.limiter.reserve(publisher_host(f.url)) for e, f in high}


async def busy_runs(ctx: ImportContext, feed_ids: Sequence[str]) -> dict[str, ImportRun]:
    """For each of ``feed_ids`` still being imported: the run that imports it."""
    busy = await ctx.store.busy_feeds(feed_ids)
    runs = {run_id: await ctx.store.get_run(run_id) for run_id in set(busy.values())}
    return {feed_id: runs[run_id] for feed_id, run_id in busy.items()}


def _entry(run_id: str, feed: Feed, busy_in: ImportRun | None, now: datetime) -> ImportEntry:
    """A queued entry, or a skipped one when the feed's previous import (run ``busy_in``) is not done."""
    entry = ImportEntry(id=new_id("imp"), run_id=run_id, feed_id=feed.id, url=feed.url, name=feed.name)
    if busy_in is None:
        return entry
    waited = duration_text((now - busy_in.started_at).total_seconds())
    reason = (
        f"skipped: the previous import of this feed (run {busy_in.run_id}, started {waited} ago) "
        "is still in progress"
    )
    return entry.model_copy(
        update={"status": EntryStatus.SKIPPED, "started_at": now, "finished_at": now, "error": reason}
    )


def feed_job(
    entry: ImportEntry, feed: Feed, ctx: ImportContext, *, host_slot: int | None = None
) -> dict[str, object]:
    """A feed job to queue; ``host_slot``, a slot reserved at the feed's host for its first attempt."""
    data: dict[str, object] = {
        "run_id": entry.run_id,
        "entry_id": entry.id,
        "feed_id": feed.id,
        "url": feed.url,
        "name": feed.name,
        "format": feed.format.value,
        "priority": feed.priority.value,
    }
    if host_slot is not None:
        data.update(host_slot=host_slot, host_slot_attempt=0)
    return {"name": FEED_JOB, "data": data, "opts": feed_job_options(entry.id, feed.priority, ctx.policy)}


async def publish_entry(ctx: ImportContext, entry: ImportEntry) -> None:
    await ctx.events.publish(
        EntryChanged(
            run_id=entry.run_id,
            entry_id=entry.id,
            feed_id=entry.feed_id,
            url=entry.url,
            status=entry.status.value,
            total_fetched=entry.total_fetched,
            new=entry.new,
            updated=entry.updated,
            unchanged=entry.unchanged,
            failed=entry.failed,
            expired=entry.expired,
            error=entry.error,
        )
    )


async def close_entry(
    ctx: ImportContext,
    run_id: str,
    entry_id: str,
    *,
    status: EntryStatus,
    error: str | None = None,
    missing_batches: Sequence[tuple[int, int, str]] = (),
    finished_at: datetime | None = None,
    lifecycle: EntryLifecycle | None = None,
) -> ImportEntry:
    """Close an entry (``JobStore.finalize_entry``, with the import's ``lifecycle`` when it closes its
    own entry), announce it, and close its run if it was the last open one. One critical section per run across processes: without it, two feeds closing
    together could see the run closed (and ``RunFinished`` published) before the second feed's
    ``EntryChanged``; with it, ``RunFinished`` is the last event of its run."""
    async with ctx.locks.held(f"run:{run_id}"):
        entry = await ctx.store.finalize_entry(
            entry_id,
            status=status,
            finished_at=finished_at or utcnow(),
            error=error,
            missing_batches=missing_batches,
            lifecycle=lifecycle,
        )
        await publish_entry(ctx, entry)
        await finish_run_if_done(ctx, run_id)
    return entry


async def finish_run_if_done(ctx: ImportContext, run_id: str) -> ImportRun | None:
    """Close the run when its last entry has closed; exactly one caller does it and announces it."""
    run = await ctx.store.finalize_run_if_done(run_id, utcnow())
    if run is None:
        return None
    totals = {k: sum(getattr(e, k) for e in run.feeds) for k in ("new", "updated", "unchanged", "failed")}
    await ctx.events.publish(RunFinished(run_id=run_id, status=run.status.value, **totals))
    log.info("run %s finished: %s %s", run_id, run.status.value, totals, extra={"run_id": run_id})
    return run


async def wait_for_run(
    ctx: ImportContext,
    run_id: str,
    after: str,
    on_event: Callable[[Event], None] | None = None,
    *,
    on_idle: Callable[[ImportRun], Awaitable[None]] | None = None,
) -> ImportRun:
    """Follow the event stream from ``after`` until the run finishes, then return it from the store.

    The store is the truth: on every idle stretch of the stream (2 s without an event) it is asked
    too, so a missed event (a trimmed stream, a Redis restart) cannot leave the caller waiting
    forever; ``on_idle`` then gets the run as stored.
    """
    async for _, event in ctx.events.subscribe(after, block_ms=2000):
        if event is None:
            run = await _current(ctx, run_id)
            if run is not None and run.status is not RunStatus.RUNNING:
                return run
            if run is not None and on_idle is not None:
                await on_idle(run)
            continue
        if event.run_id != run_id:
            continue
        if on_event is not None:
            on_event(event)
        if isinstance(event, RunFinished):
            return await ctx.store.get_run(run_id)
    raise AssertionError("unreachable: the event stream does not end")


async def _current(ctx: ImportContext, run_id: str) -> ImportRun | None:
    """The run as stored, or None while the database is briefly unreachable (we keep waiting)."""
    try:
        return await ctx.store.get_run(run_id)
    except StoreError as exc:
        if not exc.transient or isinstance(exc, NotFound):
            raise
        log.warning("run %s: database unreachable while waiting (%s)", run_id, exc)
        return None
