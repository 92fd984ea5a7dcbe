"""Read-side queries of the MongoDB store for the admin API: job search, feed health, the stats
series and all-time totals.

Job search is a plain ``find``: ``q`` is a case-insensitive regular expression of the escaped text
over three fields, list filters match an array element, and a sort puts missing values last in
either direction (MongoDB sorts them first when ascending, so an ascending sort of a field that may
be missing reads the documents that have it, then those that do not). Feed health and the totals
are aggregations that group ``import_logs`` without ``$lookup``: the entries carry their run's start
and trigger.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from jobimporter.models import EntryStatus, JobRecord, RunStatus, Trigger
from jobimporter.store.base import (
    EntryTally,
    FeedHealth,
    FeedPoint,
    FeedSeries,
    HistoryTotals,
    JobQuery,
    RunPoint,
    RunTally,
    StatsSeries,
)
from jobimporter.store.mongo_feeds import plain
from jobimporter.store.mongo_history import FINAL, between, run_order
from jobimporter.store.mongo_lifecycle import permanent_failures
from jobimporter.store.mongo_schema import FEEDS, IMPORT_LOGS, JOBS, RUNS, Document

CLEAN = [EntryStatus.COMPLETED.value, EntryStatus.NOT_MODIFIED.value]
COUNTS = ("new", "updated", "unchanged", "failed")
_TEXT_FIELDS = ("title", "company", "description_text")
# Sort fields a job may lack (a record field whose default is None); the store's own are always set.
_MAY_BE_MISSING = frozenset(name for name, info in JobRecord.model_fields.items() if info.default is None)
_NEWEST_FIRST = {"run_started_at": DESCENDING, "run_id": DESCENDING, "position": DESCENDING}


# ---------------------------------------------------------------- jobs


def job_filter(query: JobQuery, feed_id: str | None = None) -> Document:
    conditions: list[Document] = []
    if query.q:
        pattern = {"$regex": re.escape(query.q), "$options": "i"}
        conditions.append({"$or": [{name: pattern} for name in _TEXT_FIELDS]})
    for name, value in (
        ("feed_ids", feed_id),
        ("feed_ids", query.feed_id),
        ("job_types", query.job_type),
        ("categories", query.category),
        ("locations", query.location),
        ("employment_types", query.employment_type),
        ("workplace", query.workplace),
        ("status", plain(query.status)),
    ):
        if value is not None:
            conditions.append({name: value})  # an array field matches an element equal to the value
    if query.since is not None or query.until is not None:
        published = between("published_at", query.since, query.until)
        unpublished = {"published_at": None, **between("first_seen", query.since, query.until)}
        conditions.append({"$or": [published, unpublished]})
    return {"$and": conditions} if conditions else {}


async def job_page(
    db: AsyncDatabase[Document], selector: Document, query: JobQuery, limit: int, offset: int
) -> list[Document]:
    """One page of the jobs matching ``selector`` in ``query``'s order, then by key, missing values last."""
    if limit <= 0:
        return []
    name = query.sort
    if query.descending:  # missing values sort lowest: last when descending
        return await _find(db, selector, [(name, DESCENDING), ("_id", ASCENDING)], offset, limit)
    if name not in _MAY_BE_MISSING:
        return await _find(db, selector, [(name, ASCENDING), ("_id", ASCENDING)], offset, limit)
    present = {"$and": [selector, {name: {"$ne": None}}]}
    page = await _find(db, present, [(name, ASCENDING), ("_id", ASCENDING)], offset, limit)
    if len(page) == limit:
        return page
    # Past the documents that have the field: how many were before this page decides where the
    # missing ones start.
    before = offset + len(page) if page else await db[JOBS].count_documents(present)
    missing = {"$and": [selector, {name: None}]}
    rest = await _find(db, missing, [("_id", ASCENDING)], max(0, offset - before), limit - len(page))
    return page + rest


async def _find(
    db: AsyncDatabase[Document], selector: Document, order: list[tuple[str, int]], offset: int, limit: int
) -> list[Document]:
    return await db[JOBS].find(selector).sort(order).skip(offset).limit(limit).to_list()


# ---------------------------------------------------------------- feed health


async def feed_health(
    db: AsyncDatabase[Document], feed_ids: Sequence[str] | None, window: int
) -> dict[str, FeedHealth]:
    if feed_ids is None:
        feed_ids = [doc["_id"] async for doc in db[FEEDS].find({}, {"_id": 1})]
    wanted = list(feed_ids)
    health = {feed_id: _empty_health() for feed_id in wanted}
    if not wanted:
        return health
    for row in await _aggregate(db, _newest_entries(wanted)):
        health[row["_id"]]["last_status"] = EntryStatus(row["status"])
        health[row["_id"]]["last_run_at"] = row["run_started_at"]
    for row in await _aggregate(db, _last_successes(wanted)):
        health[row["_id"]]["last_success_at"] = row["last_success_at"]
    for row in await _aggregate(db, _final_window(wanted, window)) if window > 0 else []:
        _window_health(health[row["_id"]], row["recent"])
    for feed_id, failures in (await permanent_failures(db, wanted)).items():
        health[feed_id]["permanent_failures"] = failures
    return health


def _empty_health() -> FeedHealth:
    return FeedHealth(
        last_status=None,
        last_run_at=None,
        last_success_at=None,
        success_rate=None,
        median_fetch_s=None,
        last_error=None,
        permanent_failures=0,
    )


async def _aggregate(db: AsyncDatabase[Document], pipeline: list[Document]) -> list[Document]:
    return await (await db[IMPORT_LOGS].aggregate(pipeline)).to_list()


