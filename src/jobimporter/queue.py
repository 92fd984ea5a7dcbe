"""BullMQ queue names, job ids and job options: the one place that knows how work is queued.

Three queues (names carry the configured prefix):
- ``<prefix>-feeds``: one job per feed per run; it fetches, parses and fans out batch jobs as its
  children, then runs again to finalize the feed's import entry once every child has settled.
- ``<prefix>-batches``: one job per batch of raw items; workers normalize and bulk-upsert them.
- ``<prefix>-schedule``: one tick per cron slot (id ``tick-<slot ms>``, so every scheduler adds the same one).
- ``<prefix>-webhooks``: one job per webhook delivery (id ``hook-<delivery id>``), retried with
  exponential backoff; its own workers, so a slow or dead endpoint never holds up an import.

Job ids are deterministic (run entry + batch number), so a repeated enqueue is dropped by BullMQ
instead of doubling work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from bullmq import Queue

from jobimporter.models import Priority

FEED_JOB = "import-feed"
BATCH_JOB = "upsert-batch"
TICK_JOB = "cron-tick"
WEBHOOK_JOB = "deliver-webhook"
SCHEDULER_ID = "import-all-feeds"
RETRY_AFTER_BACKOFF = "retry-after"  # our custom backoff: exponential, but never before Retry-After

# bullmq's workers block on Redis for up to 10 s (BZPOPMIN on the marker key, capped at 10 s) while
# they wait for a job, delayed ones included. redis-py 8 gives every client a 5 s read timeout unless
# told otherwise, so a wait of 5-10 s timed out, was re-sent, and retried with a backoff of up to 20 s
# inside one wait: delayed jobs (politeness, retry backoff) were not taken for minutes. Every bullmq
# connection gets this read timeout instead: above the longest blocking wait, still finite so a
# dead peer is noticed.
READ_TIMEOUT_S = 30

# A job whose worker died this many times is failed instead of retaken (BullMQ's maxStalledCount).
MAX_STALLED = 2

# BullMQ priorities: 1 is the highest; jobs without priority come before all prioritized ones,
# so every job gets one.
_PRIORITY = {Priority.HIGH: 1, Priority.NORMAL: 10}


@dataclass(frozen=True, slots=True)
class JobPolicy:
    """How often and how patiently a failed attempt is retried, and how long finished jobs are kept."""

    attempts: int = 3
    backoff_ms: int = 1000
    keep_completed_s: int = 3600
    keep_failed_s: int = 7 * 24 * 3600

    def backoff(self) -> dict[str, Any]:
        return {"type": RETRY_AFTER_BACKOFF, "delay": self.backoff_ms}

    def delay_ms(self, attempts_made: int, retry_after_s: float | None) -> int:
        exponential = self.backoff_ms << max(attempts_made - 1, 0)
        if retry_after_s is None:
            return exponential
        return max(exponential, math.ceil(retry_after_s * 1000))


@dataclass(frozen=True, slots=True)
class QueueNames:
    prefix: str = "jobimporter"

    @property
    def feeds(self) -> str:
        return f"{self.prefix}-feeds"

    @property
    def batches(self) -> str:
        return f"{self.prefix}-batches"

    @property
    def schedule(self) -> str:
        return f"{self.prefix}-schedule"

    @property
    def webhooks(self) -> str:
        return f"{self.prefix}-webhooks"

    @property
    def all(self) -> tuple[str, str, str, str]:
        return (self.feeds, self.batches, self.schedule, self.webhooks)


def connection(redis_url: str) -> str:
    """``redis_url`` as every bullmq Queue, Worker and FlowProducer must connect: with a read timeout
    of at least ``READ_TIMEOUT_S``, above bullmq's longest blocking wait, whatever the URL said or
    redis-py's default. The one place that sets it, for the embedded Redis and a user's ``REDIS_URL`` alike."""
    location, _, query_string = redis_url.partition("?")
    query = dict(parse_qsl(query_string, keep_blank_values=True))
    if _seconds(query.get("socket_timeout")) < READ_TIMEOUT_S:  # a longer one the user set stays
        query["socket_timeout"] = str(READ_TIMEOUT_S)
    return f"{location}?{urlencode(query, safe='/')}"


def _seconds(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


def feed_job_id(entry_id: str) -> str:
    return f"feed-{entry_id}"


def batch_job_id(entry_id: str, batch_no: int) -> str:
    return f"batch-{entry_id}-{batch_no}"


def feed_job_options(entry_id: str, priority: Priority, policy: JobPolicy) -> dict[str, Any]:
    return {
        "jobId": feed_job_id(entry_id),
        "priority": _PRIORITY[priority],
        "attempts": policy.attempts,
        "backoff": policy.backoff(),
        "removeOnComplete": {"age": policy.keep_completed_s, "count": 10_000},
        "removeOnFail": {"age": policy.keep_failed_s},
    }


def batch_job_options(
    entry_id: str, batch_no: int, priority: Priority, policy: JobPolicy, parent: dict[str, str]
) -> dict[str, Any]:
    return {
        "jobId": batch_job_id(entry_id, batch_no),
        "priority": _PRIORITY[priority],
        "attempts": policy.attempts,
        "backoff": policy.backoff(),
        "parent": parent,
        # A batch that fails for good must not strand its feed: the feed job still finalizes and
        # counts that batch's items as failed, with the batch's reason.
        "ignoreDependencyOnFailure": True,
        "removeOnComplete": {"age": policy.keep_completed_s, "count": 1000},
        "removeOnFail": {"age": policy.keep_failed_s},
    }


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """How patiently a webhook delivery is retried, and how long one request may take."""

    attempts: int = 6
    backoff_ms: int = 5000  # 5 s, 10 s, 20 s, 40 s, 80 s between the tries
    timeout_s: float = 10.0


def webhook_job_id(delivery_id: str) -> str:
    return f"hook-{delivery_id}"


def webhook_job_options(delivery_id: str, policy: WebhookPolicy, keep: JobPolicy) -> dict[str, Any]:
    return {
        "jobId": webhook_job_id(delivery_id),
        "attempts": policy.attempts,
        "backoff": {"type": "exponential", "delay": policy.backoff_ms},
        "removeOnComplete": {"age": keep.keep_completed_s, "count": 10_000},
        "removeOnFail": {"age": keep.keep_failed_s},
    }


class Queues:
    """The producer side of the queues, opened once per process and shared."""

    def __init__(self, redis_url: str, names: QueueNames) -> None:
        self.names = names
        options = {"connection": connection(redis_url)}
        self.feeds = Queue(names.feeds, options)
        self.batches = Queue(names.batches, options)
        self.schedule = Queue(names.schedule, options)
        self.webhooks = Queue(names.webhooks, options)

    async def aclose(self) -> None:
        for queue in (self.feeds, self.batches, self.schedule, self.webhooks):
            await queue.close()

    async def counts(self) -> dict[str, dict[str, int]]:
        """Jobs by state for each queue (for progress displays and, later, the queue monitor)."""
        states = ("waiting", "active", "delayed", "prioritized", "waiting-children", "completed", "failed")
        result: dict[str, dict[str, int]] = {}
        for queue in (self.feeds, self.batches, self.schedule, self.webhooks):
            raw = await queue.getJobCounts(*states)
            result[queue.name] = {state: int(raw.get(state, 0)) for state in states}
        return result

    async def recover_orphans(self) -> int:
        """Put the active jobs of workers that are gone back in line at once; only for a Redis that
        no live worker uses (an embedded one this process has just started). BullMQ's own stalled-job
        check does the moving, twice (mark, then move), once the dead workers' locks are dropped,
        instead of after their lock duration and two check intervals."""
        moved = 0
        for queue in (self.feeds, self.batches):
            active = await queue.client.lrange(queue.toKey("active"), 0, -1)
            if not active:
                continue
            await queue.client.delete(*(queue.toKey(f"{job_id}:lock") for job_id in active))
            for _ in range(2):
                await queue.client.delete(queue.toKey("stalled-check"))
                await queue.scripts.moveStalledJobsToWait(MAX_STALLED, 1000)
            moved += len(active)
        return moved

    async def due_at(self, job_id: str) -> datetime | None:
        """When a delayed feed job is due, or None when it is not delayed."""
        score = await self.feeds.client.zscore(self.feeds.toKey("delayed"), job_id)
        return None if score is None else datetime.fromtimestamp(int(score) // 0x1000 / 1000, UTC)

    async def add_batches(self, jobs: Sequence[dict[str, Any]]) -> None:
        """Enqueue batch jobs in one round trip (each already carries its options)."""
        if jobs:
            await self.batches.addBulk(list(jobs))
