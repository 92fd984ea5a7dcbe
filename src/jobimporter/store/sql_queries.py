"""Read-side queries of the SQL store for the admin API: filtered history lists and their counts, job
search, feed health, the stats series and all-time totals.

Dialect differences stay behind ``Capabilities``: JSON list membership is jsonb's ``?`` on PostgreSQL
and ``json_each`` on SQLite (``caps.jsonb``); case-insensitive substring search is SQLAlchemy's
``icontains`` (``ILIKE`` on PostgreSQL, ``lower() LIKE lower()`` on SQLite). Medians are computed in
SQL with window functions (no percentile function exists in SQLite).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from jobimporter.models import EntryStatus, RunStatus, Trigger
from jobimporter.store.base import (
    EntryQuery,
    EntryTally,
    FeedHealth,
    FeedPoint,
    FeedSeries,
    HistoryTotals,
    JobQuery,
    RunPoint,
    RunQuery,
    RunTally,
    StatsSeries,
)
from jobimporter.store.schema import entries, feeds, job_feeds, jobs, runs
from jobimporter.store.sql_engine import Capabilities
from jobimporter.store.sql_lifecycle import permanent_failures

FINAL = tuple(status.value for status in EntryStatus if status.is_final)
CLEAN = (EntryStatus.COMPLETED.value, EntryStatus.NOT_MODIFIED.value)
COUNTS = ("new", "updated", "unchanged", "failed")


# ---------------------------------------------------------------- runs and entries


def run_filters(query: RunQuery) -> list[sa.ColumnElement[bool]]:
    conditions = _started_between(runs.c.started_at, query.since, query.until)
    if query.trigger is not None:
        conditions.append(runs.c.trigger == query.trigger.value)
    if query.status is not None:
        conditions.append(runs.c.status == query.status.value)
    if query.finished_since is not None:
        conditions.append(runs.c.finished_at >= query.finished_since)
    if query.feed_id is not None:
        e = entries.alias("feed_entry")
        conditions.append(
            sa.exists().where(e.c.run_id == runs.c.run_id, e.c.feed_id == query.feed_id).correlate(runs)
        )
    return conditions


def run_order(newest_first: bool) -> list[sa.UnaryExpression[Any]]:
    direction = sa.desc if newest_first else sa.asc
    return [direction(runs.c.started_at), direction(runs.c.run_id)]


def _started_between(
    column: sa.ColumnElement[Any], since: datetime | None, until: datetime | None
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


async def count_runs(conn: AsyncConnection, query: RunQuery) -> int:
    stmt = sa.select(sa.func.count()).select_from(runs).where(*run_filters(query))
    return int((await conn.execute(stmt)).scalar_one())


def entry_filters(query: EntryQuery) -> list[sa.ColumnElement[bool]]:
    conditions = _started_between(runs.c.started_at, query.since, query.until)
    for column, value in (
        (entries.c.run_id, query.run_id),
        (entries.c.feed_id, query.feed_id),
        (entries.c.status, query.status.value if query.status else None),
        (runs.c.trigger, query.trigger.value if query.trigger else None),
    ):
        if value is not None:
            conditions.append(column == value)
    return conditions


def entries_select(query: EntryQuery, *columns: Any) -> sa.Select[Any]:
    joined = entries.join(runs, entries.c.run_id == runs.c.run_id)
    return sa.select(*columns).select_from(joined).where(*entry_filters(query))


async def list_entries(
    conn: AsyncConnection, query: EntryQuery, limit: int, offset: int
) -> list[tuple[Row[Any], Trigger]]:
    stmt = (
        entries_select(query, entries, runs.c.trigger.label("run_trigger"))
        .order_by(*run_order(query.newest_first), entries.c.position)
        .limit(limit)
        .offset(offset)
    )
    return [(row, Trigger(row.run_trigger)) for row in await conn.execute(stmt)]


async def count_entries(conn: AsyncConnection, query: EntryQuery) -> int:
    stmt = entries_select(query, sa.func.count())
    return int((await conn.execute(stmt)).scalar_one())


# ---------------------------------------------------------------- jobs


def job_filters(caps: Capabilities, query: JobQuery) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if query.q:
        text = query.q
        conditions.append(
            sa.or_(
                jobs.c.title.icontains(text, autoescape=True),
                jobs.c.company.icontains(text, autoescape=True),
                jobs.c.description_text.icontains(text, autoescape=True),
            )
        )
    if query.feed_id is not None:
        conditions.append(
            sa.exists().where(job_feeds.c.job_key == jobs.c.key, job_feeds.c.feed_id == query.feed_id)
        )
    for column, value in (
        (jobs.c.job_types, query.job_type),
        (jobs.c.categories, query.category),
        (jobs.c.locations, query.location),
        (jobs.c.employment_types, query.employment_type),
    ):
        if value is not None:
            conditions.append(_has_element(caps, column, value))
    if query.workplace is not None:
        conditions.append(jobs.c.workplace == query.workplace)
    if query.status is not None:
        conditions.append(jobs.c.status == query.status.value)
    posted = sa.func.coalesce(jobs.c.published_at, jobs.c.first_seen)
    return conditions + _started_between(posted, query.since, query.until)


def _has_element(caps: Capabilities, column: sa.Column[Any], value: str) -> sa.ColumnElement[bool]:
    """Whether the JSON list in ``column`` has an element equal to ``value``."""
    if caps.jsonb:
        member: sa.ColumnElement[bool] = sa.cast(column, JSONB).has_key(value)
        return member
    element = sa.func.json_each(column).table_valued("value").alias("element")
    return sa.exists().select_from(element).where(element.c.value == value)


def job_order(query: JobQuery) -> list[sa.ColumnElement[Any]]:
    column = jobs.c[query.sort]
    ordered = column.desc() if query.descending else column.asc()
    # Missing values (a job without published_at) last in either direction, on both dialects.
    return [sa.case((column.is_(None), 1), else_=0), ordered, jobs.c.key]


# ---------------------------------------------------------------- feed health


async def feed_health(
    conn: AsyncConnection, feed_ids: Sequence[str] | None, window: int
) -> dict[str, FeedHealth]:
    if feed_ids is None:
        feed_ids = list((await conn.execute(sa.select(feeds.c.id))).scalars())
    wanted = list(feed_ids)
    health = {feed_id: _empty_health() for feed_id in wanted}
    if not wanted:
        return health
    for row in await conn.execute(_newest_entries(wanted)):
        health[row.feed_id]["last_status"] = EntryStatus(row.status)
        health[row.feed_id]["last_run_at"] = row.run_started_at
    for row in await conn.execute(_last_successes(wanted)):
        health[row.feed_id]["last_success_at"] = row.last_success_at
    for row in await conn.execute(_final_window_stats(wanted, window)):
        health[row.feed_id]["success_rate"] = float(row.success_rate)
        health[row.feed_id]["last_error"] = row.last_error
    for row in await conn.execute(_median_fetch(wanted, window)):
        health[row.feed_id]["median_fetch_s"] = float(row.median_fetch_s)
    for feed_id, failures in (await permanent_failures(conn, wanted)).items():
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


def _ranked(feed_ids: list[str], *, final_only: bool) -> sa.CTE:
    """The feeds' entries numbered newest first per feed (``rank`` 1 is the newest)."""
    rank = sa.func.row_number().over(
        partition_by=entries.c.feed_id,
        order_by=(runs.c.started_at.desc(), runs.c.run_id.desc(), entries.c.position.desc()),
    )
    stmt = (
        sa.select(
            entries.c.feed_id,
            entries.c.status,
            entries.c.error,
            entries.c.fetch_s,
            runs.c.started_at.label("run_started_at"),
            rank.label("rank"),
        )
        .select_from(entries.join(runs, entries.c.run_id == runs.c.run_id))
        .where(entries.c.feed_id.in_(feed_ids))
    )
    if final_only:
        stmt = stmt.where(entries.c.status.in_(FINAL))
    return stmt.cte("final_ranked" if final_only else "ranked")


