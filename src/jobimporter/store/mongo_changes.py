"""The change log of the MongoDB store: appended inside the transaction that makes the change, read by
cursor (``changes._id``).

Ordering: a cursor is drawn by incrementing the ``counters`` document ``changes`` inside the
appending transaction. Every appender writes that one document, so two transactions that append
at the same time meet a write conflict on it: the second is aborted and runs again (pymongo's
``with_transaction``) on a snapshot taken after the first committed. So a transaction draws its
cursors only once every transaction that drew smaller ones has committed: cursor order is commit
order, and a reader that saw cursor 8 will never find a 7 appear behind it (PostgreSQL's advisory
lock, done by the storage engine's first-writer-wins rule). Appending is the last write of the
transactions that do it, so the counter is held for little more than the commit, and only by
transactions that have a change to append (an unchanged re-import appends nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from jobimporter.models import ChangeKind, JobChange
from jobimporter.store.mongo_schema import CHANGE_COUNTER, CHANGES, COUNTERS, Document


@dataclass(frozen=True, slots=True)
class NewChange:
    """A change to append; its cursor is given when it is written."""

    job_key: str
    kind: ChangeKind
    at: datetime
    fields: list[str] = field(default_factory=list)
    feed_id: str | None = None
    entry_id: str | None = None
    reason: str | None = None

    def document(self, cursor: int) -> Document:
        return {
            "_id": cursor,
            "job_key": self.job_key,
            "kind": self.kind.value,
            "at": self.at,
            "fields": self.fields,
            "feed_id": self.feed_id,
            "entry_id": self.entry_id,
            "reason": self.reason,
        }


async def append_changes(
    db: AsyncDatabase[Document], new: Sequence[NewChange], session: AsyncClientSession
) -> None:
    """Append ``new`` in order, in ``session``'s transaction; call it as its last write (see the
    module docstring)."""
    if not new:
        return
    counter = await db[COUNTERS].find_one_and_update(
        {"_id": CHANGE_COUNTER},
        {"$inc": {"seq": len(new)}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    assert counter is not None  # an upsert returning the document after it always has one
    first = int(counter["seq"]) - len(new) + 1
    await db[CHANGES].insert_many(
        [change.document(first + i) for i, change in enumerate(new)], ordered=True, session=session
    )


def _change(doc: Document) -> JobChange:
    return JobChange(
        cursor=doc["_id"],
        at=doc["at"],
        job_key=doc["job_key"],
        kind=ChangeKind(doc["kind"]),
        fields=list(doc.get("fields") or []),
        feed_id=doc.get("feed_id"),
        entry_id=doc.get("entry_id"),
        reason=doc.get("reason"),
    )


async def list_changes(
    db: AsyncDatabase[Document], *, after: int, limit: int, job_key: str | None
) -> list[JobChange]:
    if limit <= 0:  # pymongo's limit(0) means no limit
        return []
    query: Document = {"_id": {"$gt": after}}
    if job_key is not None:
        query["job_key"] = job_key
    cursor = db[CHANGES].find(query).sort("_id", ASCENDING).limit(limit)
    return [_change(doc) async for doc in cursor]


async def last_change_cursor(db: AsyncDatabase[Document], session: AsyncClientSession | None = None) -> int:
    newest = await db[CHANGES].find_one({}, {"_id": 1}, sort=[("_id", DESCENDING)], session=session)
    return int(newest["_id"]) if newest else 0
