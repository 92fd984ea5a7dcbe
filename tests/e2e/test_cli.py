"""The `jobimporter` command as a user runs it: subprocesses, the embedded default, the JSON contract."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from fixtures.schedule import schedule_record, slot_ms, wait_for_schedule
from fixtures.wpjm import load_real_jobs, render_feed
from jobimporter.store import create_store

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]

JOBIMPORTER = [sys.executable, "-m", "jobimporter.cli"]
RUN_KEYS = {"run_id", "trigger", "status", "started_at", "finished_at", "feeds"}
FEED_KEYS = {
    "url", "name", "status", "http_status", "total_fetched", "new", "updated", "unchanged", "failed",
    "failures", "error",
}  # fmt: skip


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    env.update(
        {
            "JOBIMPORTER_DATA_DIR": str(data_dir),
            "JOBIMPORTER_BACKOFF_MS": "100",
            "JOBIMPORTER_HOST_INTERVAL_S": "0",
        },
        **extra,
    )
    return env


def jobimporter(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JOBIMPORTER, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def write_sources(path: Path, feeds: Any, names: list[str]) -> Path:
    lines = [f'[[feeds]]\nname = "{n}"\nurl = "{feeds.url("/" + n)}"\n' for n in names]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_import_json_on_the_embedded_default_then_history(tmp_path: Path, feeds: Any) -> None:
    jobs = load_real_jobs()
    feeds.route("/a", body=render_feed(jobs[:15], title="a", link="https://jobicy.com"))
    feeds.route("/b", body=render_feed(jobs[10:20], title="b", link="https://jobicy.com"))
    feeds.route("/down", status=404)
    sources = write_sources(tmp_path / "feeds.toml", feeds, ["a", "b", "down"])
    env = cli_env(tmp_path / "data")

    done = jobimporter(["import", "--sources", str(sources), "--json"], env)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert RUN_KEYS <= run.keys() and run["trigger"] == "cli" and run["status"] == "partial"
    by_name = {f["name"]: f for f in run["feeds"]}
    assert all(FEED_KEYS <= f.keys() for f in run["feeds"])
    assert by_name["a"]["total_fetched"] == 15 and by_name["b"]["total_fetched"] == 10
    assert by_name["a"]["new"] + by_name["b"]["new"] == 20  # 5 jobs are in both feeds
    assert by_name["down"]["status"] == "failed" and by_name["down"]["http_status"] == 404
    assert "404" in by_name["down"]["error"]
    # the embedded Redis was persisted in the data dir and stopped with the process
    assert (tmp_path / "data" / "redis").is_dir() and (tmp_path / "data" / "jobimporter.db").is_file()
    assert not _answers(tmp_path / "data" / "redis" / "redis.sock")

    again = jobimporter(["import", "--sources", str(sources), "--json"], env)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert sum(f["unchanged"] for f in second["feeds"]) == 25 and sum(f["new"] for f in second["feeds"]) == 0

    history = jobimporter(["history", "--json", "--limit", "5"], env)
    assert history.returncode == 0, history.stderr
    runs = json.loads(history.stdout)
    assert [r["run_id"] for r in runs] == [second["run_id"], run["run_id"]]
    assert runs[1]["feeds"] == run["feeds"]

    table = jobimporter(["history"], env)
    assert table.returncode == 0 and run["run_id"] in table.stdout


def test_import_that_cannot_run_exits_1_with_one_line(tmp_path: Path, feeds: Any) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[feeds]]\nname = "x"\nurl = "ftp://nope"\n', encoding="utf-8")
    done = jobimporter(["import", "--sources", str(bad)], cli_env(tmp_path / "data"))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "sources:" in done.stderr and "url" in done.stderr

    sources = write_sources(tmp_path / "ok.toml", feeds, ["a"])
    env = cli_env(tmp_path / "data", DATABASE_URL="postgresql://nobody@127.0.0.1:9/none")
    done = jobimporter(["import", "--sources", str(sources), "--json"], env)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("jobimporter: store:") and done.stderr.count("\n") == 1


def test_two_run_services_fire_the_cron_once_per_slot_and_stop_on_sigterm(
    tmp_path: Path, redis_url: str, feeds: Any
) -> None:
    """Both services schedule every second's slot; each slot gets one tick (the second service's
    add of it is dropped) and one run, as the schedule queue and the history record them."""
    feeds.route("/a", body=render_feed(load_real_jobs()[:2], title="a", link="https://jobicy.com"))
    sources = write_sources(tmp_path / "feeds.toml", feeds, ["a"])
    env = cli_env(
        tmp_path / "data", REDIS_URL=redis_url, JOBIMPORTER_CRON="* * * * * *", JOBIMPORTER_PORT="0",
        JOBIMPORTER_SOURCES=str(sources),
    )  # fmt: skip
    logs = [tmp_path / f"service-{n}.log" for n in range(2)]
    services = [subprocess.Popen([*JOBIMPORTER, "run"], env=env, stderr=log.open("w")) for log in logs]
    try:
        # Three slots fired, and at least one of them by both services (its second add dropped).
        asyncio.run(wait_for_schedule(redis_url, ticks=3, duplicates=1))
    finally:
        for service in services:
            service.send_signal(signal.SIGTERM)
        codes = [service.wait(timeout=30) for service in services]
    assert codes == [0, 0], [log.read_text() for log in logs]

    record = asyncio.run(schedule_record(redis_url))  # ticks under way at SIGTERM finished by now
    slots = [tick.slot for tick in record.ticks]
    assert len(set(slots)) == len(slots), slots  # never two ticks for a slot
    assert len(slots) >= 3, slots
    assert all(tick.job_id == f"tick-{slot_ms(tick.slot)}" for tick in record.ticks), record.ticks
    assert all(slot.microsecond == 0 for slot in slots), slots  # the cron's whole seconds
    runs = json.loads(jobimporter(["history", "--json", "--limit", "100"], env).stdout)
    cron_runs = sorted(run["run_id"] for run in runs if run["trigger"] == "cron")
    assert sorted(str(tick.run_id) for tick in record.ticks) == cron_runs  # one run per tick, no other


def _answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def test_failed_list_retry_and_discard_dead_letters(tmp_path: Path, feeds: Any, redis_url: str) -> None:
    feeds.route("/a", status=404)
    feeds.route("/b", status=410)
    sources = write_sources(tmp_path / "feeds.toml", feeds, ["a", "b"])
    env = cli_env(tmp_path / "data", REDIS_URL=redis_url)
    assert jobimporter(["import", "--sources", str(sources), "--json"], env).returncode == 0

    listed = jobimporter(["failed", "list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    letters = {letter["summary"]["name"]: letter for letter in json.loads(listed.stdout)}
    assert set(letters) == {"a", "b"}
    assert "404" in letters["a"]["reason"] and letters["a"]["attempts"] == 1

    feeds.route("/a", body=render_feed(load_real_jobs()[:3], title="a", link="https://jobicy.com"))
    retried = jobimporter(["failed", "retry", letters["a"]["id"]], env)
    assert retried.returncode == 0 and retried.stdout.strip() == "retried 1", retried.stderr
    discarded = jobimporter(["failed", "discard", letters["b"]["id"]], env)
    assert discarded.returncode == 0, discarded.stderr
    assert json.loads(jobimporter(["failed", "list", "--json"], env).stdout) == []

    # A worker takes the retried feed job: its entry, reopened, now completes with exact counts.
    worker = subprocess.Popen([*JOBIMPORTER, "worker"], env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run = json.loads(jobimporter(["history", "--json", "--limit", "1"], env).stdout)[0]
            entry = next(f for f in run["feeds"] if f["name"] == "a")
            if entry["status"] == "completed":
                break
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert (entry["status"], entry["new"], entry["total_fetched"], entry["error"]) == (
        "completed",
        3,
        3,
        None,
    )
    assert jobimporter(["failed", "retry"], env).returncode == 1  # neither an id nor --all


def test_import_without_sources_takes_the_stored_feeds_as_left_by_the_dashboard(
    tmp_path: Path, feeds: Any
) -> None:
    body = render_feed(load_real_jobs()[:2], title="t", link="https://jobicy.com")
    feeds.route("/a", body=body)
    feeds.route("/b", body=body)
    env = cli_env(tmp_path / "data")
    first = jobimporter(
        ["import", "--sources", str(write_sources(tmp_path / "f.toml", feeds, ["a", "b"])), "--json"], env
    )
    assert first.returncode == 0, first.stderr

    async def pause_b() -> None:
        async with create_store(f"sqlite:///{tmp_path / 'data' / 'jobimporter.db'}") as store:
            b = next(f for f in await store.list_feeds() if f.name == "b")
            await store.update_feed(b.id, {"enabled": False})

    asyncio.run(pause_b())
    second = jobimporter(["import", "--json"], env)
    assert second.returncode == 0, second.stderr
    assert [f["name"] for f in json.loads(second.stdout)["feeds"]] == [
        "a"
    ]  # b stays paused; no built-ins added
