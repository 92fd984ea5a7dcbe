"""The change log of the SQL store: appended inside the transaction that makes the change, read by
cursor (``changes.seq``).

Ordering: PostgreSQL hands out ``seq`` when a row is inserted, not when it commits, so two
transactions could commit out of order and a reader would see seq 8, move its cursor past it, and
never see seq 7. So every append first takes a transaction-scoped advisory lock, held until commit:
appends commit one at a time, in ``seq`` order. Appending is the last write of the transactions that
do it (only their own bookkeeping rows follow), so the lock is held for little more than the commit,
and only by transactions that have a change to append (an unchanged re-import appends nothing).
SQLite's writers are serialized anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from jobimporter.models import ChangeKind, JobChange
from jobimporter.store.schema import changes
from jobimporter.store.sql_engine import Capabilities

# Key of the advisory lock that orders appends ("jobchang" as a big-endian int64).
_APPEND_LOCK_KEY = int.from_bytes(b"jobchang", "big")


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

    def row(self) -> dict[str, Any]:
        return {
            "job_key": self.job_key,
            "kind": self.kind.value,
            "at": self.at,
            "fields": self.fields,
            "feed_id": self.feed_id,
            "entry_id": self.entry_id,
            "reason": self.reason,
        }


async def append_changes(conn: AsyncConnection, caps: Capabilities, new: Sequence[NewChange]) -> None:
    """Append ``new`` in order; call it as the last write of the transaction (see the module docstring)."""
    if not new:
        return
    if caps.advisory_locks:
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK_KEY})
    await conn.execute(sa.insert(changes), [change.row() for change in new])


def _change(row: Row[Any]) -> JobChange:
    return JobChange(
        cursor=row.seq,
        at=row.at,
        job_key=row.job_key,
        kind=ChangeKind(row.kind),
        fields=list(row.fields or []),
        feed_id=row.feed_id,
        entry_id=row.entry_id,
        reason=row.reason,
    )


async def list_changes(
    conn: AsyncConnection, *, after: int, limit: int, job_key: str | None
) -> list[JobChange]:
    query = sa.select(changes).where(changes.c.seq > after).order_by(changes.c.seq).limit(limit)
    if job_key is not None:
        query = query.where(changes.c.job_key == job_key)
    return [_change(row) for row in await conn.execute(query)]


async def last_change_cursor(conn: AsyncConnection) -> int:
    value = (await conn.execute(sa.select(sa.func.max(changes.c.seq)))).scalar_one_or_none()
    return int(value or 0)
