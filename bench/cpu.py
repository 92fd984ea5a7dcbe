"""CPU seconds spent by each side of an import: this process, the worker processes, PostgreSQL, Redis.

PostgreSQL counts the postmaster, its live children (backends, writers) and the children it has
already reaped (a backend that exited when its connection closed), so every backend's time is in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SIDES = ("workers", "postgres", "redis", "bench")


@dataclass(frozen=True)
class Servers:
    """The servers' processes (``None``: not measured)."""

    postgres: psutil.Process | None = None
    redis: psutil.Process | None = None

    @classmethod
    def of(cls, pgdata: Path, redis_pid: int | None) -> Servers:
        """From PostgreSQL's data directory (its ``postmaster.pid``) and Redis's pid."""
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        return cls(psutil.Process(postmaster), psutil.Process(redis_pid) if redis_pid else None)


@dataclass
class Meter:
    """CPU seconds by side since :meth:`start` (``workers``: the given worker processes)."""

    servers: Servers
    workers: Sequence[psutil.Process] = ()
    _start: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._start = self.now()

    def spent(self) -> dict[str, float]:
        """CPU seconds by side, by worker process (``worker 1``...), and of the whole machine
        (``machine``: every process, ours and the other tenants' of a shared machine)."""
        now = self.now()
        return {name: now[name] - self._start[name] for name in now}

    def now(self) -> dict[str, float]:
        workers = {f"worker {n}": own_cpu(worker) for n, worker in enumerate(self.workers, start=1)}
        return {
            "workers": sum(workers.values()),
            "postgres": tree_cpu(self.servers.postgres),
            "redis": tree_cpu(self.servers.redis),
            "bench": own_cpu(psutil.Process()),
            **workers,
            "machine": machine_cpu(),
        }


def machine_cpu() -> float:
    """Busy seconds of every CPU of the machine (all but idle and I/O wait)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def own_cpu(process: psutil.Process) -> float:
    """User + system seconds of the process itself (every thread)."""
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def tree_cpu(process: psutil.Process | None) -> float:
    """The process's own seconds, its reaped children's, and its live children's."""
    if process is None:
        return 0.0
    try:
        times = process.cpu_times()
        children = process.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = times.user + times.system + times.children_user + times.children_system
    return float(total + sum(own_cpu(child) for child in children))
