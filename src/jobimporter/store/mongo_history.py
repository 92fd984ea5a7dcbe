"""Import-history queries of the MongoDB store: runs, their entries (``import_logs``), and closing both.

Closing is race-safe: ``finalize_entry`` recomputes an entry from its recorded batches (so repeating it
changes nothing) in one snapshot transaction, together with what the import's lifecycle does
(``mongo_lifecycle``) and the changes that appends, and ``finalize_run_if_done`` reads the entries and
closes the run in one snapshot transaction with the update conditional on the run still ``running``,
so of several concurrent callers one writes the run and the others, meeting its write, retry and find
it closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from jobimporter.errors import NotFound
from jobimporter.models import EntryStatus, ImportEntry, ImportRun, RunStatus, Trigger
from jobimporter.store import mongo_lifecycle
from jobimporter.store.base import EntryChanges, EntryLifecycle, EntryQuery, HistoryEntry, RunQuery
from jobimporter.store.mongo_changes import append_changes
from jobimporter.store.mongo_feeds import plain
from jobimporter.store.mongo_schema import BATCHES, IMPORT_LOGS, RUNS, Document

Session = AsyncClientSession | None
FINAL = [status.value for status in EntryStatus if status.is_final]
_CLEAN = (EntryStatus.COMPLETED.value, EntryStatus.NOT_MODIFIED.value, EntryStatus.SKIPPED.value)
_ENTRY_FIELDS = frozenset(ImportEntry.model_fields) - {"id"}
_RUN_FIELDS = ("trigger", "status", "started_at", "finished_at")
_POSITION = [("position", ASCENDING)]


# ---------------------------------------------------------------- documents


def entry_of(doc: Document) -> ImportEntry:
    return ImportEntry.model_validate(
        {"id": doc["_id"], **{k: v for k, v in doc.items() if k in _ENTRY_FIELDS}}
    )


def _run_of(doc: Document, run_entries: list[ImportEntry]) -> ImportRun:
    fields = {name: doc.get(name) for name in _RUN_FIELDS}
    return ImportRun.model_validate({"run_id": doc["_id"], **fields, "feeds": run_entries})


def _entry_doc(entry: ImportEntry, position: int, run: ImportRun) -> Document:
    fields = {name: plain(value) for name, value in entry.model_dump().items() if name != "id"}
    denormalized = {"trigger": run.trigger.value, "run_started_at": run.started_at}
    return {"_id": entry.id, **fields, "position": position, **denormalized}


# ---------------------------------------------------------------- filters and order


def between(field: str, since: datetime | None, until: datetime | None) -> Document:
    """``since <= field < until`` (either bound optional) as a query condition, or none."""
    bounds = {op: value for op, value in (("$gte", since), ("$lt", until)) if value is not None}
    return {field: bounds} if bounds else {}


def run_filter(query: RunQuery) -> Document:
    conditions = between("started_at", query.since, query.until)
    for field, value in (
        ("trigger", plain(query.trigger)),
        ("status", plain(query.status)),
        ("feed_ids", query.feed_id),
    ):
        if value is not None:
            conditions[field] = value
    if query.finished_since is not None:  # an open run's finished_at is null: it never matches
        conditions["finished_at"] = {"$gte": query.finished_since}
    return conditions


def run_order(newest_first: bool) -> list[tuple[str, int]]:
    direction = DESCENDING if newest_first else ASCENDING
    return [("started_at", direction), ("_id", direction)]


def entry_filter(query: EntryQuery) -> Document:
    conditions = between("run_started_at", query.since, query.until)
    for field, value in (
        ("run_id", query.run_id),
        ("feed_id", query.feed_id),
        ("status", plain(query.status)),
        ("trigger", plain(query.trigger)),
    ):
        if value is not None:
            conditions[field] = value
    return conditions


def entry_order(newest_first: bool) -> list[tuple[str, int]]:
    direction = DESCENDING if newest_first else ASCENDING
    return [("run_started_at", direction), ("run_id", direction), ("position", ASCENDING)]


# ---------------------------------------------------------------- runs


async def create_run(db: AsyncDatabase[Document], run: ImportRun, session: Session) -> None:
    doc = {"_id": run.run_id, **{name: plain(getattr(run, name)) for name in _RUN_FIELDS}}
    doc["feed_ids"] = sorted({entry.feed_id for entry in run.feeds})
    await db[RUNS].insert_one(doc, session=session)
    if run.feeds:
        entries = [_entry_doc(entry, i, run) for i, entry in enumerate(run.feeds)]
        await db[IMPORT_LOGS].insert_many(entries, session=session)


async def _entries_of(
    db: AsyncDatabase[Document], run_ids: Iterable[str], session: Session = None
) -> dict[str, list[ImportEntry]]:
    by_run: dict[str, list[ImportEntry]] = {}
    cursor = db[IMPORT_LOGS].find({"run_id": {"$in": list(run_ids)}}, session=session).sort(_POSITION)
    async for doc in cursor:
        by_run.setdefault(doc["run_id"], []).append(entry_of(doc))
    return by_run


async def get_run(db: AsyncDatabase[Document], run_id: str, session: Session = None) -> ImportRun:
    doc = await db[RUNS].find_one({"_id": run_id}, session=session)
    if doc is None:
        raise NotFound("run", run_id)
    return _run_of(doc, (await _entries_of(db, [run_id], session)).get(run_id, []))


async def list_runs(
    db: AsyncDatabase[Document], *, limit: int, offset: int, query: RunQuery
) -> list[ImportRun]:
    if limit <= 0:  # pymongo's limit(0) means no limit
        return []
    cursor = db[RUNS].find(run_filter(query)).sort(run_order(query.newest_first)).skip(offset).limit(limit)
    docs = await cursor.to_list()
    by_run = await _entries_of(db, (doc["_id"] for doc in docs)) if docs else {}
    return [_run_of(doc, by_run.get(doc["_id"], [])) for doc in docs]


async def count_runs(db: AsyncDatabase[Document], query: RunQuery) -> int:
    return await db[RUNS].count_documents(run_filter(query))


# ---------------------------------------------------------------- entries


async def list_entries(
    db: AsyncDatabase[Document], *, limit: int, offset: int, query: EntryQuery
) -> list[HistoryEntry]:
    if limit <= 0:
        return []
    cursor = (
        db[IMPORT_LOGS]
        .find(entry_filter(query))
        .sort(entry_order(query.newest_first))
        .skip(offset)
        .limit(limit)
    )
    return [HistoryEntry(entry=entry_of(doc), trigger=Trigger(doc["trigger"])) async for doc in cursor]


async def count_entries(db: AsyncDatabase[Document], query: EntryQuery) -> int:
    return await db[IMPORT_LOGS].count_documents(entry_filter(query))


async def get_entry(db: AsyncDatabase[Document], entry_id: str, session: Session = None) -> ImportEntry:
    doc = await db[IMPORT_LOGS].find_one({"_id": entry_id}, session=session)
    if doc is None:
        raise NotFound("entry", entry_id)
    return entry_of(doc)


async def update_entry(db: AsyncDatabase[Document], entry_id: str, changes: EntryChanges) -> ImportEntry:
    values = {name: plain(value) for name, value in changes.items()}
    if values:
        selector: Document = {"_id": entry_id}
        if "status" in values and not EntryStatus(values["status"]).is_final:
            selector["status"] = {"$nin": FINAL}  # a late or repeated message must not reopen it
        await db[IMPORT_LOGS].update_one(selector, {"$set": values})
    return await get_entry(db, entry_id)


async def reopen_entry(db: AsyncDatabase[Document], entry_id: str, session: Session) -> ImportEntry:
    cleared = {
        "status": EntryStatus.QUEUED.value,
        "error": None,
        "failure_kind": None,
        "started_at": None,
        "finished_at": None,
    }
    doc = await db[IMPORT_LOGS].find_one_and_update(
        {"_id": entry_id}, {"$set": {**cleared, "duration_s": None}}, session=session
    )
    if doc is None:
        raise NotFound("entry", entry_id)
    await db[RUNS].update_one(
        {"_id": doc["run_id"]},
        {"$set": {"status": RunStatus.RUNNING.value, "finished_at": None}},
        session=session,
    )
    return await get_entry(db, entry_id, session)


def _missing_failures(missing_batches: Sequence[tuple[int, int, str]], recorded: set[int]) -> list[Document]:
    """One failure per item of each lost batch, so ``failures`` still explains every failed item."""
    failures: list[Document] = []
    for batch_no, item_count, why in missing_batches:
        if batch_no in recorded:
            continue
        recorded.add(batch_no)  # a batch listed twice counts once
        failures += [
            {"external_id": f"batch {batch_no} item {i}", "reason": why} for i in range(1, item_count + 1)
        ]
    return failures


def _totals(docs: list[Document], missing_batches: Sequence[tuple[int, int, str]]) -> Document:
    lost = _missing_failures(missing_batches, {doc["batch_no"] for doc in docs})
    return {
        "new": sum(doc["new"] for doc in docs),
        "updated": sum(doc["updated"] for doc in docs),
        "unchanged": sum(doc["unchanged"] for doc in docs),
        "failed": sum(doc["failed"] for doc in docs) + len(lost),
        "failures": [failure for doc in docs for failure in doc["failures"]] + lost,
    }


async def finalize_entry(
    db: AsyncDatabase[Document],
    session: AsyncClientSession,
    entry_id: str,
    *,
    status: EntryStatus,
    finished_at: datetime,
    error: str | None,
    missing_batches: Sequence[tuple[int, int, str]],
    lifecycle: EntryLifecycle | None,
) -> ImportEntry:
    """See ``JobStore.finalize_entry``; run it in a transaction."""
    stored = await db[IMPORT_LOGS].find_one({"_id": entry_id}, session=session)
    if stored is None:
        raise NotFound("entry", entry_id)
    started = stored.get("started_at")
    duration = (finished_at - started).total_seconds() if started else None
    closing = {"status": status.value, "finished_at": finished_at, "error": error, "duration_s": duration}
    keys = None if lifecycle else {"job_keys": 0}  # the listed keys only when the lifecycle needs them
    cursor = db[BATCHES].find({"entry_id": entry_id}, keys, session=session).sort("batch_no", ASCENDING)
    batch_docs = await cursor.to_list()
    done = mongo_lifecycle.Closing()
    if lifecycle is not None:
        done = await mongo_lifecycle.close(db, session, stored, batch_docs, lifecycle, finished_at)
    values = {**closing, **_totals(batch_docs, missing_batches), **done.values}
    await db[IMPORT_LOGS].update_one({"_id": entry_id}, {"$set": values}, session=session)
    if lifecycle is not None:
        await mongo_lifecycle.pause_if_failing(db, session, stored["feed_id"], lifecycle, finished_at, error)
    await append_changes(db, done.changes, session)  # last: see mongo_changes
    return await get_entry(db, entry_id, session)


def _run_status(entries: list[Document]) -> RunStatus:
    if all(e["status"] in _CLEAN and not e.get("failed") for e in entries):
        return RunStatus.COMPLETED
    if all(e["status"] == EntryStatus.FAILED.value for e in entries):
        return RunStatus.FAILED
    return RunStatus.PARTIAL


async def finalize_run_if_done(
    db: AsyncDatabase[Document], run_id: str, finished_at: datetime, session: Session
) -> bool:
    """Close the run if it is done; whether this call closed it. Run it in a transaction."""
    run = await db[RUNS].find_one({"_id": run_id}, {"status": 1}, session=session)
    if run is None:
        raise NotFound("run", run_id)
    if run["status"] != RunStatus.RUNNING.value:
        return False
    fields = {"status": 1, "failed": 1}
    entries = await db[IMPORT_LOGS].find({"run_id": run_id}, fields, session=session).to_list()
    if any(e["status"] not in FINAL for e in entries):
        return False
    closing = {"status": _run_status(entries).value, "finished_at": finished_at}
    done = await db[RUNS].update_one(
        {"_id": run_id, "status": RunStatus.RUNNING.value}, {"$set": closing}, session=session
    )
    return done.modified_count == 1


async def busy_feeds(db: AsyncDatabase[Document], feed_ids: Sequence[str]) -> dict[str, str]:
    if not feed_ids:
        return {}
    open_entries = {"feed_id": {"$in": list(feed_ids)}, "status": {"$nin": FINAL}}
    pairs = [(doc["feed_id"], doc["run_id"]) async for doc in db[IMPORT_LOGS].find(open_entries)]
    if not pairs:
        return {}
    running = {"_id": {"$in": list({run_id for _, run_id in pairs})}, "status": RunStatus.RUNNING.value}
    running_ids = {doc["_id"] async for doc in db[RUNS].find(running, {"_id": 1})}
    return {feed_id: run_id for feed_id, run_id in pairs if run_id in running_ids}


_PRUNE_CHUNK = 500  # runs per round of deletes


async def prune_history(db: AsyncDatabase[Document], finished_before: datetime) -> int:
    """Batches, then entries, then runs, in chunks: a prune cut short leaves runs that the next one
    deletes (a run is deleted last, so it is never left without the entries it lists)."""
    old = {"status": {"$ne": RunStatus.RUNNING.value}, "finished_at": {"$lt": finished_before}}
    run_ids = [doc["_id"] async for doc in db[RUNS].find(old, {"_id": 1})]
    deleted = 0
    for start in range(0, len(run_ids), _PRUNE_CHUNK):
        chunk = run_ids[start : start + _PRUNE_CHUNK]
        entry_ids = [doc["_id"] async for doc in db[IMPORT_LOGS].find({"run_id": {"$in": chunk}}, {"_id": 1})]
        await db[BATCHES].delete_many({"entry_id": {"$in": entry_ids}})
        await db[IMPORT_LOGS].delete_many({"run_id": {"$in": chunk}})
        deleted += (await db[RUNS].delete_many({"_id": {"$in": chunk}})).deleted_count
    return deleted
