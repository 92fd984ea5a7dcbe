"""Job writes and reads of the MongoDB store: the exactly-once batch upsert and the job lookups.

``upsert_batch`` runs as one snapshot transaction (retried whole by pymongo's ``with_transaction`` on a
write conflict with a concurrent batch):

1. Read the stored state (hashes, last_seen, first_seen, feed links, lifecycle) of the batch's keys
   and its raw-hash matches (``known``).
2. Decide each key from that snapshot: not stored → insert (new); another ``content_hash`` →
   replace (updated; first_seen, feed links and lifecycle kept); same hash → unchanged, written only
   to store a new raw hash, refresh a stale last_seen or make the feed's link live (added to
   ``feed_ids`` and ``live_feed_ids``). A ``known`` key no longer stored fails. The stored content of
   the updated ones is read (a second query, only when there are some) to name the fields that
   changed.
3. One ordered ``bulk_write`` of those writes, then insert the batch's ``batches`` document holding
   the result and the keys it listed, then append the ``new`` and ``updated`` changes
   (``mongo_changes``, last: it orders the commits); commit.

No find-then-insert race: a transaction that writes a job another one wrote after its snapshot is
refused with a write conflict and runs again from step 1 on a fresh snapshot, so each key is new in
exactly one batch (and an update's fields are named against the content it overwrote). A batch key
already recorded makes step 3's insert a duplicate: the transaction is dropped and the recorded
result returned, so a re-delivered batch writes, counts and appends nothing.

A record refused (by the BSON encoder, or by the server: a write error naming it) fails alone with the
reason; the transaction runs again without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from pymongo import ASCENDING, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from jobimporter.errors import NotFound, StoreError
from jobimporter.models import (
    BatchKey,
    ChangeKind,
    ExpiryReason,
    ItemFailure,
    JobRecord,
    JobStatus,
    UpsertResult,
)
from jobimporter.store.base import CHANGE_FIELDS, JobQuery, StoredJob, changed_fields, describe
from jobimporter.store.mongo_changes import NewChange, append_changes
from jobimporter.store.mongo_errors import CLIENT_VALUE_ERRORS, DUPLICATE_KEY, is_transient_code, reason
from jobimporter.store.mongo_queries import job_filter, job_page
from jobimporter.store.mongo_schema import BATCHES, JOBS, Document

logger = logging.getLogger(__name__)

DUPLICATE_REASON = "duplicate of another item in this batch"
VANISHED_REASON = "job was deleted from the store during this import; the next run imports it again"
# Every field of the record is stored as it is (``key`` as ``_id``): a field added to JobRecord
# flows through without a schema change.
RECORD_FIELDS: tuple[str, ...] = tuple(name for name in JobRecord.model_fields if name != "key")
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # MongoDB's limit on one BSON document
# What the store tracks about a job's lifecycle; an overwritten job keeps it.
LIFECYCLE_FIELDS = ("status", "expired_at", "expiry_reason", "unlisted_at")
NEW_LIFECYCLE: Document = {"status": JobStatus.ACTIVE.value, "expired_at": None, "expiry_reason": None,
                           "unlisted_at": None}  # fmt: skip
_LINKS = ("feed_ids", "live_feed_ids")
_STATE = dict.fromkeys(("content_hash", "raw_hash", "first_seen", "last_seen", *_LINKS, *LIFECYCLE_FIELDS), 1)
_CONTENT = dict.fromkeys(CHANGE_FIELDS, 1)

Transaction = Callable[[Callable[[AsyncClientSession], Awaitable[UpsertResult]]], Awaitable[UpsertResult]]
Write = InsertOne[Document] | ReplaceOne[Document] | UpdateOne


@dataclass(frozen=True, slots=True)
class _Batch:
    key: BatchKey
    feed_id: str
    now: datetime
    stale_before: datetime  # last_seen older than this is refreshed even when unchanged
    rows: list[Document]  # the records' fields with ``_id``, one per distinct key, sorted by key
    failures: list[ItemFailure]  # failed before the store, in-batch duplicates, refused by the store
    known: dict[str, str]  # key → external_id of items the caller found unchanged by raw hash
    listed: list[str]  # every key the batch listed (records, known, failures with a key), sorted

    def without(self, refused: dict[str, ItemFailure]) -> _Batch:
        rows = [row for row in self.rows if row["_id"] not in refused]
        return replace(self, rows=rows, failures=[*self.failures, *refused.values()])


def _plan(
    key: BatchKey,
    feed_id: str,
    records: Sequence[JobRecord],
    failures: Sequence[ItemFailure],
    now: datetime,
    seen_refresh_s: float,
    known: Sequence[tuple[str, str]],
) -> _Batch:
    latest: dict[str, JobRecord] = {}
    duplicates: list[ItemFailure] = []
    for record in records:
        earlier = latest.pop(record.key, None)
        if earlier is not None:
            duplicates.append(ItemFailure(earlier.external_id, DUPLICATE_REASON))
        latest[record.key] = record
    # Plain attribute reads: model_dump() copies every list and dict.
    rows = [{"_id": k, **{name: getattr(latest[k], name) for name in RECORD_FIELDS}} for k in sorted(latest)]
    unchanged = {k: external_id for k, external_id in known if k not in latest}
    stale_before = now - timedelta(seconds=seen_refresh_s)
    listed = sorted({*latest, *unchanged, *(f.key for f in failures if f.key)})
    return _Batch(key, feed_id, now, stale_before, rows, [*failures, *duplicates], unchanged, listed)


class _AlreadyRecorded(Exception):
    """The batch key was recorded by an earlier delivery; raised to drop the transaction."""


class _Refused(Exception):
    """Records the encoder or the server refused (by key); raised to drop the transaction."""

    def __init__(self, failures: dict[str, ItemFailure]) -> None:
        super().__init__(f"{len(failures)} record(s) refused")
        self.failures = failures


@dataclass(slots=True)
class _Writes:
    """What one snapshot decided: the writes (with the row each one stores, if any) and the counts."""

    ops: list[Write] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    external_ids: list[str] = field(default_factory=list)
    docs: list[Document | None] = field(default_factory=list)  # what an insert or replace stores
    new_keys: list[str] = field(default_factory=list)
    updated_keys: list[str] = field(default_factory=list)
    unchanged: int = 0
    vanished: list[ItemFailure] = field(default_factory=list)

    def add(self, key: str, external_id: str, op: Write, doc: Document | None = None) -> None:
        self.ops.append(op)
        self.keys.append(key)
        self.external_ids.append(external_id)
        self.docs.append(doc)

    def result(self, batch: _Batch) -> UpsertResult:
        failures = (*batch.failures, *self.vanished)
        return UpsertResult(
            len(self.new_keys), len(self.updated_keys), self.unchanged, len(failures), failures
        )


def _refresh(state: Document, batch: _Batch, changes: Document) -> UpdateOne | None:
    """The write an unchanged job needs, if any: ``changes`` (a new raw hash), a stale last_seen, a
    new feed link or a dead one live again."""
    if state["last_seen"] < batch.stale_before:
        changes["last_seen"] = batch.now
    update: Document = {"$set": changes} if changes else {}
    if batch.feed_id not in state.get("live_feed_ids", ()):
        update["$addToSet"] = {name: batch.feed_id for name in _LINKS}
    return UpdateOne({"_id": state["_id"]}, update) if update else None


def _decide(batch: _Batch, stored: dict[str, Document]) -> _Writes:
    writes = _Writes()
    for row in batch.rows:
        _decide_row(writes, batch, row, stored.get(row["_id"]))
    for key, external_id in batch.known.items():
        _decide_known(writes, batch, key, external_id, stored.get(key))
    return writes


def _decide_row(writes: _Writes, batch: _Batch, row: Document, state: Document | None) -> None:
    key, external_id, now = row["_id"], row["external_id"], batch.now
    if state is None:
        links = {name: [batch.feed_id] for name in _LINKS}
        doc = {**row, "first_seen": now, "last_seen": now, "last_changed": now, **links, **NEW_LIFECYCLE}
        writes.add(key, external_id, InsertOne(doc), doc)
        writes.new_keys.append(key)
    elif state["content_hash"] != row["content_hash"]:
        doc = {**row, "first_seen": state["first_seen"], "last_seen": now, "last_changed": now}
        doc |= {name: sorted({*state.get(name, ()), batch.feed_id}) for name in _LINKS}
        doc |= {name: state.get(name, NEW_LIFECYCLE[name]) for name in LIFECYCLE_FIELDS}
        writes.add(key, external_id, ReplaceOne({"_id": key}, doc), doc)
        writes.updated_keys.append(key)
    else:
        writes.unchanged += 1
        raw = {"raw_hash": row["raw_hash"]} if row["raw_hash"] != state.get("raw_hash") else {}
        if (refresh := _refresh(state, batch, raw)) is not None:
            writes.add(key, external_id, refresh)


def _decide_known(writes: _Writes, batch: _Batch, key: str, external_id: str, state: Document | None) -> None:
    """A raw-hash match: unchanged if still stored (refreshed or linked if need be), else it fails."""
    if state is None:
        writes.vanished.append(ItemFailure(external_id, VANISHED_REASON))
        return
    writes.unchanged += 1
    if (refresh := _refresh(state, batch, {})) is not None:
        writes.add(key, external_id, refresh)


async def _stored(
    db: AsyncDatabase[Document], batch: _Batch, session: AsyncClientSession
) -> dict[str, Document]:
    keys = [row["_id"] for row in batch.rows] + sorted(batch.known)
    if not keys:
        return {}
    return {doc["_id"]: doc async for doc in db[JOBS].find({"_id": {"$in": keys}}, _STATE, session=session)}


async def _write_jobs(db: AsyncDatabase[Document], writes: _Writes, session: AsyncClientSession) -> None:
    try:
        await db[JOBS].bulk_write(writes.ops, ordered=True, session=session)
    except CLIENT_VALUE_ERRORS as exc:
        refused = _unencodable(writes)
        if not refused:
            raise
        raise _Refused(refused) from exc
    except BulkWriteError as exc:
        error = exc.details["writeErrors"][0]
        if not _is_record_error(error):
            raise
        index = int(error["index"])
        failure = ItemFailure(writes.external_ids[index], f"could not be stored: {reason(exc)}")
        raise _Refused({writes.keys[index]: failure}) from exc


def _is_record_error(error: Document) -> bool:
    """A write error caused by the record's own values (a duplicate on ``_id`` would be a race,
    not the record's fault: the snapshot said it was absent)."""
    if error.get("code") == DUPLICATE_KEY:
        return error.get("keyPattern") != {"_id": 1}
    return not error.get("errorLabels") and not is_transient_code(error.get("code"))


