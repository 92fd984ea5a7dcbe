"""Redis restarts in the middle of a run: workers reconnect, stalled jobs are retaken, counts stay exact."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixtures.wpjm import nine_feeds, serve_feeds
from jobimporter.config import Settings
from jobimporter.events import BatchProcessed
from jobimporter.models import EntryStatus, RunStatus, Trigger
from jobimporter.redis_server import EmbeddedRedis
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]


def worker_processes(settings: Settings, count: int) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.update(
        REDIS_URL=str(settings.redis_url), DATABASE_URL=str(settings.database_url),
        JOBIMPORTER_DATA_DIR=str(settings.data_dir), JOBIMPORTER_BATCH_SIZE=str(settings.batch_size),
        JOBIMPORTER_CONCURRENCY=str(settings.concurrency), JOBIMPORTER_HOST_INTERVAL_S="0",
        JOBIMPORTER_BACKOFF_MS=str(settings.backoff_ms), JOBIMPORTER_LOCK_DURATION_MS=str(settings.lock_duration_ms),
        JOBIMPORTER_STALLED_INTERVAL_MS=str(settings.stalled_interval_ms), JOBIMPORTER_LOG_LEVEL="WARNING",
    )  # fmt: skip
    command = [sys.executable, "-m", "jobimporter.cli", "worker"]
    return [subprocess.Popen(command, env=env) for _ in range(count)]


@pytest.mark.parametrize("workers", ["in-process", "two worker processes"])
async def test_a_redis_restart_mid_run_ends_in_a_completed_run_with_exact_counts(
    tmp_path: Path, feeds: Any, workers: str, pg_database_url: str
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)  # our own: this test restarts it
    server.start()
    in_process = workers == "in-process"
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=server.url,
        database_url=f"sqlite:///{tmp_path / 'j.db'}" if in_process else pg_database_url,
        batch_size=3, concurrency=2, host_interval_s=0, backoff_ms=200,
        lock_duration_ms=3000, stalled_interval_ms=1000,
    )  # fmt: skip
    sources = serve_feeds(feeds, nine_feeds(), delay_s=0.3)
    processes = [] if in_process else worker_processes(settings, 2)
    try:
        async with Runtime(settings, workers=in_process) as rt:
            rows = await rt.ctx.store.sync_feeds(sources)
            after = await rt.ctx.events.last_id()
            run = await start_run(rt.ctx, rows, Trigger.CLI)
            first_batch = asyncio.Event()

            def on_event(event: Any) -> None:
                if isinstance(event, BatchProcessed):
                    first_batch.set()

            waiting = asyncio.create_task(wait_for_run(rt.ctx, run.run_id, after, on_event))
            await asyncio.wait_for(first_batch.wait(), 30)
            server.stop()  # SHUTDOWN: the AOF is flushed, as a restarted container would do
            await asyncio.sleep(1.5)
            server.start()
            done = await asyncio.wait_for(waiting, 90)
            for process in processes:
                assert process.poll() is None, "a worker process died with Redis instead of reconnecting"
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in processes]
        server.stop()
    assert codes == [0] * len(processes)

    assert done.status is RunStatus.COMPLETED, [(e.name, e.status, e.error) for e in done.feeds]
    distinct = 0
    async with Runtime(settings.model_copy(update={"redis_url": None}), workers=False) as check:
        distinct = await check.ctx.store.count_jobs()
    assert sum(e.new for e in done.feeds) == distinct
    for entry in done.feeds:
        assert entry.status is EntryStatus.COMPLETED and entry.failed == 0
        assert entry.total_fetched == entry.new + entry.updated + entry.unchanged
        path = "/" + entry.url.split("/", 3)[3]
        assert entry.total_fetched == nine_feeds()[path].count(b"<item>")
