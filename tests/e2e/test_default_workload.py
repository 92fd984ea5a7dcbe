"""The main job on the shape of its own default workload, at the default settings.

The quick start imports the nine built-in feeds: eight on jobicy.com, one on higheredjobs.com, at
one request per host per 2 s, 3 attempts, concurrency 5. Here: the eight jobicy feeds (rendered from
real jobicy records) on one local host, the HigherEdJobs one on another (127.0.0.2), nothing in the
settings changed. Both topologies: the embedded default (``jobimporter import``, its own Redis and
SQLite), and separate ``jobimporter worker`` processes on PostgreSQL with a producer starting the run.

Checked each time: every entry completed with exact counts, every job new exactly once, requests to
the shared host at least an interval apart (as the feed server saw them), the other host not held
up. Once, a 429 with Retry-After from the shared host mid-run: nothing reaches that host until the
Retry-After has passed, the feed is retried and completes, and the import, silent for longer than
its stall bound meanwhile, says which feeds it waits for and why.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.wpjm import HIGHER_ED_FEED, distinct_jobs, nine_feeds
from jobimporter.config import Settings
from jobimporter.models import EntryStatus, FeedSource, ImportRun, RunStatus, Trigger
from jobimporter.oneshot import STALL_REPORT_S
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime
from plugins.feedserver import FeedServer, RecordedRequest

pytestmark = [pytest.mark.e2e, pytest.mark.external_service, pytest.mark.slow]

JOBIMPORTER = [sys.executable, "-m", "jobimporter.cli"]
INTERVAL_S = Settings().host_interval_s  # the default: 2 s
# Slots are granted on Redis's clock; the feed server stamps arrivals on its own, a few ms later
# for one request than for another on a busy machine.
TOLERANCE_S = 0.2
ISO_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: "
)


def serve_shape(shared: FeedServer, other: FeedServer) -> list[FeedSource]:
    """The built-in shape: eight feeds on ``shared``'s host, the HigherEdJobs feed on ``other``'s."""
    sources = []
    for path, body in nine_feeds().items():
        server = other if path == HIGHER_ED_FEED else shared
        server.route(path, body=body)
        sources.append(FeedSource(name=path, url=server.url(path)))
    return sources


def write_sources(path: Path, sources: list[FeedSource]) -> Path:
    path.write_text("".join(f'[[feeds]]\nname = "{s.name}"\nurl = "{s.url}"\n\n' for s in sources))
    return path


def expected_items() -> dict[str, int]:
    return {path: body.count(b"<item>") for path, body in nine_feeds().items()}


def assert_exact(run: ImportRun, *, first: bool) -> None:
    assert run.status is RunStatus.COMPLETED, [(e.name, e.status, e.error) for e in run.feeds]
    items = expected_items()
    for entry in run.feeds:
        assert entry.status is EntryStatus.COMPLETED, (entry.name, entry.status, entry.error)
        assert entry.total_fetched == items[entry.name] == entry.new + entry.updated + entry.unchanged
        assert entry.failed == 0 and entry.updated == 0
    new = sum(e.new for e in run.feeds)
    assert new == (distinct_jobs(nine_feeds().values()) if first else 0)


def assert_polite(shared: list[RecordedRequest], other: list[RecordedRequest]) -> None:
    times = sorted(r.at for r in shared)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= INTERVAL_S - TOLERANCE_S, gaps
    assert len(other) == 1 and other[0].at < times[1]  # fetched before the shared host's second turn


def cli_env(data_dir: Path) -> dict[str, str]:
    """The user's environment: nothing of ours but the data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    for name in ("REDIS_URL", "DATABASE_URL"):
        env.pop(name, None)
    env["JOBIMPORTER_DATA_DIR"] = str(data_dir)
    return env


def cli_import(sources: Path, env: dict[str, str]) -> tuple[ImportRun, str]:
    done = subprocess.run(
        [*JOBIMPORTER, "import", "--sources", str(sources), "--json"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return ImportRun.model_validate(json.loads(done.stdout)), done.stderr


def test_the_embedded_default_imports_the_built_in_shape_politely_through_a_429(
    tmp_path: Path, feeds: FeedServer, other_host_feeds: FeedServer
) -> None:
    sources = serve_shape(feeds, other_host_feeds)
    limited = sources[3].url.removeprefix(feeds.base_url)  # the fourth jobicy feed in line
    retry_after_s = STALL_REPORT_S + 5  # longer than the stall bound: the import must say why it waits
    feeds.sequence(
        limited,
        [
            {"status": 429, "headers": {"Retry-After": str(int(retry_after_s))}},
            {"body": nine_feeds()[limited]},
        ],
    )
    path = write_sources(tmp_path / "feeds.toml", sources)
    env = cli_env(tmp_path / "data")

    run, stderr = cli_import(path, env)

    assert_exact(run, first=True)
    shared = feeds.requests
    assert_polite(shared, other_host_feeds.requests)
    refused = next(r for r in shared if r.path == limited)
    after = [r.at - refused.at for r in shared if r.at > refused.at]
    assert after and min(after) >= retry_after_s - TOLERANCE_S, after  # the whole host held back
    assert len(feeds.requests_for(limited)) == 2  # retried once, after the Retry-After
    # Nothing moved for longer than the stall bound: the import said which feeds wait, and why.
    assert "nothing moved for" in stderr, stderr
    waiting = [line for line in stderr.splitlines() if line.startswith("  /")]
    assert any(f"{limited}: to be retried" in line and "429" in line for line in waiting), stderr
    assert any("waiting for its turn at 127.0.0.1" in line for line in waiting), stderr
    logged = [line for line in stderr.splitlines() if line[:2].isdigit()]
    assert logged and all(ISO_LOG_LINE.match(line) for line in logged), logged  # plain lines, UTC


def start_workers(env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([*JOBIMPORTER, "worker"], env=env) for _ in range(count)]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> list[int]:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    return [worker.wait(timeout=60) for worker in workers]


async def test_separate_workers_on_postgresql_import_the_built_in_shape_politely(
    tmp_path: Path, redis_url: str, pg_database_url: str, feeds: FeedServer, other_host_feeds: FeedServer
) -> None:
    sources = serve_shape(feeds, other_host_feeds)
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_url, database_url=pg_database_url)
    env = cli_env(tmp_path / "data") | {"REDIS_URL": redis_url, "DATABASE_URL": pg_database_url}
    async with Runtime(settings, workers=False) as producer:  # the API's or the scheduler's part
        rows = await producer.ctx.store.sync_feeds(sources)
        workers = start_workers(env, 2)
        try:
            runs = []
            for _ in range(2):  # an import, then the re-import
                feeds.clear()
                other_host_feeds.clear()
                after = await producer.ctx.events.last_id()
                run = await start_run(producer.ctx, rows, Trigger.MANUAL)
                runs.append(await asyncio.wait_for(wait_for_run(producer.ctx, run.run_id, after), 180))
                assert_polite(feeds.requests, other_host_feeds.requests)
            distinct = await producer.ctx.store.count_jobs()
        finally:
            codes = stop_workers(workers)
    assert codes == [0, 0]
    assert_exact(runs[0], first=True)
    assert_exact(runs[1], first=False)
    assert distinct == distinct_jobs(nine_feeds().values())
