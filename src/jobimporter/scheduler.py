"""The cron imports: one tick per slot on the schedule queue, however many scheduler processes run,
and the worker that takes a tick starts one run of the enabled feeds due at that slot.

Each feed runs on its own cron when it has one, else on the scheduler's (``JOBIMPORTER_CRON``). A
scheduler process reads the distinct crons from the store (again every ``refresh_s``, so a feed
added or edited through the API is picked up), computes the next slot of any of them and, at that
slot, adds the slot's tick as a plain job whose id is the slot's time: BullMQ keeps the first and
drops the others, so a slot fires once. The tick's worker decides which feeds are due from the store
as it is then, so every scheduler's tick for a slot means the same run.
(BullMQ's own job schedulers were tried first: with bullmq 3.4.4 their next tick, a delayed job, was
not always promoted on an otherwise idle queue, so slots were lost.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.exceptions import RedisError

from jobimporter.context import ImportContext
from jobimporter.crons import fires_at, first_slot
from jobimporter.errors import StoreError
from jobimporter.models import Feed, Trigger, utcnow
from jobimporter.queue import SCHEDULER_ID, TICK_JOB, Queues
from jobimporter.runs import start_run
from jobimporter.store.base import JobStore

log = logging.getLogger(__name__)


async def run_schedule(queues: Queues, store: JobStore, cron: str, *, refresh_s: float = 60.0) -> None:
    """Add each slot's tick until cancelled. A slot that passes while every scheduler is down is
    not made up for, as with cron."""
    await queues.schedule.removeJobScheduler(SCHEDULER_ID)  # ticks of an older version's scheduler
    log.info("scheduler: importing the enabled feeds on cron %r (UTC) and on their own crons", cron)
    crons, checked_up_to = {cron}, datetime.now(UTC)
    while True:
        crons = await _crons(store, cron, crons)
        slot = first_slot(crons, checked_up_to)
        wake = min(slot, datetime.now(UTC) + timedelta(seconds=refresh_s))
        await asyncio.sleep(max(0.0, (wake - datetime.now(UTC)).total_seconds()))
        if wake < slot:  # only a refresh: slots of a cron first seen now start after this moment
            checked_up_to = wake
            continue
        checked_up_to = slot
        try:
            await add_tick(queues, slot)
        except RedisError as exc:  # Redis away: this slot is lost here, another scheduler may add it
            log.warning("scheduler: could not add the tick of %s: %s", slot.isoformat(), exc)


async def _crons(store: JobStore, default: str, known: set[str]) -> set[str]:
    """The scheduler's cron and every enabled feed's own; the last known set while the database is
    unreachable."""
    try:
        feeds = await store.list_feeds(enabled_only=True)
    except StoreError as exc:
        log.warning("scheduler: could not read the feeds' crons, keeping %s: %s", sorted(known), exc)
        return known
    return {default} | {feed.cron for feed in feeds if feed.cron}


async def add_tick(queues: Queues, slot: datetime) -> None:
    slot_ms = round(slot.timestamp() * 1000)
    options = {
        "jobId": f"tick-{slot_ms}",
        "removeOnComplete": {"count": 1000},
        "removeOnFail": {"count": 1000},
    }
    await queues.schedule.add(TICK_JOB, {"slot": slot.isoformat()}, options)


async def process_tick(ctx: ImportContext, job: Any, token: str) -> dict[str, Any]:
    return await run_tick(ctx, datetime.fromisoformat(job.data["slot"]))


async def run_tick(ctx: ImportContext, slot: datetime) -> dict[str, Any]:
    """Start one run of the enabled feeds due at ``slot`` (none due: no run), then apply the history
    retention."""
    feeds = due_feeds(await ctx.store.list_feeds(enabled_only=True), slot, ctx.cron)
    run = await start_run(ctx, feeds, Trigger.CRON) if feeds else None
    pruned = await prune_history(ctx)
    return {"run_id": run.run_id if run else None, "feeds": len(feeds), "runs_pruned": pruned}


def due_feeds(feeds: Sequence[Feed], slot: datetime, default_cron: str) -> list[Feed]:
    return [feed for feed in feeds if fires_at(feed.cron or default_cron, slot)]


async def prune_history(ctx: ImportContext) -> int:
    """Apply the history retention (``JOBIMPORTER_HISTORY_RETENTION_DAYS``); 0 keeps everything."""
    if ctx.history_retention_days <= 0:
        return 0
    pruned = await ctx.store.prune_history(utcnow() - timedelta(days=ctx.history_retention_days))
    if pruned:
        log.info("history: %d runs older than %d days deleted", pruned, ctx.history_retention_days)
    return pruned
