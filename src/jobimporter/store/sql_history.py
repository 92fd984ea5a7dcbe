"""Import-history queries of the SQL store: runs, their entries, and closing both.

Closing is race-safe by construction: ``finalize_entry`` recomputes an entry from its recorded
batches (so repeating it changes nothing), and ``finalize_run_if_done`` is one conditional UPDATE
that only a run still ``running`` with no open entry matches, so exactly one caller wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from jobimporter.errors import NotFound
from jobimporter.models import EntryStatus, ImportEntry, ImportRun, RunStatus
from jobimporter.store import sql_lifecycle
from jobimporter.store.base import EntryChanges, EntryLifecycle, EntryQuery, HistoryEntry, RunQuery
from jobimporter.store.schema import batches, entries, runs
from jobimporter.store.sql_changes import append_changes
from jobimporter.store.sql_engine import Capabilities
from jobimporter.store.sql_queries import list_entries as _list_entries
from jobimporter.store.sql_queries import run_filters, run_order

FINAL_STATUSES = tuple(status.value for status in EntryStatus if status.is_final)
_CLEAN_STATUSES = (EntryStatus.COMPLETED.value, EntryStatus.NOT_MODIFIED.value, EntryStatus.SKIPPED.value)


def _plain(value: Any) -> Any:
    """Enum members as their values: drivers bind plain strings most reliably."""
    return value.value if isinstance(value, Enum) else value


def _entry_row(entry: ImportEntry, position: int) -> dict[str, Any]:
    return {name: _plain(value) for name, value in entry.model_dump().items()} | {"position": position}


_ENTRY_FIELDS = frozenset(ImportEntry.model_fields)


def _entry(row: Row[Any]) -> ImportEntry:
    return ImportEntry.model_validate({k: v for k, v in row._mapping.items() if k in _ENTRY_FIELDS})


def _run(row: Row[Any], run_entries: list[ImportEntry]) -> ImportRun:
    return ImportRun(
        run_id=row.run_id,
        trigger=row.trigger,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        feeds=run_entries,
    )


async def create_run(conn: AsyncConnection, run: ImportRun) -> None:
    values = {name: _plain(getattr(run, name)) for name in ("run_id", "trigger", "status", "started_at")}
    await conn.execute(sa.insert(runs).values(**values, finished_at=run.finished_at))
    if run.feeds:
        await conn.execute(sa.insert(entries), [_entry_row(e, i) for i, e in enumerate(run.feeds)])


async def _entries_of(conn: AsyncConnection, run_ids: Iterable[str]) -> dict[str, list[ImportEntry]]:
    query = sa.select(entries).where(entries.c.run_id.in_(list(run_ids))).order_by(entries.c.position)
    by_run: dict[str, list[ImportEntry]] = {}
    for row in await conn.execute(query):
        by_run.setdefault(row.run_id, []).append(_entry(row))
    return by_run


async def get_run(conn: AsyncConnection, run_id: str) -> ImportRun:
    row = (await conn.execute(sa.select(runs).where(runs.c.run_id == run_id))).first()
    if row is None:
        raise NotFound("run", run_id)
    return _run(row, (await _entries_of(conn, [run_id])).get(run_id, []))


async def list_runs(conn: AsyncConnection, *, limit: int, offset: int, query: RunQuery) -> list[ImportRun]:
    stmt = (
        sa.select(runs)
        .where(*run_filters(query))
        .order_by(*run_order(query.newest_first))
        .limit(limit)
        .offset(offset)
    )
    rows = (await conn.execute(stmt)).all()
    by_run = await _entries_of(conn, (row.run_id for row in rows)) if rows else {}
    return [_run(row, by_run.get(row.run_id, [])) for row in rows]


async def list_entries(
    conn: AsyncConnection, *, limit: int, offset: int, query: EntryQuery
) -> list[HistoryEntry]:
    rows = await _list_entries(conn, query, limit, offset)
    return [HistoryEntry(entry=_entry(row), trigger=trigger) for row, trigger in rows]


async def get_entry(conn: AsyncConnection, entry_id: str) -> ImportEntry:
    row = (await conn.execute(sa.select(entries).where(entries.c.id == entry_id))).first()
    if row is None:
        raise NotFound("entry", entry_id)
    return _entry(row)


async def update_entry(conn: AsyncConnection, entry_id: str, changes: EntryChanges) -> ImportEntry:
    values = {name: _plain(value) for name, value in changes.items()}
    if values:
        stmt = sa.update(entries).where(entries.c.id == entry_id).values(**values)
        if "status" in values and not EntryStatus(values["status"]).is_final:
            # A late or repeated message must not reopen a finished entry.
            stmt = stmt.where(entries.c.status.not_in(FINAL_STATUSES))
        await conn.execute(stmt)
    return await get_entry(conn, entry_id)


async def reopen_entry(conn: AsyncConnection, entry_id: str) -> ImportEntry:
    reopened = (
        sa.update(entries)
        .where(entries.c.id == entry_id)
        .values(
            status=EntryStatus.QUEUED.value,
            error=None,
            failure_kind=None,
            started_at=None,
            finished_at=None,
            duration_s=None,
        )
        .returning(entries.c.run_id)
    )
    run_id = (await conn.execute(reopened)).scalar_one_or_none()
    if run_id is None:
        raise NotFound("entry", entry_id)
    await conn.execute(
        sa.update(runs)
        .where(runs.c.run_id == run_id)
        .values(status=RunStatus.RUNNING.value, finished_at=None)
    )
    return await get_entry(conn, entry_id)


def _missing_failures(
    missing_batches: Sequence[tuple[int, int, str]], recorded: set[int]
) -> list[dict[str, str]]:
    """One failure per item of each lost batch, so ``failures`` still explains every failed item."""
    failures: list[dict[str, str]] = []
    for batch_no, item_count, why in missing_batches:
        if batch_no in recorded:
            continue
        recorded.add(batch_no)  # a batch listed twice counts once
        failures += [
            {"external_id": f"batch {batch_no} item {i}", "reason": why} for i in range(1, item_count + 1)
        ]
    return failures


async def _totals(
    conn: AsyncConnection, entry_id: str, missing_batches: Sequence[tuple[int, int, str]]
) -> dict[str, Any]:
    query = sa.select(batches).where(batches.c.entry_id == entry_id).order_by(batches.c.batch_no)
    rows = (await conn.execute(query)).all()
    failures = [failure for row in rows for failure in row.failures]
    lost = _missing_failures(missing_batches, {row.batch_no for row in rows})
    return {
        "new": sum(row.new for row in rows),
        "updated": sum(row.updated for row in rows),
        "unchanged": sum(row.unchanged for row in rows),
        "failed": sum(row.failed for row in rows) + len(lost),
        "failures": failures + lost,
    }


async def finalize_entry(
    conn: AsyncConnection,
    caps: Capabilities,
    entry_id: str,
    *,
    status: EntryStatus,
    finished_at: datetime,
    error: str | None,
    missing_batches: Sequence[tuple[int, int, str]],
    lifecycle: EntryLifecycle | None,
) -> ImportEntry:
    current = await get_entry(conn, entry_id)
    duration = (finished_at - current.started_at).total_seconds() if current.started_at else None
    totals = await _totals(conn, entry_id, missing_batches)
    closing = {"status": status.value, "finished_at": finished_at, "error": error, "duration_s": duration}
    done = sql_lifecycle.Closing()
    if lifecycle is not None:
        done = await sql_lifecycle.close(conn, caps, current, lifecycle, finished_at)
    await conn.execute(
        sa.update(entries).where(entries.c.id == entry_id).values(**closing, **totals, **done.values)
    )
    if lifecycle is not None:
        await sql_lifecycle.pause_if_failing(conn, current, lifecycle, finished_at, error)
    await append_changes(conn, caps, done.changes)  # last: see sql_changes
    return await get_entry(conn, entry_id)


def _run_closing(finished_at: datetime) -> dict[str, Any]:
    e = entries.alias("e")
    clean = _no_entry_of(e, sa.or_(e.c.status.not_in(_CLEAN_STATUSES), e.c.failed > 0))
    all_failed = _no_entry_of(e, e.c.status != EntryStatus.FAILED.value)
    status = sa.case(
        (clean, RunStatus.COMPLETED.value),
        (all_failed, RunStatus.FAILED.value),
        else_=RunStatus.PARTIAL.value,
    )
    return {"status": status, "finished_at": finished_at}


def _no_entry_of(alias: sa.FromClause, condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    return ~sa.exists().where(alias.c.run_id == runs.c.run_id, condition).correlate(runs)


async def finalize_run_if_done(conn: AsyncConnection, run_id: str, finished_at: datetime) -> ImportRun | None:
    e = entries.alias("e")
    stmt = (
        sa.update(runs)
        .where(
            runs.c.run_id == run_id,
            runs.c.status == RunStatus.RUNNING.value,
            _no_entry_of(e, e.c.status.not_in(FINAL_STATUSES)),
        )
        .values(**_run_closing(finished_at))
        .returning(runs.c.run_id)
    )
    if (await conn.execute(stmt)).first() is not None:
        return await get_run(conn, run_id)
    known = (await conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id))).first()
    if known is None:
        raise NotFound("run", run_id)
    return None  # not done yet, already closed, or another caller closed it


async def busy_feeds(conn: AsyncConnection, feed_ids: Sequence[str]) -> dict[str, str]:
    if not feed_ids:
        return {}
    query = (
        sa.select(entries.c.feed_id, entries.c.run_id)
        .join(runs, runs.c.run_id == entries.c.run_id)
        .where(
            entries.c.feed_id.in_(list(feed_ids)),
            entries.c.status.not_in(FINAL_STATUSES),
            runs.c.status == RunStatus.RUNNING.value,
        )
    )
    return {row.feed_id: row.run_id for row in await conn.execute(query)}


async def prune_history(conn: AsyncConnection, finished_before: datetime) -> int:
    old_runs = sa.select(runs.c.run_id).where(
        runs.c.status != RunStatus.RUNNING.value, runs.c.finished_at < finished_before
    )
    old_entries = sa.select(entries.c.id).where(entries.c.run_id.in_(old_runs))
    # batches has no foreign key to entries (the job path must not depend on history rows): delete by hand.
    await conn.execute(sa.delete(batches).where(batches.c.entry_id.in_(old_entries)))
    await conn.execute(sa.delete(entries).where(entries.c.run_id.in_(old_runs)))
    deleted = await conn.execute(sa.delete(runs).where(runs.c.run_id.in_(old_runs)))
    return int(deleted.rowcount or 0)
