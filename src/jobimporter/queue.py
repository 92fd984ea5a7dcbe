"""BullMQ queue names, job ids and job options: the one place that knows how work is queued.

Three queues (names carry the configured prefix):
- ``<prefix>-feeds``: one job per feed per run; it fetches, parses and fans out batch jobs as its
  children, then runs again to finalize the feed's import entry once every child has settled.
- ``<prefix>-batches``: one job per batch of normalized items; workers bulk-upsert them.
- ``<prefix>-schedule``: one tick per cron slot (id ``tick-<slot ms>``, so every scheduler adds the same one).

Job ids are deterministic (run entry + batch number), so a repeated enqueue is dropped by BullMQ
instead of doubling work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bullmq import Queue

from jobimporter.models import Priority

FEED_JOB = "import-feed"
BATCH_JOB = "upsert-batch"
TICK_JOB = "cron-tick"
SCHEDULER_ID = "import-all-feeds"
RETRY_AFTER_BACKOFF = "retry-after"  # our custom backoff: exponential, but never before Retry-After

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
    def all(self) -> tuple[str, str, str]:
        return (self.feeds, self.batches, self.schedule)


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


class Queues:
    """The producer side of the three queues, opened once per process and shared."""

    def __init__(self, redis_url: str, names: QueueNames) -> None:
        self.names = names
        options = {"connection": redis_url}
        self.feeds = Queue(names.feeds, options)
        self.batches = Queue(names.batches, options)
        self.schedule = Queue(names.schedule, options)

    async def aclose(self) -> None:
        for queue in (self.feeds, self.batches, self.schedule):
            await queue.close()

    async def counts(self) -> dict[str, dict[str, int]]:
        """Jobs by state for each queue (for progress displays and, later, the queue monitor)."""
        states = ("waiting", "active", "delayed", "prioritized", "waiting-children", "completed", "failed")
        result: dict[str, dict[str, int]] = {}
        for queue in (self.feeds, self.batches, self.schedule):
            raw = await queue.getJobCounts(*states)
            result[queue.name] = {state: int(raw.get(state, 0)) for state in states}
        return result

    async def add_batches(self, jobs: Sequence[dict[str, Any]]) -> None:
        """Enqueue batch jobs in one round trip (each already carries its options)."""
        if jobs:
            await self.batches.addBulk(list(jobs))
