"""Job lifecycle in the MongoDB store: what closing an import entry does to its feed's links, the jobs'
status and the feed's health; the expiry sweep; the retention purge.

A job's feed links are part of its document (``feed_ids``, and ``live_feed_ids`` for those that still
list it), so every change to a link writes the job, and MongoDB's write conflicts do what the SQL
store's row locks do: two transactions that change the same job take turns (the second is aborted
and run again by ``with_transaction`` on a snapshot that has the first one's writes). So two feeds
dropping the same job at once: the second to write it sees the first one's link gone, finds the job
without a live link and expires it, once; a batch that makes a dead link live again and a feed
dropping the job also take turns, and whichever comes second sees what the first did; a sweep and
an import closing, or two sweeps, change a job once. Each status change is conditional on the
status read in the same snapshot, so it is made, and its change appended, once.

The jobs an entry listed are the keys its batches recorded (``batches.job_keys``); the jobs its feed
still links come from ``live_feed_ids`` (indexed). The difference is taken here, in the store's
process: both sets cross the wire once per closing of a complete entry (SQL keeps them on the
server), in chunks of ``_CHUNK`` keys per query.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from jobimporter.models import ChangeKind, EntryStatus, ExpiryReason, FailureKind, JobStatus
from jobimporter.store.base import EntryLifecycle
from jobimporter.store.mongo_changes import NewChange, append_changes
from jobimporter.store.mongo_schema import BATCHES, FEEDS, IMPORT_LOGS, JOBS, Document

ACTIVE, EXPIRED = JobStatus.ACTIVE.value, JobStatus.EXPIRED.value
_SUCCESSES = [EntryStatus.COMPLETED.value, EntryStatus.NOT_MODIFIED.value]
_DORMANT = {"$or": [{"unlisted_at": {"$ne": None}}, {"status": EXPIRED}]}
_CHUNK = 10_000  # keys per $in: ~400 KB of query, well under the 16 MB a command may be


@dataclass(slots=True)
class Closing:
    """What closing one entry decided: values for its document, and the changes to append last."""

    values: dict[str, Any] = field(default_factory=dict)
    changes: list[NewChange] = field(default_factory=list)


def _chunks(keys: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield list(keys[start : start + _CHUNK])


# ---------------------------------------------------------------- closing an entry


async def close(
    db: AsyncDatabase[Document],
    session: AsyncClientSession,
    entry: Document,
    batches: list[Document],
    lifecycle: EntryLifecycle,
    finished_at: datetime,
) -> Closing:
    """Revive what the entry (its stored document) listed; unlink what its feed no longer lists when
    the entry is complete. ``batches``: the entry's recorded batch documents."""
    closing = Closing(values={"failure_kind": lifecycle.failure.value if lifecycle.failure else None})
    listed = sorted({key for batch in batches for key in batch.get("job_keys") or ()})
    closing.changes += await _revive_listed(db, session, listed, entry, finished_at)
    if lifecycle.complete and _unlink_pending(entry, batches):
        expired, changes = await _unlink_unlisted(
            db, session, entry, set(listed), finished_at, lifecycle.expire_after_s
        )
        # The keys have done their job: closing the entry again must not read them as listed.
        await db[BATCHES].update_many(
            {"entry_id": entry["_id"]}, {"$unset": {"job_keys": ""}}, session=session
        )
        closing.values |= {"expired": expired, "links_checked_at": finished_at}
        closing.changes += changes
    return closing


def _unlink_pending(entry: Document, batches: list[Document]) -> bool:
    """Whether the entry is still to unlink (once only) and recorded every batch it queued."""
    recorded = sum(1 for batch in batches if batch["batch_no"] >= 1)
    return entry.get("links_checked_at") is None and recorded == entry.get("batches", 0)


