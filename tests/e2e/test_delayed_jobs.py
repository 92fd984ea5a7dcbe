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


async def test_jobs_delayed_6_s_and_12_s_run_within_a_second_of_their_time(
    tmp_path: Path, redis_url: str
) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'j.db'}")
    done: dict[str, asyncio.Event] = {"six": asyncio.Event(), "twelve": asyncio.Event()}

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
        pool.start()
        try:
            await asyncio.sleep(0.5)  # let the worker go idle first: it then blocks on Redis
            await queue.add("six", {}, {"jobId": "six", "delay": 6000})
            await queue.add("twelve", {}, {"jobId": "twelve", "delay": 12_000})
            # A generous bound only so that a regression fails instead of hanging (it used to take
            # minutes); the assertion is on the times BullMQ recorded.
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in done.values())), 60)
        finally:
            await pool.aclose()
    for job_id, delay_ms in (("six", 6000), ("twelve", 12_000)):
        job = await queue.getJob(job_id)
        assert job is not None
        late_ms = job.processedOn - (job.timestamp + delay_ms)
        assert 0 <= late_ms < 1000, (job_id, late_ms)
    await queue.obliterate(force=True)
    await queue.close()
