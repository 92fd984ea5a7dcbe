"""The composition root: builds the store, Redis (embedded or given), queues, events, HTTP client and
workers from ``Settings``, and tears them down in reverse order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from jobimporter.config import Settings
from jobimporter.context import ImportContext
from jobimporter.events import EventBus
from jobimporter.fetch import FetchLimits, make_client
from jobimporter.lifecycle import LifecyclePolicy, Sweeper
from jobimporter.locks import Locks
from jobimporter.politeness import HostLimiter
from jobimporter.queue import JobPolicy, QueueNames, Queues, WebhookPolicy
from jobimporter.redis_server import EmbeddedRedis
from jobimporter.scheduler import process_tick, run_schedule
from jobimporter.sources import load_webhooks
from jobimporter.store import create_store
from jobimporter.store.base import JobStore
from jobimporter.watchdog import Watchdog, WatchdogSettings
from jobimporter.webhooks import Dispatcher, Sender
from jobimporter.worker import Processor, WorkerPool, WorkerSettings

log = logging.getLogger(__name__)


def fetch_limits(settings: Settings) -> FetchLimits:
    return FetchLimits(
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        total_timeout_s=settings.fetch_timeout_s,
        max_bytes=settings.max_feed_bytes,
        user_agent=settings.user_agent,
    )


def worker_settings(settings: Settings) -> WorkerSettings:
    return WorkerSettings(
        concurrency=settings.concurrency,
        job_timeout_s=settings.job_timeout_s,
        feed_timeout_s=settings.feed_timeout_s,
        lock_duration_ms=settings.lock_duration_ms,
        stalled_interval_ms=settings.stalled_interval_ms,
    )


class Runtime:
    """Everything one process needs. ``workers=True`` also takes feed and batch jobs in this process;
    ``schedule=True`` adds the cron's tick at each slot and takes the ticks (each starts a run)."""

    def __init__(self, settings: Settings, *, workers: bool = True, schedule: bool = False) -> None:
        self.settings = settings
        self.with_workers = workers
        self.with_schedule = schedule
        self.names = QueueNames(settings.queue_prefix)
        self._stack = AsyncExitStack()
        self.redis_url = ""
        self.ctx: ImportContext
        self.pool: WorkerPool | None = None

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    def stop_quickly(self) -> None:
        """Close without waiting for active jobs (an interrupted ``import``): they are given back,
        to be retaken by the next process or by BullMQ's stalled-job check."""
        if self.pool is not None:
            self.pool.grace_s = 1.0

    async def _start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        embedded = None if settings.redis_url else self._start_embedded_redis()
        self.redis_url = embedded.url if embedded else str(settings.redis_url)
        store = create_store(settings.resolved_database_url())
        await store.start()
        self._stack.push_async_callback(store.aclose)
        if settings.sources is not None:  # its [[webhooks]], which no sources sync of feeds reads
            await store.sync_webhooks(load_webhooks(settings.sources))
        queues = Queues(self.redis_url, self.names)
        self._stack.push_async_callback(queues.aclose)
        locks = Locks(self.redis_url, prefix=settings.queue_prefix)
        self._stack.push_async_callback(locks.aclose)
        if embedded is not None and embedded.started:
            await _recover_orphans(queues, locks)
        events = EventBus(self.redis_url, prefix=settings.queue_prefix)
        self._stack.push_async_callback(events.aclose)
        http = make_client(fetch_limits(settings))
        self._stack.push_async_callback(http.aclose)
        limiter = HostLimiter(
            self.redis_url, prefix=settings.queue_prefix, interval_s=settings.host_interval_s
        )
        self._stack.push_async_callback(limiter.aclose)
        self.ctx = ImportContext(
            store=store,
            queues=queues,
            events=events,
            http=http,
            limits=fetch_limits(settings),
            policy=JobPolicy(
                attempts=settings.attempts,
                backoff_ms=settings.backoff_ms,
                keep_completed_s=settings.keep_completed_s,
                keep_failed_s=settings.keep_failed_s,
            ),
            batch_size=settings.batch_size,
            seen_refresh_s=settings.seen_refresh_s,
            spool_dir=self._spool_dir(),
            limiter=limiter,
            locks=locks,
            history_retention_days=settings.history_retention_days,
            cron=settings.cron,
            lifecycle=lifecycle_policy(settings),
        )
        if self.with_schedule:
            self._start_schedule(queues, store)
        if self.with_workers or self.with_schedule:
            await self._start_workers()

    def _start_schedule(self, queues: Queues, store: JobStore) -> None:
        task = asyncio.create_task(
            run_schedule(queues, store, self.settings.cron, refresh_s=self.settings.schedule_refresh_s),
            name="cron",
        )
        self._stack.push_async_callback(_cancel, task)

    def _start_embedded_redis(self) -> EmbeddedRedis:
        server = EmbeddedRedis(self.settings.data_dir / "redis")
        server.start()
        self._stack.callback(server.stop)
        return server

    def _spool_dir(self) -> Path:
        path = self.settings.data_dir / "spool"
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def _start_workers(self) -> None:
        extra: dict[str, Processor] = {self.names.schedule: process_tick} if self.with_schedule else {}
        if self.with_workers:
            extra[self.names.webhooks] = self._start_webhooks()
        self.pool = WorkerPool(
            self.ctx,
            self.redis_url,
            self.names,
            worker_settings(self.settings),
            imports=self.with_workers,
            extra=extra,
        )
        self._stack.push_async_callback(self.pool.aclose)  # first: start may fail half-way
        await self.pool.start()
        if self.with_workers:
            self._start_watchdog()
            self._start_task(Sweeper(self.ctx).run(), "lifecycle")

    def _start_watchdog(self) -> None:
        settings = self.settings
        watchdog = Watchdog(
            self.ctx,
            self.redis_url,
            prefix=settings.queue_prefix,
            settings=WatchdogSettings(
                stuck_after_s=settings.stuck_after_s, interval_s=settings.watchdog_interval_s
            ),
        )
        self._stack.push_async_callback(watchdog.aclose)
        task = asyncio.create_task(watchdog.run(), name="watchdog")
        self._stack.push_async_callback(_cancel, task)

    def _start_webhooks(self) -> Processor:
        """The webhook deliveries' sender (its own HTTP client) and the dispatcher that makes them."""
        policy = webhook_policy(self.settings)
        sender = Sender(policy)
        self._stack.push_async_callback(sender.aclose)
        self._start_task(Dispatcher(self.ctx, policy).run(), "webhooks")
        return sender.process

    def _start_task(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._stack.push_async_callback(_cancel, task)


def webhook_policy(settings: Settings) -> WebhookPolicy:
    return WebhookPolicy(
        attempts=settings.webhook_attempts,
        backoff_ms=settings.webhook_backoff_ms,
        timeout_s=settings.webhook_timeout_s,
    )


def lifecycle_policy(settings: Settings) -> LifecyclePolicy:
    return LifecyclePolicy(
        expire_after_s=settings.expire_after_s,
        pause_after=settings.pause_after_failures,
        retention_days=settings.expired_retention_days,
        interval_s=settings.expiry_interval_s,
    )


async def _recover_orphans(queues: Queues, locks: Locks) -> None:
    """This process has just started the embedded Redis, so no worker of it is alive: jobs it holds
    as active, and locks, belong to a process that ended mid-run (killed, crashed). Put the jobs
    back in line and drop the locks now."""
    moved = await queues.recover_orphans()
    if moved:
        log.warning("redis: %d jobs of a process that ended mid-run are queued again", moved)
    dropped = await locks.drop_orphans()
    if dropped:
        log.warning("redis: %d locks of a process that ended mid-run are dropped", dropped)


async def _cancel(task: asyncio.Task[None]) -> None:
    """Stop a background task, asking again each second until it has: a library that swallows the
    request (redis-py can turn it into its read timeout) must not keep the process from exiting."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled() and task.exception() is not None:
        log.warning("%s stopped with an error: %s", task.get_name(), task.exception())