async def _revive_listed(
    db: AsyncDatabase[Document],
    session: AsyncClientSession,
    listed: list[str],
    entry: Document,
    now: datetime,
) -> list[NewChange]:
    """Jobs the entry listed stop waiting out their grace period, and expired ones whose end date has
    not passed are active again."""
    found: list[Document] = []
    projection = {"status": 1, "expires_at": 1, "unlisted_at": 1}
    for chunk in _chunks(listed):
        query = {"_id": {"$in": chunk}, **_DORMANT}
        found += await db[JOBS].find(query, projection, session=session).to_list()  # usually none
    waiting = sorted(doc["_id"] for doc in found if doc.get("unlisted_at") is not None)
    revived = sorted(
        doc["_id"]
        for doc in found
        if doc.get("status") == EXPIRED and (doc.get("expires_at") is None or doc["expires_at"] > now)
    )
    if waiting:
        await db[JOBS].update_many(
            {"_id": {"$in": waiting}}, {"$set": {"unlisted_at": None}}, session=session
        )
    if revived:
        back = {"status": ACTIVE, "expired_at": None, "expiry_reason": None}
        await db[JOBS].update_many({"_id": {"$in": revived}}, {"$set": back}, session=session)
    return [_change(key, ChangeKind.REACTIVATED, now, entry) for key in revived]


async def _unlink_unlisted(
    db: AsyncDatabase[Document],
    session: AsyncClientSession,
    entry: Document,
    listed: set[str],
    now: datetime,
    grace_s: float,
) -> tuple[int, list[NewChange]]:
    """Mark dead the feed's live links to jobs the entry did not list; returns how many, and the
    ``expired`` changes of the jobs that expired at once (grace 0)."""
    feed_id = entry["feed_id"]
    linked = db[JOBS].find({"live_feed_ids": feed_id}, {"_id": 1}, session=session)
    gone = sorted({doc["_id"] async for doc in linked} - listed)
    left = 0
    orphans: list[Document] = []
    for chunk in _chunks(gone):
        pulled = await db[JOBS].update_many(
            {"_id": {"$in": chunk}, "live_feed_ids": feed_id},
            {"$pull": {"live_feed_ids": feed_id}},
            session=session,
        )
        left += pulled.modified_count
        alone = {"_id": {"$in": chunk}, "live_feed_ids": {"$size": 0}}
        orphans += await db[JOBS].find(alone, {"status": 1, "unlisted_at": 1}, session=session).to_list()
    return left, await _orphaned(db, session, orphans, entry, now, grace_s)


async def _orphaned(
    db: AsyncDatabase[Document],
    session: AsyncClientSession,
    orphans: list[Document],
    entry: Document,
    now: datetime,
    grace_s: float,
) -> list[NewChange]:
    """Jobs left without a live link start their grace period, or expire at once when it is 0."""
    starting = sorted(doc["_id"] for doc in orphans if doc.get("unlisted_at") is None)
    if starting:
        await db[JOBS].update_many(
            {"_id": {"$in": starting}}, {"$set": {"unlisted_at": now}}, session=session
        )
    if grace_s > 0:
        return []
    expired = sorted(doc["_id"] for doc in orphans if doc.get("status") == ACTIVE)
    if expired:
        gone = {"status": EXPIRED, "expired_at": now, "expiry_reason": ExpiryReason.LEFT_FEEDS.value}
        await db[JOBS].update_many({"_id": {"$in": expired}}, {"$set": gone}, session=session)
    return [_change(key, ChangeKind.EXPIRED, now, entry, ExpiryReason.LEFT_FEEDS) for key in expired]


def _change(
    key: str, kind: ChangeKind, at: datetime, entry: Document, reason: ExpiryReason | None = None
) -> NewChange:
    return NewChange(key, kind, at, [], entry["feed_id"], entry["_id"], reason.value if reason else None)


# ---------------------------------------------------------------- feed health


async def permanent_failures(
    db: AsyncDatabase[Document], feed_ids: Sequence[str], session: AsyncClientSession | None = None
) -> dict[str, int]:
    """Per feed: its entries that failed permanently since its last success and since it was resumed."""
    wanted = list(feed_ids)
    if not wanted:
        return {}
    successes: list[Document] = [
        {"$match": {"feed_id": {"$in": wanted}, "status": {"$in": _SUCCESSES}}},
        {"$group": {"_id": "$feed_id", "at": {"$max": "$finished_at"}}},
    ]
    since = {row["_id"]: row["at"] for row in await _aggregate(db, successes, session)}
    async for feed in db[FEEDS].find({"_id": {"$in": wanted}}, {"resumed_at": 1}, session=session):
        resumed = feed.get("resumed_at")
        if resumed is not None and (since.get(feed["_id"]) is None or resumed > since[feed["_id"]]):
            since[feed["_id"]] = resumed
    clauses = [
        {"feed_id": feed_id, **({"finished_at": {"$gt": since[feed_id]}} if since.get(feed_id) else {})}
        for feed_id in wanted
    ]
    counted: list[Document] = [
        {"$match": {"failure_kind": FailureKind.PERMANENT.value, "$or": clauses}},
        {"$group": {"_id": "$feed_id", "n": {"$sum": 1}}},
    ]
    return {row["_id"]: int(row["n"]) for row in await _aggregate(db, counted, session)}


