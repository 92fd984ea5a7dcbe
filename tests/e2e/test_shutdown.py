"""SIGTERM: a worker stops taking jobs, lets active ones finish up to the job time limit, then exits."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fixtures.wpjm import load_real_jobs, render_feed
from jobimporter.config import Settings
from jobimporter.models import EntryStatus, FeedSource, RunStatus, Trigger
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]


def worker_env(settings: Settings, job_timeout_s: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.update(
        REDIS_URL=str(settings.redis_url), DATABASE_URL=str(settings.database_url),
        JOBIMPORTER_DATA_DIR=str(settings.data_dir), JOBIMPORTER_HOST_INTERVAL_S="0",
        JOBIMPORTER_JOB_TIMEOUT_S=str(job_timeout_s), JOBIMPORTER_LOCK_DURATION_MS="2000",
        JOBIMPORTER_LOG_LEVEL="WARNING",
    )  # fmt: skip
    return env


async def sigterm_during_fetch(
    settings: Settings, feeds: Any, delay_s: float, job_timeout_s: float
) -> tuple[int, float, str]:
    """Start a run, SIGTERM the only worker while it waits for the slow feed; (exit code, seconds, run id)."""
    feeds.route(
        "/slow", body=render_feed(load_real_jobs()[:5], title="t", link="https://jobicy.com"), delay_s=delay_s
    )
    async with Runtime(settings, workers=False) as producer:
        rows = await producer.ctx.store.sync_feeds([FeedSource(name="slow", url=feeds.url("/slow"))])
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobimporter.cli", "worker", env=worker_env(settings, job_timeout_s)
        )
        run = await start_run(producer.ctx, rows, Trigger.CLI)
        async with asyncio.timeout(20):
            while not feeds.requests_for("/slow"):  # noqa: ASYNC110 - the feed server announces nothing
                await asyncio.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        code = await asyncio.wait_for(worker.wait(), 30)
        return code, time.monotonic() - stopping, run.run_id


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'j.db'}",
        host_interval_s=0, lock_duration_ms=2000, stalled_interval_ms=1000, backoff_ms=100,
    )  # fmt: skip


async def test_sigterm_lets_the_active_job_finish(settings: Settings, feeds: Any) -> None:
    code, _, run_id = await sigterm_during_fetch(settings, feeds, delay_s=1.5, job_timeout_s=30)
    assert code == 0
    async with Runtime(settings, workers=False) as rt:
        run = await rt.ctx.store.get_run(run_id)
    entry = run.feeds[0]
    # The fetch finished and its entry moved on (its batches may wait for the next worker).
    assert entry.status in (EntryStatus.PROCESSING, EntryStatus.COMPLETED) and entry.total_fetched == 5
    assert len(feeds.requests_for("/slow")) == 1


async def test_a_job_outliving_the_grace_period_is_stopped_and_retaken(
    settings: Settings, feeds: Any
) -> None:
    code, seconds, run_id = await sigterm_during_fetch(settings, feeds, delay_s=8, job_timeout_s=1)
    assert code == 0 and seconds < 6  # waited about the 1 s job limit, not the 8 s fetch
    feeds.route("/slow", body=render_feed(load_real_jobs()[:5], title="t", link="https://jobicy.com"))
    async with Runtime(settings, workers=True) as rescuer:  # its lock lapses; this worker takes it over
        run = await asyncio.wait_for(wait_for_run(rescuer.ctx, run_id, "0-0"), 30)
    assert run.status is RunStatus.COMPLETED and run.feeds[0].new == 5
