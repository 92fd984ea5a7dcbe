"""The cron in the production topology: separate scheduler and worker processes on shared servers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.schedule import schedule_record, wait_for_schedule
from fixtures.wpjm import load_real_jobs, render_feed
from jobimporter.config import Settings
from jobimporter.models import FeedSource, ImportRun, RunStatus, Trigger, new_id, utcnow
from jobimporter.runtime import Runtime
from jobimporter.scheduler import run_tick
from jobimporter.store import create_store

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]


async def cron_runs(database_url: str) -> list[ImportRun]:
    async with create_store(database_url) as store:
        return [r for r in await store.list_runs(limit=50) if r.trigger is Trigger.CRON]


def process_env(tmp_path: Path, redis_url: str, database_url: str, sources: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.update(
        REDIS_URL=redis_url, DATABASE_URL=database_url, JOBIMPORTER_DATA_DIR=str(tmp_path / "data"),
        JOBIMPORTER_SOURCES=str(sources), JOBIMPORTER_CRON="*/2 * * * * *", JOBIMPORTER_HOST_INTERVAL_S="0",
        JOBIMPORTER_LOG_LEVEL="WARNING",
    )  # fmt: skip
    return env


def test_two_schedulers_fire_once_per_slot_and_workers_import(
    tmp_path: Path, redis_url: str, pg_database_url: str, feeds: Any
) -> None:
    """Two schedulers add every slot's tick; the schedule queue holds one tick per slot (the other's
    add dropped), and each tick started one run, which the worker imported."""
    feeds.route("/cron", body=render_feed(load_real_jobs()[:4], title="t", link="https://jobicy.com"))
    sources = tmp_path / "feeds.toml"
    sources.write_text(f'[[feeds]]\nname = "cron"\nurl = "{feeds.url("/cron")}"\n', encoding="utf-8")
    env = process_env(tmp_path, redis_url, pg_database_url, sources)
    command = [sys.executable, "-m", "jobimporter.cli"]
    processes = [subprocess.Popen([*command, role], env=env) for role in ("scheduler", "scheduler", "worker")]
    try:
        # Three slots fired, and at least one of them by both schedulers (its second add dropped).
        asyncio.run(wait_for_schedule(redis_url, ticks=3, duplicates=1))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in processes]
    assert codes == [0, 0, 0]

    record = asyncio.run(schedule_record(redis_url))  # ticks under way at SIGTERM finished by now
    slots = [tick.slot for tick in record.ticks]
    assert len(set(slots)) == len(slots), slots  # never two ticks for a slot
    assert len(slots) >= 3, slots
    assert all(slot.second % 2 == 0 and slot.microsecond == 0 for slot in slots), slots  # */2 seconds
    runs = asyncio.run(cron_runs(pg_database_url))
    assert sorted(str(tick.run_id) for tick in record.ticks) == sorted(r.run_id for r in runs)
    finished = [r for r in runs if r.status is not RunStatus.RUNNING]
    assert finished and all(r.status is RunStatus.COMPLETED for r in finished)
    assert sum(e.new for r in runs for e in r.feeds) == 4  # the workers imported each job once


async def test_each_cron_tick_applies_the_history_retention(tmp_path: Path, redis_url: str) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'j.db'}",
        history_retention_days=30,
    )  # fmt: skip
    async with Runtime(settings, workers=False) as rt:
        old = ImportRun(run_id=new_id("run"), trigger=Trigger.CRON, started_at=utcnow() - timedelta(days=40))
        await rt.ctx.store.create_run(old)
        await rt.ctx.store.finalize_run_if_done(old.run_id, utcnow() - timedelta(days=40))

        await rt.ctx.store.sync_feeds([FeedSource(name="f", url="https://f.example/feed")])

        result = await run_tick(rt.ctx, datetime(2026, 11, 23, 10, 0, tzinfo=UTC))  # an hourly slot

        kept = [r.run_id for r in await rt.ctx.store.list_runs(limit=10)]
    assert result["runs_pruned"] == 1 and kept == [result["run_id"]] and result["feeds"] == 1


def seconds_of(slot: datetime) -> int:
    return round(slot.timestamp())


async def test_a_feed_on_its_own_cron_runs_at_its_slots_and_an_edit_takes_effect(
    tmp_path: Path, redis_url: str, feeds: Any
) -> None:
    """Feed "own" has its own cron (every 2 s), feed "later" the scheduler's (yearly) until the API
    gives it one (every 3 s): every slot of either gets one tick whose run holds exactly the feeds due."""
    jobs = load_real_jobs()
    feeds.route("/own", body=render_feed(jobs[:2], title="own", link="https://jobicy.com"))
    feeds.route("/later", body=render_feed(jobs[2:4], title="later", link="https://jobicy.com"))
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'j.db'}",
        cron="0 0 1 1 *", schedule_refresh_s=0.3, host_interval_s=0,
    )  # fmt: skip
    async with Runtime(settings, workers=True, schedule=True) as rt:
        store = rt.ctx.store
        _, later = await store.sync_feeds(
            [
                FeedSource(name="own", url=feeds.url("/own"), cron="*/2 * * * * *"),
                FeedSource(name="later", url=feeds.url("/later")),
            ]
        )
        await asyncio.sleep(5)
        edited = time.time()
        await store.update_feed(later.id, {"cron": "*/3 * * * * *"})
        await asyncio.sleep(7)
        stopped = time.time()
        ticks = await rt.ctx.queues.schedule.getJobs(["completed"])
        names = {t.data["slot"]: await run_feed_names(store, t.returnvalue["run_id"]) for t in ticks}

    slots = {seconds_of(datetime.fromisoformat(slot)): feed_names for slot, feed_names in names.items()}
    assert slots and all(second % 2 == 0 or second % 3 == 0 for second in slots), sorted(slots)
    before = [second for second in slots if second < edited - 0.5]
    assert before and all(slots[second] == ["own"] for second in before)
    settled = range(int(edited) + 2, int(stopped) - 1)  # the edit seen, every tick taken
    due = {
        second: sorted(n for n, step in (("later", 3), ("own", 2)) if second % step == 0)
        for second in settled
    }
    assert {second: slots.get(second) for second in due if due[second]} == {s: n for s, n in due.items() if n}
    assert any("later" in feed_names for feed_names in slots.values())


async def run_feed_names(store: Any, run_id: str) -> list[str]:
    return sorted(entry.name for entry in (await store.get_run(run_id)).feeds)