async def _aggregate(
    db: AsyncDatabase[Document], pipeline: list[Document], session: AsyncClientSession | None
) -> list[Document]:
    return await (await db[IMPORT_LOGS].aggregate(pipeline, session=session)).to_list()


async def pause_if_failing(
    db: AsyncDatabase[Document],
    session: AsyncClientSession,
    feed_id: str,
    lifecycle: EntryLifecycle,
    now: datetime,
    error: str | None,
) -> None:
    """Pause the feed once its permanent failures reach ``pause_after`` (the entry is closed already)."""
    if lifecycle.failure is not FailureKind.PERMANENT or lifecycle.pause_after <= 0:
        return
    failures = (await permanent_failures(db, [feed_id], session)).get(feed_id, 0)
    if failures < lifecycle.pause_after:
        return
    imports = "import" if failures == 1 else f"{failures} imports in a row"
    reason = f"paused after {imports} failed for good; the last: {error or 'no reason'}"
    await db[FEEDS].update_one(
        {"_id": feed_id, "enabled": True, "paused_at": None},
        {"$set": {"enabled": False, "paused_at": now, "paused_reason": reason[:2000]}},
        session=session,
    )


# ---------------------------------------------------------------- the sweep and the purge


async def expire_due_jobs(
    db: AsyncDatabase[Document], session: AsyncClientSession, now: datetime, grace_s: float, limit: int
) -> int:
    """See ``JobStore.expire_due_jobs``; run it in a transaction. The due jobs are read and written in
    one snapshot: a concurrent sweep or import that writes one of them first makes this transaction
    run again, and then the job is no longer due (or has a live link again)."""
    if limit <= 0:
        return 0
    due = _due(now, grace_s)
    projection = {"expires_at": 1, "unlisted_at": 1, "live_feed_ids": 1}
    cursor = db[JOBS].find(due, projection, session=session).sort("_id", ASCENDING).limit(limit)
    changes: list[NewChange] = []
    ops = [_expiry(doc, now, grace_s, changes) async for doc in cursor]
    if ops:
        await db[JOBS].bulk_write(ops, ordered=True, session=session)
    await append_changes(db, changes, session)  # in key order, as found
    return len(changes)


def _due(now: datetime, grace_s: float) -> Document:
    """The active jobs whose end date has come, or whose grace period has run out."""
    cutoff = now - timedelta(seconds=grace_s)
    return {
        "$or": [
            {"status": ACTIVE, "expires_at": {"$lte": now}},
            {"status": ACTIVE, "unlisted_at": {"$lte": cutoff}},
        ]
    }


async def any_due(db: AsyncDatabase[Document], now: datetime, grace_s: float) -> bool:
    """Whether some job is due: the sweep's usual answer (no) in one read, without a transaction."""
    return await db[JOBS].find_one(_due(now, grace_s), {"_id": 1}) is not None


def _expiry(doc: Document, now: datetime, grace_s: float, changes: list[NewChange]) -> UpdateOne:
    """The write a due job needs: expired at its end date, or at the end of its grace period, or (a
    live link again) only no longer waiting; an expiry's change goes to ``changes``."""
    selector = {"_id": doc["_id"], "status": ACTIVE}
    ends = doc.get("expires_at")
    if ends is not None and ends <= now:
        at, reason = ends, ExpiryReason.END_DATE
    elif not doc.get("live_feed_ids"):
        at, reason = doc["unlisted_at"] + timedelta(seconds=grace_s), ExpiryReason.LEFT_FEEDS
    else:
        return UpdateOne(selector, {"$set": {"unlisted_at": None}})
    changes.append(NewChange(doc["_id"], ChangeKind.EXPIRED, at=at, reason=reason.value))
    return UpdateOne(selector, {"$set": {"status": EXPIRED, "expired_at": at, "expiry_reason": reason.value}})


async def purge_expired(db: AsyncDatabase[Document], expired_before: datetime) -> int:
    """Expired jobs go with their embedded links; their changes stay in ``changes``."""
    done = await db[JOBS].delete_many({"status": EXPIRED, "expired_at": {"$lt": expired_before}})
    return done.deleted_count
