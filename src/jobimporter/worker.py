"""BullMQ workers for the feed, batch and schedule queues, sharing one ImportContext.

Each processor runs under a time limit (the Python port of BullMQ has none of its own): an attempt
that runs over fails and is retried like any transient error. One INFO line per job with its duration.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bullmq import Worker
from bullmq.custom_errors import DelayedError, UnrecoverableError, WaitingChildrenError
from redis.exceptions import RedisError

from jobimporter.batchjob import process_batch_job
from jobimporter.context import ImportContext
from jobimporter.errors import ImporterError, QueueError
from jobimporter.feedjob import give_up, process_feed_job
from jobimporter.queue import MAX_STALLED, RETRY_AFTER_BACKOFF, JobPolicy, QueueNames, connection

log = logging.getLogger(__name__)

Processor = Callable[[ImportContext, Any, str], Awaitable[Any]]


class AttemptTimedOut(QueueError):
    """A job attempt ran past its time limit; it is retried."""


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    concurrency: int = 5
    job_timeout_s: float = 30.0
    feed_timeout_s: float = 300.0
    lock_duration_ms: int = 30_000
    stalled_interval_ms: int = 30_000


async def _learn_capabilities(worker: Worker) -> None:
    """Ask Redis its version on the worker's blocking connection. bullmq asks on the main connection
    only; the blocking one keeps its class defaults (no fractional timeouts), so every wait for a
    delayed job is rounded up to whole seconds: a politeness step-aside of 0.3 s, or a backoff of
    1.3 s, waited 1 s or 2 s. Known, BullMQ blocks for exactly the time to the next delayed job."""
    blocking = worker.blockingRedisConnection
    if blocking is None:
        return
    try:
        await blocking.getRedisVersion()
    except RedisError as exc:  # Redis away at start: whole seconds, until the worker is made again
        log.warning("workers: could not read the Redis version (waits round up to seconds): %s", exc)


class WorkerPool:
    """Runs the workers of one process; ``aclose`` lets active jobs finish (graceful shutdown)."""

    def __init__(
        self,
        ctx: ImportContext,
        redis_url: str,
        names: QueueNames,
        settings: WorkerSettings,
        *,
        imports: bool = True,
        extra: Mapping[str, Processor] | None = None,
    ) -> None:
        """``imports``: take feed and batch jobs; ``extra``: more queues (the schedule's ticks)."""
        self.ctx, self.redis_url, self.names, self.settings = ctx, redis_url, names, settings
        self._processors: dict[str, tuple[Processor, float]] = {}
        if imports:
            self._processors[names.feeds] = (process_feed_job, settings.feed_timeout_s)
            self._processors[names.batches] = (process_batch_job, settings.job_timeout_s)
        for queue_name, processor in (extra or {}).items():
            self._processors[queue_name] = (processor, settings.job_timeout_s)
        self._workers: list[Worker] = []
        self.grace_s = settings.job_timeout_s  # how long ``aclose`` lets active jobs finish

    async def start(self) -> None:
        for queue_name, (processor, timeout_s) in self._processors.items():
            wrapped = self._wrap(queue_name, processor, timeout_s)
            self._workers.append(Worker(queue_name, wrapped, self._options()))
        await asyncio.gather(*(_learn_capabilities(worker) for worker in self._workers))
        names = ", ".join(self._processors)
        log.info("workers: %s, concurrency %d each", names, self.settings.concurrency)

    async def aclose(self) -> None:
        """Stop taking jobs and let active ones finish, for at most ``grace_s`` (the job time limit);
        then stop them (their locks lapse and another worker takes them over: nothing is lost)."""
        workers, self._workers = self._workers, []
        closing = asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        try:
            await asyncio.wait_for(asyncio.shield(closing), self.grace_s)
        except TimeoutError:
            log.warning("workers: active jobs still running after %g s; stopping them", self.grace_s)
            await asyncio.gather(*(w.close(force=True) for w in workers), return_exceptions=True)

    def _options(self) -> dict[str, Any]:
        policy = self.ctx.policy
        return {
            "connection": connection(self.redis_url),
            "concurrency": self.settings.concurrency,
            "lockDuration": self.settings.lock_duration_ms,
            "stalledInterval": self.settings.stalled_interval_ms,
            "maxStalledCount": MAX_STALLED,
            "runRetryDelay": 1000,  # after a lost Redis connection, try again in 1 s (BullMQ: 15 s)
            # An idle worker blocks at most 1 s (BullMQ: 5 s) before it looks again, so delayed jobs
            # (politeness waits, backoffs, cron ticks) start within a second of their time.
            "drainDelay": 1,
            "settings": {"backoffStrategy": _retry_after_backoff(policy)},
        }

    def _wrap(
        self, queue_name: str, processor: Processor, timeout_s: float
    ) -> Callable[[Any, str], Awaitable[Any]]:
        ctx = self.ctx

        async def limited(job: Any, token: str) -> Any:
            try:
                return await asyncio.wait_for(processor(ctx, job, token), timeout_s)
            except TimeoutError as exc:
                raise AttemptTimedOut(f"queue: {job.name} attempt timed out after {timeout_s:g} s") from exc

        async def run(job: Any, token: str) -> Any:
            started = time.perf_counter()
            try:
                result = await limited(job, token)
            except WaitingChildrenError:
                log.debug(
                    "%6.2fs ⇢ %s %s waits for its batches", time.perf_counter() - started, job.name, job.id
                )
                raise
            except DelayedError:
                # Stepped aside until its host's turn (politeness): not an attempt, not a failure.
                log.debug(
                    "%6.2fs ⇢ %s %s waits for its host", time.perf_counter() - started, job.name, job.id
                )
                raise
            except Exception as exc:
                log.info("%6.2fs ✗ %s %s: %s", time.perf_counter() - started, job.name, job.id, exc)
                if queue_name == self.names.feeds and _is_last_attempt(job, exc):
                    await _give_up_quietly(ctx, job, exc)
                raise
            log.info("%6.2fs → %s %s", time.perf_counter() - started, job.name, job.id)
            return result

        return run


def _is_last_attempt(job: Any, exc: BaseException) -> bool:
    return isinstance(exc, UnrecoverableError) or job.attemptsMade + 1 >= int(job.opts.get("attempts") or 1)


async def _give_up_quietly(ctx: ImportContext, job: Any, exc: BaseException) -> None:
    try:
        await give_up(ctx, job, exc)
    except ImporterError as nested:  # the store may be what failed; the dead letter keeps the reason
        log.warning("queue: could not fail the entry of %s: %s", job.id, nested)


def _retry_after_backoff(policy: JobPolicy) -> Callable[[int, str, BaseException, Any], int]:
    """Exponential backoff that never retries before the server's Retry-After."""

    def strategy(attempts_made: int, backoff_type: str, err: BaseException, job: Any) -> int:
        if backoff_type != RETRY_AFTER_BACKOFF:
            raise QueueError(f"queue: unknown backoff type {backoff_type!r}")
        return policy.delay_ms(attempts_made, getattr(err, "retry_after", None))

    return strategy