def _unencodable(writes: _Writes) -> dict[str, ItemFailure]:
    """The documents BSON cannot hold, or cannot hold in one document, by key, with the reason."""
    refused: dict[str, ItemFailure] = {}
    for key, external_id, doc in zip(writes.keys, writes.external_ids, writes.docs, strict=True):
        if doc is None:
            continue
        try:
            size = len(bson.encode(doc))
        except CLIENT_VALUE_ERRORS as exc:
            refused[key] = ItemFailure(external_id, f"could not be stored: {exc}")
            continue
        if size > MAX_DOCUMENT_BYTES:
            why = f"document too large ({size} bytes; MongoDB holds at most {MAX_DOCUMENT_BYTES})"
            refused[key] = ItemFailure(external_id, f"could not be stored: {why}")
    return refused


async def _contents(
    db: AsyncDatabase[Document], keys: list[str], session: AsyncClientSession
) -> dict[str, Document]:
    """The stored content of the jobs an update overwrites, read in the same snapshot."""
    if not keys:
        return {}
    cursor = db[JOBS].find({"_id": {"$in": keys}}, _CONTENT, session=session)
    return {doc["_id"]: doc async for doc in cursor}


def as_stored(value: Any) -> Any:
    """A value as MongoDB gives it back: datetimes in UTC to the millisecond (BSON dates), so an
    update's fields are compared as stored."""
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.replace(microsecond=aware.microsecond // 1000 * 1000)
    if isinstance(value, dict):
        return {k: as_stored(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_stored(v) for v in value]
    return value


def _changes(batch: _Batch, writes: _Writes, previous: dict[str, Document]) -> list[NewChange]:
    """The batch's ``new`` and ``updated`` changes, in key order; an update names its changed fields."""
    rows = {row["_id"]: row for row in batch.rows}
    entry_id, now, feed_id = batch.key.entry_id, batch.now, batch.feed_id
    made = [NewChange(key, ChangeKind.NEW, now, [], feed_id, entry_id) for key in writes.new_keys]
    for key in writes.updated_keys:
        fields = changed_fields(previous.get(key, {}), as_stored(rows[key]))
        made.append(NewChange(key, ChangeKind.UPDATED, now, fields, feed_id, entry_id))
    return sorted(made, key=lambda change: change.job_key)


def _batch_doc(batch: _Batch, result: UpsertResult) -> Document:
    key = batch.key
    return {
        "_id": f"{key.entry_id}/{key.batch_no}",
        "entry_id": key.entry_id,
        "batch_no": key.batch_no,
        "new": result.new,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "failed": result.failed,
        "failures": [f.to_dict() for f in result.failures],
        "created_at": batch.now,
        "job_keys": batch.listed,
    }


async def _write(db: AsyncDatabase[Document], batch: _Batch, session: AsyncClientSession) -> UpsertResult:
    writes = _decide(batch, await _stored(db, batch, session))
    previous = await _contents(db, writes.updated_keys, session)
    if writes.ops:
        await _write_jobs(db, writes, session)
    result = writes.result(batch)
    try:
        await db[BATCHES].insert_one(_batch_doc(batch, result), session=session)
    except DuplicateKeyError:
        raise _AlreadyRecorded from None
    await append_changes(db, _changes(batch, writes, previous), session)  # last: see mongo_changes
    return result


async def upsert_batch(
    db: AsyncDatabase[Document],
    in_transaction: Transaction,
    key: BatchKey,
    feed_id: str,
    records: Sequence[JobRecord],
    failures: Sequence[ItemFailure],
    *,
    now: datetime,
    seen_refresh_s: float,
    known: Sequence[tuple[str, str]] = (),
) -> UpsertResult:
    """See ``JobStore.upsert_batch``; ``in_transaction`` runs its argument in a transaction."""
    if now.tzinfo is None:
        raise StoreError("store: upsert_batch needs a timezone-aware 'now'")
    started = time.perf_counter()
    batch = _plan(key, feed_id, records, failures, now, seen_refresh_s, known)
    while True:
        try:
            result = await in_transaction(lambda session: _write(db, batch, session))  # noqa: B023
        except _AlreadyRecorded:
            logger.info("store: batch %s was already recorded; returning its result", key)
            return await _recorded(db, key)
        except _Refused as refused:
            logger.warning("store: batch %s: %s; writing the rest", key, describe_refused(refused))
            batch = batch.without(refused.failures)  # at least one row fewer: the loop ends
            continue
        logger.debug("store: batch %s: %s in %.3fs", key, describe(result), time.perf_counter() - started)
        return result


def describe_refused(refused: _Refused) -> str:
    return "; ".join(f"{f.external_id}: {f.reason}" for f in refused.failures.values())


def result_of(doc: Document) -> UpsertResult:
    return UpsertResult(
        new=doc["new"],
        updated=doc["updated"],
        unchanged=doc["unchanged"],
        failed=doc["failed"],
        failures=tuple(ItemFailure(f["external_id"], f["reason"]) for f in doc["failures"]),
    )


async def _recorded(db: AsyncDatabase[Document], key: BatchKey) -> UpsertResult:
    doc = await db[BATCHES].find_one({"_id": f"{key.entry_id}/{key.batch_no}"})
    if doc is None:  # only if someone deleted it between the duplicate insert and this read
        raise StoreError(f"store: batch {key} was recorded but its document is gone", transient=True)
    return result_of(doc)


async def batch_results(db: AsyncDatabase[Document], entry_id: str) -> dict[int, UpsertResult]:
    cursor = db[BATCHES].find({"entry_id": entry_id}).sort("batch_no", ASCENDING)
    return {doc["batch_no"]: result_of(doc) async for doc in cursor}


# ---------------------------------------------------------------- reads


def stored_job(doc: Document) -> StoredJob:
    fields = {name: doc[name] for name in RECORD_FIELDS if name in doc}
    reason = doc.get("expiry_reason")
    return StoredJob(
        record=JobRecord.model_validate({"key": doc["_id"], **fields}),
        first_seen=doc["first_seen"],
        last_seen=doc["last_seen"],
        last_changed=doc["last_changed"],
        feed_ids=sorted(doc.get("feed_ids", [])),
        status=JobStatus(doc.get("status", JobStatus.ACTIVE.value)),
        expired_at=doc.get("expired_at"),
        expiry_reason=ExpiryReason(reason) if reason else None,
        unlisted_at=doc.get("unlisted_at"),
    )


async def get_job(db: AsyncDatabase[Document], key: str) -> StoredJob:
    doc = await db[JOBS].find_one({"_id": key})
    if doc is None:
        raise NotFound("job", key)
    return stored_job(doc)


async def list_jobs(
    db: AsyncDatabase[Document], *, limit: int, offset: int, feed_id: str | None, query: JobQuery | None
) -> list[StoredJob]:
    query = query or JobQuery()
    return [stored_job(doc) for doc in await job_page(db, job_filter(query, feed_id), query, limit, offset)]


async def count_jobs(db: AsyncDatabase[Document], *, feed_id: str | None, query: JobQuery | None) -> int:
    return await db[JOBS].count_documents(job_filter(query or JobQuery(), feed_id))


async def field_by_key(db: AsyncDatabase[Document], name: str, keys: Iterable[str]) -> dict[str, str]:
    """Field ``name`` by key for the stored jobs among ``keys`` where it is set."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    cursor = db[JOBS].find({"_id": {"$in": wanted}, name: {"$ne": None}}, {name: 1})
    return {doc["_id"]: doc[name] async for doc in cursor}
