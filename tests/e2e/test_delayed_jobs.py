"""Delayed jobs are taken on time: politeness step-asides, retry backoffs and Retry-After waits all
ride on BullMQ's delayed set, and a worker waiting for one blocks on Redis for up to 10 s.

With redis-py 8's default 5 s read timeout, a wait of 5-10 s timed out and was re-sent with a
growing backoff, and the job was not taken for minutes (see ``queue.READ_TIMEOUT_S``). Every bullmq
connection goes through ``queue.connection``; these tests run the workers exactly as production
builds them (``WorkerPool``), at the default settings.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from bullmq import Queue

from jobimporter.config import Settings
from jobimporter.queue import READ_TIMEOUT_S, connection
from jobimporter.runtime import Runtime, worker_settings
from jobimporter.worker import WorkerPool

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]

QUEUE = "jobimporter-test-delayed"


def test_every_bullmq_connection_gets_a_read_timeout_above_the_longest_blocking_wait() -> None:
    assert READ_TIMEOUT_S > 10  # bullmq blocks for at most 10 s
    assert connection("redis://h:6379/0") == f"redis://h:6379/0?socket_timeout={READ_TIMEOUT_S}"
    short = connection("unix:///tmp/r.sock?db=0&socket_timeout=5")
    assert short == f"unix:///tmp/r.sock?db=0&socket_timeout={READ_TIMEOUT_S}"
    assert connection("rediss://u:p@h/1?socket_timeout=90") == "rediss://u:p@h/1?socket_timeout=90"


async def run_delayed(tmp_path: Path, redis_url: str, delays_ms: dict[str, int]) -> dict[str, int]:
    """Add a job per name with its delay to an idle production-built worker; how late each ran (ms,
    from the times BullMQ recorded)."""
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'j.db'}")
    done = {name: asyncio.Event() for name in delays_ms}

    async def record(ctx: Any, job: Any, token: str) -> str:
        done[job.name].set()
        return "ok"

    queue = Queue(QUEUE, {"connection": connection(redis_url)})
    async with Runtime(settings, workers=False) as runtime:
        pool = WorkerPool(
            runtime.ctx,
            redis_url,
            runtime.names,
            worker_settings(settings),
            imports=False,
            extra={QUEUE: record},
        )
        await pool.start()
        try:
            await asyncio.sleep(0.5)  # let the worker go idle first: it then blocks on Redis
            for name, delay_ms in delays_ms.items():
                await queue.add(name, {}, {"jobId": name, "delay": delay_ms})
            # A generous bound only so that a regression fails instead of hanging (it used to take
            # minutes); the assertion is on the times BullMQ recorded.
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in done.values())), 60)
        finally:
            await pool.aclose()
    late = {}
    for job_id, delay_ms in delays_ms.items():
        job = await queue.getJob(job_id)
        assert job is not None
        late[job_id] = job.processedOn - (job.timestamp + delay_ms)
    await queue.obliterate(force=True)
    await queue.close()
    return late


async def test_jobs_delayed_6_s_and_12_s_run_within_a_second_of_their_time(
    tmp_path: Path, redis_url: str
) -> None:
    late = await run_delayed(tmp_path, redis_url, {"six": 6000, "twelve": 12_000})
    assert all(0 <= ms < 1000 for ms in late.values()), late


async def test_a_wait_for_a_delayed_job_is_not_rounded_up_to_whole_seconds(
    tmp_path: Path, redis_url: str
) -> None:
    """A job due in 1.3 s (a politeness step-aside, a backoff): bullmq's blocking connection never
    learnt Redis's version, so it rounded its wait up to 2 s and the job ran ~0.7 s late; the pool
    asks the version on that connection too (``worker._learn_capabilities``)."""
    late = await run_delayed(tmp_path, redis_url, {"soon": 1300})
    assert 0 <= late["soon"] < 500, late  # rounded up, it is 700 ms late (less the add's own time)
