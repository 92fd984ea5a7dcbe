"""The watchdog: no run stays ``running`` forever.

Every process with workers sweeps every ``interval_s`` (one process at a time, under a Redis lock).
For each open entry of a running run it asks BullMQ where the entry's feed job is:

- waiting, prioritized, delayed, active, or waiting for its batches: the job will move (a dead
  worker's active job is retaken by BullMQ's stalled-job check); nothing to do;
- anything else (failed for good, gone from Redis, completed without closing its entry) makes the
  entry a suspect. One still a suspect ``stuck_after_s`` later is acted on: a job that vanished
  before anything of its feed was written is queued again (once); otherwise the entry is closed
  ``failed`` with a reason that says what happened, so its run finishes. A dead letter stays in
  the Failed jobs: retrying it reopens the entry as usual.

A run whose entries are all final but which was never closed (its closer died in between) is closed.
The suspects are kept in Redis, so any process may finish what another one started.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from jobimporter.context import ImportContext
from jobimporter.errors import ImporterError, NotFound
from jobimporter.feedjob import FeedJobData
from jobimporter.models import EntryStatus, ImportEntry, ImportRun, RunStatus
from jobimporter.queue import feed_job_id
from jobimporter.runs import close_entry, feed_job, finish_run_if_done
from jobimporter.sources import publisher_host
from jobimporter.store.base import RunQuery

log = logging.getLogger(__name__)

# BullMQ states in which a job is sure to run (again) without anyone's help.
LIVE_STATES = frozenset({"waiting", "prioritized", "delayed", "active", "waiting-children"})
_RUNS_PER_SWEEP = 200


@dataclass(frozen=True, slots=True)
class WatchdogSettings:
    stuck_after_s: float = 300.0
    interval_s: float = 30.0


class Watchdog:
    """Sweeps the open runs of one queue prefix; ``run()`` until cancelled, or ``sweep()`` once."""

    def __init__(
        self, ctx: ImportContext, redis_url: str, *, prefix: str, settings: WatchdogSettings
    ) -> None:
        self.ctx, self.settings = ctx, settings
        self._redis: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        self._suspects = f"{prefix}:watchdog:suspects"
        self._requeued = f"{prefix}:watchdog:requeued"

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval_s)
            try:
                async with self.ctx.locks.held("watchdog", ttl_s=self.settings.interval_s * 4, wait_s=0):
                    await self.sweep()
            except (ImporterError, RedisError) as exc:  # another process sweeps, or Redis/db away
                log.debug("watchdog: no sweep this time: %s", exc)

    async def sweep(self) -> int:
        """One pass over the running runs; returns how many entries it re-queued or closed."""
        acted = 0
        running = await self.ctx.store.list_runs(
            limit=_RUNS_PER_SWEEP, query=RunQuery(status=RunStatus.RUNNING)
        )
        for run in running:
            acted += await self._sweep_run(run)
        open_ids = {e.id for run in running for e in run.feeds if not e.status.is_final}
        settled = [
            entry_id for entry_id in await self._redis.hkeys(self._suspects) if entry_id not in open_ids
        ]
        if settled and len(running) < _RUNS_PER_SWEEP:  # suspects that closed by themselves meanwhile
            await self._redis.hdel(self._suspects, *settled)
        return acted

    async def _sweep_run(self, run: ImportRun) -> int:
        open_entries = [e for e in run.feeds if not e.status.is_final]
        if not open_entries:
            await finish_run_if_done(self.ctx, run.run_id)
            return 0
        acted = 0
        for entry in open_entries:
            state = await self.ctx.queues.feeds.getJobState(feed_job_id(entry.id))
            if state in LIVE_STATES:
                await self._redis.hdel(self._suspects, entry.id)
            elif await self._stuck(entry.id):
                await self._act(entry, state)
                acted += 1
        return acted

    async def _stuck(self, entry_id: str) -> bool:
        """Mark the entry a suspect (first time) and tell whether it has been one long enough."""
        now = time.time()
        await self._redis.hsetnx(self._suspects, entry_id, str(now))
        since = float(await self._redis.hget(self._suspects, entry_id) or now)
        return now - since >= self.settings.stuck_after_s

    async def _act(self, entry: ImportEntry, state: str) -> None:
        await self._redis.hdel(self._suspects, entry.id)
        if state == "unknown" and await self._requeue(entry):
            return
        reason = await self._reason(entry, state)
        log.warning("watchdog: closing %s of run %s: %s", entry.url, entry.run_id, reason)
        await close_entry(self.ctx, entry.run_id, entry.id, status=EntryStatus.FAILED, error=reason)

    async def _requeue(self, entry: ImportEntry) -> bool:
        """Queue the vanished job again when doing so cannot double-count: nothing of it was written
        and it was not re-queued before."""
        written = await self.ctx.store.batch_results(entry.id)
        if written or entry.status is EntryStatus.PROCESSING:
            return False
        if not await self._redis.hsetnx(self._requeued, entry.id, "1"):
            return False
        await self._redis.expire(self._requeued, 7 * 24 * 3600)
        try:
            feed = await self.ctx.store.get_feed(entry.feed_id)
        except NotFound:
            return False
        job = feed_job(entry, feed, self.ctx)
        await self.ctx.queues.feeds.add(str(job["name"]), job["data"], job["opts"])
        log.warning(
            "watchdog: the feed job of %s (run %s) vanished; queued it again", entry.url, entry.run_id
        )
        return True

    async def _reason(self, entry: ImportEntry, state: str) -> str:
        minutes = self.settings.stuck_after_s / 60
        if state == "failed":
            job = await self.ctx.queues.feeds.getJob(feed_job_id(entry.id))
            why = (job.failedReason if job is not None else None) or "no reason recorded"
            return f"watchdog: its feed job failed for good ({why}); it waits in Failed jobs to be retried"
        if state == "completed":
            return "watchdog: its feed job finished without closing this entry"
        return (
            f"watchdog: its feed job vanished from the queue (Redis restarted without its data?) and "
            f"nothing moved for {minutes:g} min; the next run imports the feed again"
        )


async def why_open(ctx: ImportContext, entry: ImportEntry) -> str:
    """What an open entry is waiting for, in a few words (``import`` says it when nothing moves)."""
    job = await ctx.queues.feeds.getJob(feed_job_id(entry.id))
    if job is None:
        return "its job is not in the queue yet (or vanished: the watchdog will see to it)"
    state = await job.getState()
    data = FeedJobData.from_job(job.data)
    if state == "delayed":
        due = await ctx.queues.due_at(job.id)
        at = f" at {due:%H:%M:%S} UTC" if due else ""
        if data.host_slot is not None and data.host_slot_attempt == job.attemptsMade:
            return f"waiting for its turn at {publisher_host(data.url)}{at}"
        return f"to be retried{at}" + (f" ({entry.error})" if entry.error else "")
    if state in ("waiting", "prioritized"):
        return "waiting for a free worker"
    if state == "waiting-children":
        return "waiting for its batches to be written"
    if state == "active":
        return f"{entry.status.value} on a worker"
    return f"its job is {state}: {job.failedReason or 'no reason recorded'}"
