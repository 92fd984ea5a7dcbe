"""The hourly (cron) import: a BullMQ job scheduler puts one tick per slot on the schedule queue,
however many processes install it, and the worker that takes the tick starts a run of every enabled
feed."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from jobimporter.context import ImportContext
from jobimporter.models import Trigger, utcnow
from jobimporter.queue import SCHEDULER_ID, TICK_JOB, Queues
from jobimporter.runs import start_run

log = logging.getLogger(__name__)


async def install_schedule(queues: Queues, cron: str) -> None:
    """Create or update the one job scheduler (idempotent across processes)."""
    await queues.schedule.upsertJobScheduler(
        SCHEDULER_ID,
        {"pattern": cron, "tz": "UTC"},
        TICK_JOB,
        {},
        {"removeOnComplete": {"count": 500}, "removeOnFail": {"count": 500}},
    )
    log.info("scheduler: importing all enabled feeds on cron %r (UTC)", cron)


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
