"""The database goes away mid-run and comes back: attempts back off and the run completes exactly."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from fixtures.wpjm import nine_feeds
from jobimporter.config import Settings
from jobimporter.events import EntryChanged
from jobimporter.models import EntryStatus, FeedSource, RunStatus, Trigger
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime
from plugins.postgres import _start_server

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]


@pytest.fixture
def own_postgres() -> Any:
    """A PostgreSQL of this test's own, since the test stops it."""
    parent = Path(tempfile.mkdtemp(prefix="jobimporter-outage-"))
    parent.chmod(0o755)
    server = _start_server(parent / "pgdata")
    yield server
    server.cleanup()
    shutil.rmtree(parent, ignore_errors=True)


async def test_a_database_outage_mid_run_backs_off_and_completes(
    tmp_path: Path, redis_url: str, feeds: Any, own_postgres: Any
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=str(own_postgres.get_uri()),
        batch_size=4, concurrency=3, host_interval_s=0, attempts=8, backoff_ms=250,
        lock_duration_ms=3000, stalled_interval_ms=1000,
    )  # fmt: skip
    sources = []
    for path, body in nine_feeds().items():
        feeds.route(path, body=body, delay_s=0.2)
        sources.append(FeedSource(name=path, url=feeds.url(path)))
    async with Runtime(settings, workers=True) as rt:
        rows = await rt.ctx.store.sync_feeds(sources)
        after = await rt.ctx.events.last_id()
        run = await start_run(rt.ctx, rows, Trigger.CLI)
        processing = asyncio.Event()

        def on_event(event: Any) -> None:
            if isinstance(event, EntryChanged) and event.status == "processing":
                processing.set()

        waiting = asyncio.create_task(wait_for_run(rt.ctx, run.run_id, after, on_event))
        await asyncio.wait_for(processing.wait(), 30)
        await asyncio.to_thread(own_postgres._cleanup)  # pg_ctl stop: every connection drops
        await asyncio.sleep(3)
        await asyncio.to_thread(own_postgres.ensure_postgres_running)
        done = await asyncio.wait_for(waiting, 120)
        distinct = await rt.ctx.store.count_jobs()

    assert done.status is RunStatus.COMPLETED, [(e.name, e.status, e.error) for e in done.feeds]
    assert sum(e.new for e in done.feeds) == distinct
    for entry in done.feeds:
        assert entry.status is EntryStatus.COMPLETED and entry.failed == 0
        path = "/" + entry.url.split("/", 3)[3]
        assert (
            entry.total_fetched
            == entry.new + entry.updated + entry.unchanged
            == nine_feeds()[path].count(b"<item>")
        )
