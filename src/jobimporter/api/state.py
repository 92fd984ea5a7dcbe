"""What the API's routes share, built once in the app's lifespan: the runtime, the dead letters, the
metrics collector, the live-stream settings and the shared queue-counts cache."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from jobimporter.api.metrics import ImporterMetrics
from jobimporter.config import Settings
from jobimporter.deadletters import DeadLetters
from jobimporter.queue import Queues
from jobimporter.runtime import Runtime


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """Cadence of the SSE stream: queue counts every ``queue_counts_s``, a heartbeat comment every
    ``heartbeat_s``, Redis read blocking at most ``block_ms`` (so both run on time even when idle), and
    the reconnection delay suggested to browsers."""

    queue_counts_s: float = 3.0
    heartbeat_s: float = 15.0
    block_ms: int = 1000
    retry_ms: int = 3000


class QueueCountsCache:
    """``Queues.counts()`` at most once per ``max_age_s`` however many clients ask (SSE streams)."""

    def __init__(self, queues: Queues, max_age_s: float) -> None:
        self._queues = queues
        self._max_age_s = max_age_s
        self._lock = asyncio.Lock()
        self._value: dict[str, dict[str, int]] | None = None
        self._at = 0.0

    async def get(self) -> dict[str, dict[str, int]]:
        async with self._lock:
            if self._value is None or time.monotonic() - self._at >= self._max_age_s:
                self._value = await self._queues.counts()
                self._at = time.monotonic()
            return self._value


@dataclass(slots=True)
class ApiState:
    settings: Settings
    runtime: Runtime
    dead_letters: DeadLetters
    metrics: ImporterMetrics
    live: LiveSettings
    queue_counts: QueueCountsCache
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(cls, settings: Settings, runtime: Runtime, live: LiveSettings) -> ApiState:
        ctx = runtime.ctx
        return cls(
            settings=settings,
            runtime=runtime,
            dead_letters=DeadLetters(ctx, runtime.redis_url),
            metrics=ImporterMetrics(),
            live=live,
            queue_counts=QueueCountsCache(ctx.queues, max_age_s=max(live.queue_counts_s - 0.5, 0.0)),
        )
