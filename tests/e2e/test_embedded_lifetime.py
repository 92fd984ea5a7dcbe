"""The embedded Redis never outlives its users, whatever ends them, and nothing queued is lost.

A ``jobimporter import`` on the embedded default is stopped mid-run by SIGTERM, SIGINT or SIGKILL:
no ``redis-server`` (nor its supervisor) is left behind, and the next import on that data directory
finishes the interrupted run (its queued jobs were kept in the AOF) and then imports the feeds again,
both with exact counts; a lock the killed process held is dropped, not waited out. A process that joined a running embedded Redis keeps working when the one
that started it is killed.

The host interval is 0.2 s here, not the default 2 s: these tests are about processes ending, and
``test_default_workload`` covers the import itself at the default.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from fixtures.wpjm import distinct_jobs, nine_feeds, serve_feeds
from jobimporter.models import EntryStatus, ImportRun, RunStatus
from plugins.feedserver import FeedServer

pytestmark = [pytest.mark.e2e, pytest.mark.external_service, pytest.mark.slow]

JOBIMPORTER = [sys.executable, "-m", "jobimporter.cli"]
MS = timedelta(milliseconds=1)


def env_for(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    for name in ("REDIS_URL", "DATABASE_URL"):
        env.pop(name, None)
    env.update(JOBIMPORTER_DATA_DIR=str(data_dir), JOBIMPORTER_HOST_INTERVAL_S="0.2")
    return env


def sources_file(tmp_path: Path, feeds: FeedServer) -> Path:
    sources = serve_feeds(feeds, nine_feeds())
    path = tmp_path / "feeds.toml"
    path.write_text("".join(f'[[feeds]]\nname = "{s.name}"\nurl = "{s.url}"\n\n' for s in sources))
    return path


def redis_processes(data_dir: Path) -> list[int]:
    """Pids of every process whose command line names this data directory's Redis."""
    marker = str((data_dir / "redis").resolve())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def wait_until(condition: object, timeout_s: float) -> bool:
    """Poll recorded state (a process table, a request log) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def history(env: dict[str, str]) -> list[ImportRun]:
    done = subprocess.run(
        [*JOBIMPORTER, "history", "--json"], env=env, capture_output=True, text=True, check=True
    )
    return [ImportRun.model_validate(run) for run in json.loads(done.stdout)]


def hold_the_run_lock(data_dir: Path, ttl: timedelta) -> datetime:
    """Take the running import's run lock in its Redis, as its own process does while it closes an
    entry; returns when the lock would lapse by itself."""
    client = redis.Redis(unix_socket_path=str(data_dir / "redis" / "redis.sock"))
    try:
        jobs = [key for key in client.scan_iter("bull:jobimporter-feeds:*") if client.type(key) == b"hash"]
        run_ids = {json.loads(data)["run_id"] for key in jobs if (data := client.hget(key, "data"))}
        assert len(run_ids) == 1, run_ids
        client.set(f"jobimporter:lock:run:{run_ids.pop()}", "a-killed-holder", px=ttl // MS)
    finally:
        client.close()
    return datetime.now(UTC) + ttl


def assert_complete(run: ImportRun) -> None:
    items = {path: body.count(b"<item>") for path, body in nine_feeds().items()}
    assert run.status is RunStatus.COMPLETED, [(e.name, e.status, e.error) for e in run.feeds]
    for entry in run.feeds:
        assert entry.status is EntryStatus.COMPLETED
        assert entry.total_fetched == items[entry.name] == entry.new + entry.updated + entry.unchanged


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_a_stopped_import_leaves_no_redis_and_the_next_import_finishes_its_run(
    tmp_path: Path, feeds: FeedServer, signum: signal.Signals
) -> None:
    data_dir = tmp_path / "data"
    env = env_for(data_dir)
    sources = sources_file(tmp_path, feeds)
    # One feed answers slowly, so the run is certainly still open when the signal comes (a quick
    # machine could otherwise finish the whole import first); the next import gets it at once.
    held = list(nine_feeds())[2]
    feeds.route(held, body=nine_feeds()[held], delay_s=5)
    first = subprocess.Popen(
        [*JOBIMPORTER, "import", "--sources", str(sources), "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert wait_until(lambda: feeds.requests_for(held), 60), "the import never got going"
    lock_lapses_at = None
    if signum == signal.SIGKILL:  # killed inside a critical section: the run's lock stays in Redis
        lock_lapses_at = hold_the_run_lock(data_dir, ttl=timedelta(minutes=2))
    first.send_signal(signum)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == (-signum if signum == signal.SIGKILL else 128 + signum), stderr
    if signum != signal.SIGKILL:
        assert f"interrupted by {signum.name}" in stderr and "left running" in stderr, stderr
    assert wait_until(lambda: not redis_processes(data_dir), 5), redis_processes(data_dir)
    feeds.route(held, body=nine_feeds()[held])

    done = subprocess.run(
        [*JOBIMPORTER, "import", "--sources", str(sources), "--json"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "to finish first" in done.stderr  # it waited for the interrupted run, and said so
    second = ImportRun.model_validate(json.loads(done.stdout))
    assert_complete(second)
    assert sum(e.new for e in second.feeds) == 0  # the interrupted run had imported them all
    interrupted = next(r for r in history(env) if r.run_id != second.run_id)
    assert_complete(interrupted)
    if lock_lapses_at is not None:  # the next process dropped the lock instead of waiting it out
        assert "locks of a process that ended mid-run are dropped" in done.stderr, done.stderr
        assert interrupted.finished_at is not None and interrupted.finished_at < lock_lapses_at
    assert sum(e.new for e in interrupted.feeds) == distinct_jobs(nine_feeds().values())  # once each
    assert not redis_processes(data_dir)


def test_a_process_that_joined_keeps_working_when_the_starter_is_killed(
    tmp_path: Path, feeds: FeedServer
) -> None:
    data_dir = tmp_path / "data"
    env = env_for(data_dir)
    sources = sources_file(tmp_path, feeds)
    # The starter serves the API only: killing it strands no job, so the import has nothing to wait for.
    starter = subprocess.Popen(
        [*JOBIMPORTER, "api", "--port", "0"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_until(lambda: (data_dir / "redis" / "redis.pid").exists(), 30)
        joined = subprocess.Popen(
            [*JOBIMPORTER, "import", "--sources", str(sources), "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert wait_until(lambda: len(feeds.requests) >= 2, 60)
    finally:
        starter.kill()
        starter.wait(timeout=10)
    stdout, stderr = joined.communicate(timeout=120)
    assert joined.returncode == 0, stderr
    assert_complete(ImportRun.model_validate(json.loads(stdout)))
    assert wait_until(lambda: not redis_processes(data_dir), 5), redis_processes(data_dir)