def _newest_entries(feed_ids: list[str]) -> sa.Select[Any]:
    ranked = _ranked(feed_ids, final_only=False)
    return sa.select(ranked.c.feed_id, ranked.c.status, ranked.c.run_started_at).where(ranked.c.rank == 1)


def _last_successes(feed_ids: list[str]) -> sa.Select[Any]:
    return (
        sa.select(entries.c.feed_id, sa.func.max(entries.c.finished_at).label("last_success_at"))
        .where(entries.c.feed_id.in_(feed_ids), entries.c.status.in_(CLEAN))
        .group_by(entries.c.feed_id)
    )


def _final_window_stats(feed_ids: list[str], window: int) -> sa.Select[Any]:
    ranked = _ranked(feed_ids, final_only=True)
    clean = sa.case((ranked.c.status.in_(CLEAN), 1.0), else_=0.0)
    newest_error = sa.case((ranked.c.rank == 1, ranked.c.error), else_=None)
    return (
        sa.select(
            ranked.c.feed_id,
            sa.func.avg(clean).label("success_rate"),
            sa.func.max(newest_error).label("last_error"),
        )
        .where(ranked.c.rank <= window)
        .group_by(ranked.c.feed_id)
    )


def _median_fetch(feed_ids: list[str], window: int) -> sa.Select[Any]:
    """The middle value (the mean of the two middle ones for an even count) of each feed's ``fetch_s``
    over its newest ``window`` final entries."""
    ranked = _ranked(feed_ids, final_only=True)
    timed = (
        sa.select(
            ranked.c.feed_id,
            ranked.c.fetch_s,
            sa.func.row_number().over(partition_by=ranked.c.feed_id, order_by=ranked.c.fetch_s).label("k"),
            sa.func.count().over(partition_by=ranked.c.feed_id).label("n"),
        )
        .where(ranked.c.rank <= window, ranked.c.fetch_s.isnot(None))
        .cte("timed")
    )
    middle = sa.or_(timed.c.k == (timed.c.n + 1) // 2, timed.c.k == (timed.c.n + 2) // 2)
    return (
        sa.select(timed.c.feed_id, sa.func.avg(timed.c.fetch_s).label("median_fetch_s"))
        .where(middle)
        .group_by(timed.c.feed_id)
    )


# ---------------------------------------------------------------- stats series and totals


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


async def stats(conn: AsyncConnection, limit: int) -> StatsSeries:
    newest = sa.select(runs).order_by(*run_order(True)).limit(limit)
    run_rows = list(reversed((await conn.execute(newest)).all()))
    run_ids = [row.run_id for row in run_rows]
    entry_rows = (
        (await conn.execute(sa.select(entries).where(entries.c.run_id.in_(run_ids)))).all() if run_ids else []
    )
    by_run: dict[str, list[Row[Any]]] = {}
    for row in entry_rows:
        by_run.setdefault(row.run_id, []).append(row)
    points = [_run_point(row, by_run.get(row.run_id, [])) for row in run_rows]
    return StatsSeries(runs=points, feeds=await _feed_series(conn, run_rows, by_run))


def _run_point(run: Row[Any], run_entries: list[Row[Any]]) -> RunPoint:
    totals = {name: sum(getattr(e, name) for e in run_entries) for name in COUNTS}
    return RunPoint(
        run_id=run.run_id,
        started_at=run.started_at,
        trigger=Trigger(run.trigger),
        status=RunStatus(run.status),
        new=totals["new"],
        updated=totals["updated"],
        unchanged=totals["unchanged"],
        failed=totals["failed"],
        duration_s=_seconds(run.started_at, run.finished_at),
    )


async def _feed_series(
    conn: AsyncConnection, run_rows: list[Row[Any]], by_run: dict[str, list[Row[Any]]]
) -> list[FeedSeries]:
    series: dict[str, FeedSeries] = {}
    for run in run_rows:  # oldest first, so each feed's points are too
        for entry in sorted(by_run.get(run.run_id, []), key=lambda e: e.position):
            line = series.setdefault(entry.feed_id, FeedSeries(feed_id=entry.feed_id, name="", points=[]))
            line["name"] = entry.name  # the newest entry's name, unless the feed still exists
            line["points"].append(_feed_point(run, entry))
    names = await _feed_names(conn, series)
    for feed_id, line in series.items():
        line["name"] = names.get(feed_id, line["name"])
    return sorted(series.values(), key=lambda line: (line["name"], line["feed_id"]))


def _feed_point(run: Row[Any], entry: Row[Any]) -> FeedPoint:
    return FeedPoint(
        run_id=run.run_id,
        started_at=run.started_at,
        fetch_s=entry.fetch_s,
        duration_s=entry.duration_s,
        new=entry.new,
        updated=entry.updated,
        unchanged=entry.unchanged,
        failed=entry.failed,
        status=EntryStatus(entry.status),
    )


async def _feed_names(conn: AsyncConnection, feed_ids: Iterable[str]) -> dict[str, str]:
    wanted = list(feed_ids)
    if not wanted:
        return {}
    rows = await conn.execute(sa.select(feeds.c.id, feeds.c.name).where(feeds.c.id.in_(wanted)))
    return {feed_id: name for feed_id, name in rows}


async def history_totals(conn: AsyncConnection) -> HistoryTotals:
    run_rows = await conn.execute(
        sa.select(runs.c.trigger, runs.c.status, sa.func.count().label("n")).group_by(
            runs.c.trigger, runs.c.status
        )
    )
    tallies = [RunTally(trigger=Trigger(r.trigger), status=RunStatus(r.status), runs=r.n) for r in run_rows]
    sums = [sa.func.coalesce(sa.func.sum(entries.c[name]), 0).label(name) for name in COUNTS]
    entry_rows = await conn.execute(
        sa.select(entries.c.feed_id, entries.c.status, sa.func.count().label("n"), *sums).group_by(
            entries.c.feed_id, entries.c.status
        )
    )
    return HistoryTotals(runs=tallies, entries=[_entry_tally(row) for row in entry_rows])


def _entry_tally(row: Row[Any]) -> EntryTally:
    return EntryTally(
        feed_id=row.feed_id,
        status=EntryStatus(row.status),
        entries=row.n,
        new=int(row.new),
        updated=int(row.updated),
        unchanged=int(row.unchanged),
        failed=int(row.failed),
    )
