"""The MongoDB backend's figures for bench/run.py, against SecantusDB 0.7.0b3.

SecantusDB is the MongoDB wire-protocol server the tests use (no ``mongod`` can be installed here).
It is a Python server, one to two orders of magnitude slower than mongod per command, so its rates
are SecantusDB's and say nothing about the backend on MongoDB; what carries over is the counts and
that an unchanged re-import writes nothing to ``jobs``. Measured in the same run as PostgreSQL's, on
the same RSS feed: ``insert_many`` of the normalized rows (the raw limit of writing), then a cold and
an unchanged import with each worker-process count of the run.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from jobimporter.store import create_store
from plugins.mongo import SecantusServer, with_database

ImportRate = Callable[..., Awaitable[Any]]
_TOP_WRITES = {"inserted": "insert", "updated": "update", "deleted": "remove"}


def start_secantus(work: Path) -> SecantusServer:
    server = SecantusServer(work / "mongo" / "data")
    server.storage.parent.mkdir(parents=True)
    server.start()
    return server


async def job_writes(url: str) -> dict[str, int]:
    """Write commands on the jobs collection so far (``top``): MongoDB's "rows written"."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        name = client.get_default_database().name
        usage = (await client.admin.command("top"))["totals"].get(f"{name}.jobs", {})
        return {key: usage.get(op, {}).get("count", 0) for key, op in _TOP_WRITES.items()}
    finally:
        await client.close()


async def insert_many_rate(url: str, rows: list[dict[str, Any]]) -> float:
    """``insert_many`` of the same normalized rows, as job documents, into an empty jobs collection."""
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


async def fresh_database(server_url: str, name: str) -> str:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server_url)
    try:
        await client.drop_database(name)
    finally:
        await client.close()
    return with_database(server_url, name)


async def measure(
    bench: Any, server: SecantusServer, rows: list[dict[str, Any]], feed_url: str, import_rate: ImportRate
) -> dict[str, Any]:
    """SecantusDB's insert_many rate, then a cold and an unchanged import per topology (``import_rate``
    is bench/run.py's, the same timing as PostgreSQL's)."""
    results: dict[str, Any] = {
        "insert_many_rows_per_s": await insert_many_rate(
            await fresh_database(server.url, "insert_many"), rows
        )
    }
    for processes in bench.args.worker_processes:
        database = await fresh_database(server.url, f"bench_{processes}")
        settings = bench.settings(f"mongo-{processes}", database_url=database)
        for label in ("cold", "unchanged"):
            imported = await import_rate(settings, feed_url, processes, bench.servers)
            results[f"{label}_{processes}"] = asdict(imported)
    return results


def report_lines(r: dict[str, Any]) -> list[str]:
    lines = [
        "MongoDB backend on SecantusDB 0.7.0b3 (a Python MongoDB wire-protocol server: these rates are",
        "SecantusDB's, not MongoDB's; CPU is not counted for it)",
        f"  SecantusDB insert_many     {r['insert_many_rows_per_s']:7.0f} rows/s",
    ]
    for key in sorted(k for k in r if k.startswith(("cold_", "unchanged_"))):
        label, processes = key.split("_")
        imported = r[key]
        writes = imported["row_writes"]
        line = f"  {label:9} {processes} worker process(es): {imported['items_per_s']:7.0f} items/s  {imported['counts']}"
        if label == "unchanged":
            line += f"  jobs writes {writes} {'OK' if not any(writes.values()) else 'MISSED'}"
        lines.append(line)
    return lines
