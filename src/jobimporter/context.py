"""What every queued job needs, built once per process by the composition root and handed in (arq's ``ctx``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx

from jobimporter.events import EventBus
from jobimporter.fetch import FetchLimits
from jobimporter.lifecycle import LifecyclePolicy
from jobimporter.locks import Locks
from jobimporter.politeness import HostLimiter
from jobimporter.queue import JobPolicy, Queues
from jobimporter.store.base import JobStore


@dataclass(frozen=True, slots=True)
class ImportContext:
    store: JobStore
    queues: Queues
    events: EventBus
    http: httpx.AsyncClient
    limits: FetchLimits
    policy: JobPolicy
    batch_size: int
    seen_refresh_s: float
    spool_dir: Path
    limiter: HostLimiter
    locks: Locks
    history_retention_days: int = 0  # 0: keep every run
    cron: str = "0 * * * *"  # the scheduler's, for feeds without their own
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
