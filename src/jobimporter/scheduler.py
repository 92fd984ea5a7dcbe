"""The hourly (cron) import: one tick per cron slot on the schedule queue, however many scheduler
processes run, and the worker that takes the tick starts a run of every enabled feed.

Each scheduler process computes the slots itself and, at each one, adds that slot's tick as a plain
job whose id is the slot's time: BullMQ keeps the first and drops the others, so a slot fires once.
(BullMQ's own job schedulers were tried first: with bullmq 3.4.4 their next tick, a delayed job, was
not always promoted on an otherwise idle queue, so slots were lost.)"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter
from redis.exceptions import RedisError

from jobimporter.context import ImportContext
from jobimporter.models import Trigger, utcnow
from jobimporter.queue import SCHEDULER_ID, TICK_JOB, Queues
from jobimporter.runs import start_run

log = logging.getLogger(__name__)


async def run_schedule(queues: Queues, cron: str) -> None:
    """Add each slot's tick until cancelled. A slot that passes while every scheduler is down is
    not made up for, as with cron."""
    await queues.schedule.removeJobScheduler(SCHEDULER_ID)  # ticks of an older version's scheduler
    log.info("scheduler: importing all enabled feeds on cron %r (UTC)", cron)
    slots = croniter(cron, datetime.now(UTC), second_at_beginning=len(cron.split()) == 6)
    while True:
        slot: datetime = slots.get_next(datetime)
        await asyncio.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds()))
        try:
            await add_tick(queues, slot)
        except RedisError as exc:  # Redis away: this slot is lost here, another scheduler may add it
            log.warning("scheduler: could not add the tick of %s: %s", slot.isoformat(), exc)


async def add_tick(queues: Queues, slot: datetime) -> None:
    slot_ms = round(slot.timestamp() * 1000)
    options = {
        "jobId": f"tick-{slot_ms}",
        "removeOnComplete": {"count": 1000},
        "removeOnFail": {"count": 1000},
    }
    await queues.schedule.add(TICK_JOB, {"slot": slot.isoformat()}, options)


async def process_tick(ctx: ImportContext, job: Any, token: str) -> dict[str, Any]:
    feeds = await ctx.store.list_feeds(enabled_only=True)
    run = await start_run(ctx, feeds, Trigger.CRON)
    pruned = await prune_history(ctx)
    return {"run_id": run.run_id, "feeds": len(feeds), "runs_pruned": pruned}


async def prune_history(ctx: ImportContext) -> int:
    """Apply the history retention (``JOBIMPORTER_HISTORY_RETENTION_DAYS``); 0 keeps everything."""
    if ctx.history_retention_days <= 0:
        return 0
    pruned = await ctx.store.prune_history(utcnow() - timedelta(days=ctx.history_retention_days))
    if pruned:
        log.info("history: %d runs older than %d days deleted", pruned, ctx.history_retention_days)
    return pruned