def _newest_entries(feed_ids: list[str]) -> list[Document]:
    return [
        {"$match": {"feed_id": {"$in": feed_ids}}},
        {"$sort": {"feed_id": ASCENDING, **_NEWEST_FIRST}},
        {
            "$group": {
                "_id": "$feed_id",
                "status": {"$first": "$status"},
                "run_started_at": {"$first": "$run_started_at"},
            }
        },
    ]


def _last_successes(feed_ids: list[str]) -> list[Document]:
    return [
        {"$match": {"feed_id": {"$in": feed_ids}, "status": {"$in": CLEAN}}},
        {"$group": {"_id": "$feed_id", "last_success_at": {"$max": "$finished_at"}}},
    ]


def _final_window(feed_ids: list[str], window: int) -> list[Document]:
    """Each feed's newest ``window`` final entries, newest first (status, error, fetch time)."""
    return [
        {"$match": {"feed_id": {"$in": feed_ids}, "status": {"$in": FINAL}}},
        {"$sort": {"feed_id": ASCENDING, **_NEWEST_FIRST}},
        {
            "$group": {
                "_id": "$feed_id",
                "recent": {"$push": {"status": "$status", "error": "$error", "fetch_s": "$fetch_s"}},
            }
        },
        {"$project": {"recent": {"$slice": ["$recent", window]}}},
    ]


def _window_health(health: FeedHealth, recent: list[Document]) -> None:
    health["success_rate"] = sum(1 for e in recent if e["status"] in CLEAN) / len(recent)
    health["last_error"] = recent[0].get("error")
    timed = [float(e["fetch_s"]) for e in recent if e.get("fetch_s") is not None]
    health["median_fetch_s"] = statistics.median(timed) if timed else None


# ---------------------------------------------------------------- stats series and totals


def _seconds(start: Any, end: Any) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


async def stats(db: AsyncDatabase[Document], limit: int) -> StatsSeries:
    if limit <= 0:
        return StatsSeries(runs=[], feeds=[])
    run_docs = list(reversed(await db[RUNS].find({}).sort(run_order(True)).limit(limit).to_list()))
    run_ids = [doc["_id"] for doc in run_docs]
    by_run: dict[str, list[Document]] = {}
    async for entry in db[IMPORT_LOGS].find({"run_id": {"$in": run_ids}}).sort("position", ASCENDING):
        by_run.setdefault(entry["run_id"], []).append(entry)
    points = [_run_point(run, by_run.get(run["_id"], [])) for run in run_docs]
    return StatsSeries(runs=points, feeds=await _feed_series(db, run_docs, by_run))


def _run_point(run: Document, run_entries: list[Document]) -> RunPoint:
    totals = {name: sum(e[name] for e in run_entries) for name in COUNTS}
    return RunPoint(
        run_id=run["_id"],
        started_at=run["started_at"],
        trigger=Trigger(run["trigger"]),
        status=RunStatus(run["status"]),
        new=totals["new"],
        updated=totals["updated"],
        unchanged=totals["unchanged"],
        failed=totals["failed"],
        duration_s=_seconds(run["started_at"], run.get("finished_at")),
    )


async def _feed_series(
    db: AsyncDatabase[Document], run_docs: list[Document], by_run: dict[str, list[Document]]
) -> list[FeedSeries]:
    series: dict[str, FeedSeries] = {}
    for run in run_docs:  # oldest first, so each feed's points are too
        for entry in by_run.get(run["_id"], []):
            feed_id = entry["feed_id"]
            line = series.setdefault(feed_id, FeedSeries(feed_id=feed_id, name="", points=[]))
            line["name"] = entry["name"]  # the newest entry's name, unless the feed still exists
            line["points"].append(_feed_point(run, entry))
    names = {doc["_id"]: doc["name"] async for doc in db[FEEDS].find({"_id": {"$in": list(series)}})}
    for feed_id, line in series.items():
        line["name"] = names.get(feed_id, line["name"])
    return sorted(series.values(), key=lambda line: (line["name"], line["feed_id"]))


def _feed_point(run: Document, entry: Document) -> FeedPoint:
    return FeedPoint(
        run_id=run["_id"],
        started_at=run["started_at"],
        fetch_s=entry.get("fetch_s"),
        duration_s=entry.get("duration_s"),
        new=entry["new"],
        updated=entry["updated"],
        unchanged=entry["unchanged"],
        failed=entry["failed"],
        status=EntryStatus(entry["status"]),
    )


async def history_totals(db: AsyncDatabase[Document]) -> HistoryTotals:
    by_run = [{"$group": {"_id": {"trigger": "$trigger", "status": "$status"}, "n": {"$sum": 1}}}]
    runs = await (await db[RUNS].aggregate(by_run)).to_list()
    sums = {name: {"$sum": f"${name}"} for name in COUNTS}
    by_entry = [{"$group": {"_id": {"feed_id": "$feed_id", "status": "$status"}, "n": {"$sum": 1}, **sums}}]
    entries = await _aggregate(db, by_entry)
    return HistoryTotals(
        runs=[
            RunTally(trigger=Trigger(r["_id"]["trigger"]), status=RunStatus(r["_id"]["status"]), runs=r["n"])
            for r in runs
        ],
        entries=[_entry_tally(row) for row in entries],
    )


def _entry_tally(row: Document) -> EntryTally:
    return EntryTally(
        feed_id=row["_id"]["feed_id"],
        status=EntryStatus(row["_id"]["status"]),
        entries=row["n"],
        new=int(row["new"]),
        updated=int(row["updated"]),
        unchanged=int(row["unchanged"]),
        failed=int(row["failed"]),
    )
