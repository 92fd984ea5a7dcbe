"""Job lifecycle in the SQL store: what closing an import entry does to its feed's links, the jobs'
status and the feed's health; the expiry sweep; the retention purge.

The jobs an entry listed are the keys its batches recorded (``batches.job_keys``, expanded in SQL
with ``json_each`` on SQLite and ``json_array_elements_text`` on PostgreSQL, and used only as an
uncorrelated subquery or ``EXCEPT`` operand, which both dialects hash or materialize once: linear in
the feed's size, and no key crosses the wire). Closing a complete entry marks every other
live link of its feed dead, once (``entries.links_checked_at``), then forgets the keys.

Races between feeds that share jobs (PostgreSQL; SQLite's writers are serialized): before marking
links dead, the entry locks the jobs concerned and all their links (``FOR UPDATE``, in key order),
and only then, in a new statement, looks for the live links left. A batch of another feed that
links such a job, or makes its dead link live again, waits for those locks (or holds them first),
so whichever comes second sees what the first did: two feeds dropping the same job take turns and
the job expires once; a feed that starts listing a job another drops keeps it, as its own entry's
closing (after its batches) finds the job unlisted or expired and makes it active again. Every
status change is a conditional UPDATE (``WHERE status = ...``), so concurrent closings and sweeps
change a job, and log the change, once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from jobimporter.models import (
    ChangeKind,
    EntryStatus,
    ExpiryReason,
    FailureKind,
    ImportEntry,
    JobStatus,
)
from jobimporter.store.base import EntryLifecycle
from jobimporter.store.schema import UTCDateTime, batches, entries, feeds, job_feeds, jobs
from jobimporter.store.sql_changes import NewChange, append_changes
from jobimporter.store.sql_engine import Capabilities

ACTIVE, EXPIRED = JobStatus.ACTIVE.value, JobStatus.EXPIRED.value
_SUCCESSES = (EntryStatus.COMPLETED.value, EntryStatus.NOT_MODIFIED.value)


@dataclass(slots=True)
class Closing:
    """What closing one entry decided: values for its row, and the changes to append last."""

    values: dict[str, Any] = field(default_factory=dict)
    changes: list[NewChange] = field(default_factory=list)


# ---------------------------------------------------------------- closing an entry


async def close(
    conn: AsyncConnection,
    caps: Capabilities,
    entry: ImportEntry,
    lifecycle: EntryLifecycle,
    finished_at: datetime,
) -> Closing:
    """Revive what the entry listed; unlink what its feed no longer lists when the entry is complete."""
    closing = Closing(values={"failure_kind": lifecycle.failure.value if lifecycle.failure else None})
    closing.changes += await _revive_listed(conn, caps, entry, finished_at)
    if lifecycle.complete and await _unlink_pending(conn, entry):
        grace = lifecycle.expire_after_s
        expired, changes = await _unlink_unlisted(conn, caps, entry, finished_at, grace)
        await conn.execute(
            sa.update(batches).where(batches.c.entry_id == entry.id).values(job_keys=sa.null())
        )
        closing.values |= {"expired": expired, "links_checked_at": finished_at}
        closing.changes += changes
    return closing


def _listed(caps: Capabilities, entry_id: str) -> sa.Select[Any]:
    """The keys the entry's recorded batches listed (used as an uncorrelated subquery or set operand,
    so each dialect hashes or materializes it once)."""
    if caps.jsonb:
        keys: Any = sa.func.json_array_elements_text(batches.c.job_keys).table_valued("value").lateral("k")
    else:
        keys = sa.func.json_each(batches.c.job_keys).table_valued("value").alias("k")
    return (
        sa.select(keys.c.value)
        .select_from(batches.join(keys, sa.true()))
        .where(batches.c.entry_id == entry_id)
    )


async def _revive_listed(
    conn: AsyncConnection, caps: Capabilities, entry: ImportEntry, now: datetime
) -> list[NewChange]:
    """Jobs the entry listed stop waiting out their grace period, and expired ones whose end date has
    not passed are active again (first the wait, then the status: a sweep in between cannot expire
    a job that no longer waits)."""
    dormant = sa.or_(jobs.c.unlisted_at.isnot(None), jobs.c.status == EXPIRED)
    query = sa.select(jobs.c.key).where(dormant, jobs.c.key.in_(_listed(caps, entry.id)))
    found = sorted((await conn.execute(query)).scalars())  # usually none
    if not found:
        return []
    await conn.execute(
        sa.update(jobs).where(jobs.c.key.in_(found), jobs.c.unlisted_at.isnot(None)).values(unlisted_at=None)
    )
    revived = await conn.execute(
        sa.update(jobs)
        .where(
            jobs.c.key.in_(found),
            jobs.c.status == EXPIRED,
            sa.or_(jobs.c.expires_at.is_(None), jobs.c.expires_at > now),
        )
        .values(status=ACTIVE, expired_at=None, expiry_reason=None)
        .returning(jobs.c.key)
    )
    return [_change(key, ChangeKind.REACTIVATED, now, entry) for key in sorted(revived.scalars())]


async def _unlink_pending(conn: AsyncConnection, entry: ImportEntry) -> bool:
    """Whether the entry is still to unlink (once only) and recorded every batch it queued."""
    row = (
        await conn.execute(
            sa.select(
                entries.c.links_checked_at,
                sa.select(sa.func.count())
                .where(batches.c.entry_id == entry.id, batches.c.batch_no >= 1)
                .scalar_subquery()
                .label("recorded"),
            ).where(entries.c.id == entry.id)
        )
    ).one()
    return row.links_checked_at is None and row.recorded == entry.batches


async def _unlink_unlisted(
    conn: AsyncConnection, caps: Capabilities, entry: ImportEntry, now: datetime, grace_s: float
) -> tuple[int, list[NewChange]]:
    """Mark dead the feed's live links to jobs the entry did not list; returns how many, and the
    ``expired`` changes of the jobs that expired at once (grace 0)."""
    live = (job_feeds.c.feed_id == entry.feed_id, job_feeds.c.left_at.is_(None))
    linked = sa.select(job_feeds.c.job_key).where(*live)
    gone = sorted((await conn.execute(sa.except_(linked, _listed(caps, entry.id)))).scalars())
    if not gone:
        return 0, []
    await lock_jobs_and_links(conn, gone)
    left = 0
    for chunk in _chunks(caps, gone):
        marked = await conn.execute(
            sa.update(job_feeds).where(*live, job_feeds.c.job_key.in_(chunk)).values(left_at=now)
        )
        left += int(marked.rowcount or 0)
    orphans = await _without_live_link(conn, caps, gone)
    return left, await _orphaned(conn, caps, orphans, entry, now, grace_s)


async def lock_jobs_and_links(conn: AsyncConnection, keys: Sequence[str]) -> None:
    """PostgreSQL: lock the job rows, then all their feed links, in key order until commit. A batch
    that inserts a link to one of them waits for us (its foreign key check takes a share lock on the
    job), and so does one that makes a dead link live again (it updates the link), so whichever comes
    second sees what the first did. SQLite ignores FOR UPDATE: its writers hold the database lock."""
    if conn.dialect.name != "postgresql":
        return
    for start in range(0, len(keys), 10_000):
        chunk = list(keys[start : start + 10_000])
        await conn.execute(
            sa.select(jobs.c.key).where(jobs.c.key.in_(chunk)).order_by(jobs.c.key).with_for_update()
        )
        links = sa.select(job_feeds.c.job_key).where(job_feeds.c.job_key.in_(chunk))
        await conn.execute(links.order_by(job_feeds.c.job_key, job_feeds.c.feed_id).with_for_update())


def _has_live_link() -> sa.Exists:
    return sa.exists().where(job_feeds.c.job_key == jobs.c.key, job_feeds.c.left_at.is_(None))


async def _without_live_link(conn: AsyncConnection, caps: Capabilities, keys: Sequence[str]) -> list[str]:
    orphans: list[str] = []
    for chunk in _chunks(caps, keys):
        query = sa.select(jobs.c.key).where(jobs.c.key.in_(chunk), ~_has_live_link())
        orphans += (await conn.execute(query)).scalars()
    return sorted(orphans)


async def _orphaned(
    conn: AsyncConnection,
    caps: Capabilities,
    orphans: Sequence[str],
    entry: ImportEntry,
    now: datetime,
    grace_s: float,
) -> list[NewChange]:
    """Jobs left without a live link start their grace period, or expire at once when it is 0."""
    expired: list[str] = []
    for chunk in _chunks(caps, orphans):
        await conn.execute(
            sa.update(jobs)
            .where(jobs.c.key.in_(chunk))
            .values(unlisted_at=sa.func.coalesce(jobs.c.unlisted_at, now))
        )
        if grace_s <= 0:
            done = await conn.execute(
                sa.update(jobs)
                .where(jobs.c.key.in_(chunk), jobs.c.status == ACTIVE)
                .values(status=EXPIRED, expired_at=now, expiry_reason=ExpiryReason.LEFT_FEEDS.value)
                .returning(jobs.c.key)
            )
            expired += done.scalars()
    return [_change(key, ChangeKind.EXPIRED, now, entry, ExpiryReason.LEFT_FEEDS) for key in sorted(expired)]


def _change(
    key: str, kind: ChangeKind, at: datetime, entry: ImportEntry, reason: ExpiryReason | None = None
) -> NewChange:
    return NewChange(key, kind, at, [], entry.feed_id, entry.id, reason.value if reason else None)


def _chunks(caps: Capabilities, keys: Sequence[str]) -> Iterator[list[str]]:
    step = caps.max_bind_params // 2
    for start in range(0, len(keys), step):
        yield list(keys[start : start + step])


# ---------------------------------------------------------------- feed health


async def permanent_failures(conn: AsyncConnection, feed_ids: Sequence[str]) -> dict[str, int]:
    """Per feed: its entries that failed permanently since its last success and since it was resumed."""
    if not feed_ids:
        return {}
    wanted = list(feed_ids)
    last_ok = (
        sa.select(entries.c.feed_id, sa.func.max(entries.c.finished_at).label("at"))
        .where(entries.c.feed_id.in_(wanted), entries.c.status.in_(_SUCCESSES))
        .group_by(entries.c.feed_id)
        .subquery("last_ok")
    )
    joined = entries.outerjoin(last_ok, last_ok.c.feed_id == entries.c.feed_id).outerjoin(
        feeds, feeds.c.id == entries.c.feed_id
    )
    query = (
        sa.select(entries.c.feed_id, sa.func.count().label("n"))
        .select_from(joined)
        .where(
            entries.c.feed_id.in_(wanted),
            entries.c.failure_kind == FailureKind.PERMANENT.value,
            sa.or_(last_ok.c.at.is_(None), entries.c.finished_at > last_ok.c.at),
            sa.or_(feeds.c.resumed_at.is_(None), entries.c.finished_at > feeds.c.resumed_at),
        )
        .group_by(entries.c.feed_id)
    )
    return {row.feed_id: int(row.n) for row in await conn.execute(query)}


async def pause_if_failing(
    conn: AsyncConnection, entry: ImportEntry, lifecycle: EntryLifecycle, now: datetime, error: str | None
) -> None:
    """Pause the feed once its permanent failures reach ``pause_after`` (the entry is closed already)."""
    if lifecycle.failure is not FailureKind.PERMANENT or lifecycle.pause_after <= 0:
        return
    failures = (await permanent_failures(conn, [entry.feed_id])).get(entry.feed_id, 0)
    if failures < lifecycle.pause_after:
        return
    imports = "import" if failures == 1 else f"{failures} imports in a row"
    reason = f"paused after {imports} failed for good; the last: {error or 'no reason'}"
    await conn.execute(
        sa.update(feeds)
        .where(feeds.c.id == entry.feed_id, feeds.c.enabled.is_(True), feeds.c.paused_at.is_(None))
        .values(enabled=False, paused_at=now, paused_reason=reason[:2000])
    )


# ---------------------------------------------------------------- the sweep and the purge


async def expire_due_jobs(
    conn: AsyncConnection, caps: Capabilities, now: datetime, grace_s: float, limit: int
) -> int:
    """See ``JobStore.expire_due_jobs``. The due jobs are locked first (skipping those another sweep
    or an import holds), and their links are looked at afterwards, in new statements."""
    cutoff = now - timedelta(seconds=grace_s)
    due = (
        sa.select(jobs.c.key)
        .where(jobs.c.status == ACTIVE, sa.or_(jobs.c.expires_at <= now, jobs.c.unlisted_at <= cutoff))
        .order_by(jobs.c.key)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    keys = list((await conn.execute(due)).scalars())
    if not keys:
        return 0
    await lock_jobs_and_links(conn, keys)  # the jobs are ours already; their links now too
    changes = await _expire_ended(conn, keys, now) + await _expire_unlisted(conn, keys, cutoff, grace_s)
    await conn.execute(
        sa.update(jobs)
        .where(
            jobs.c.key.in_(keys), jobs.c.status == ACTIVE, jobs.c.unlisted_at.isnot(None), _has_live_link()
        )
        .values(unlisted_at=None)
    )
    await append_changes(conn, caps, sorted(changes, key=lambda change: change.job_key))
    return len(changes)


async def _expire_ended(conn: AsyncConnection, keys: list[str], now: datetime) -> list[NewChange]:
    ended = await conn.execute(
        sa.update(jobs)
        .where(jobs.c.key.in_(keys), jobs.c.status == ACTIVE, jobs.c.expires_at <= now)
        .values(status=EXPIRED, expired_at=jobs.c.expires_at, expiry_reason=ExpiryReason.END_DATE.value)
        .returning(jobs.c.key, jobs.c.expired_at)
    )
    reason = ExpiryReason.END_DATE.value
    return [NewChange(key, ChangeKind.EXPIRED, at=at, reason=reason) for key, at in ended]


async def _expire_unlisted(
    conn: AsyncConnection, keys: list[str], cutoff: datetime, grace_s: float
) -> list[NewChange]:
    waited = await conn.execute(
        sa.select(jobs.c.key, jobs.c.unlisted_at).where(
            jobs.c.key.in_(keys), jobs.c.status == ACTIVE, jobs.c.unlisted_at <= cutoff, ~_has_live_link()
        )
    )
    due = [(key, unlisted_at + timedelta(seconds=grace_s)) for key, unlisted_at in waited]
    if not due:
        return []
    await conn.execute(
        sa.update(jobs)
        .where(jobs.c.key == sa.bindparam("k"), jobs.c.status == ACTIVE)
        .values(
            status=EXPIRED,
            expired_at=sa.bindparam("at", type_=UTCDateTime),
            expiry_reason=ExpiryReason.LEFT_FEEDS.value,
        ),
        [{"k": key, "at": at} for key, at in due],
    )
    reason = ExpiryReason.LEFT_FEEDS.value
    return [NewChange(key, ChangeKind.EXPIRED, at=at, reason=reason) for key, at in due]


async def purge_expired(conn: AsyncConnection, expired_before: datetime) -> int:
    deleted = await conn.execute(
        sa.delete(jobs).where(jobs.c.status == EXPIRED, jobs.c.expired_at < expired_before)
    )
    return int(deleted.rowcount or 0)
