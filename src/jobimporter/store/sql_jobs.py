"""Job queries of the SQL store: the exactly-once batch upsert and the job lookups.

``upsert_batch`` runs in one transaction:

1. Claim the batch by inserting its ``batches`` row (``ON CONFLICT DO NOTHING``). A key that is
   already there was recorded by an earlier or concurrent delivery (on PostgreSQL the second insert
   waits for the first to commit), so we roll back and return what was recorded.
2. Look up the stored hash and last_seen of the batch's keys. Stored jobs with the same hash and a
   recent last_seen are unchanged and not written at all. On PostgreSQL the jobs not stored yet go
   in with COPY (new); if that is refused (a concurrent batch inserted one of them first, or a
   value is bad) they join the next step.
3. The rest go through one bulk ``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE hash differs OR
   last_seen is stale RETURNING key, created_by, last_changed``. A returned row whose
   ``created_by`` is this batch was inserted (new); one whose ``last_changed`` is this batch's
   ``now`` was overwritten (updated); anything else (not returned, or only its last_seen refreshed)
   is unchanged. So whatever another batch did in between, each key is new in exactly one batch.
4. Link the jobs to the feed (``job_feeds``), refreshing a link's last_seen only when stale.
5. Append the ``new`` and ``updated`` changes to the change log (``sql_changes``); an update names
   the fields it changed, compared with the stored content read (and locked) before the upsert.
6. Write the counts and the keys the batch listed into the claimed row; commit.

If the database refuses the bulk statement because of a value in it, the rows are written again one
by one inside SAVEPOINTs so only the bad record fails, with the database's reason. If a concurrent
batch stored a job between our look and our write, so that we overwrote content we had not read,
the transaction is rolled back and run again (it then reads that content).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

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
from jobimporter.store.base import JobQuery, StoredJob, changed_fields, describe
from jobimporter.store.schema import batches, job_feeds, jobs
from jobimporter.store.sql_changes import NewChange, append_changes
from jobimporter.store.sql_engine import Capabilities
from jobimporter.store.sql_errors import DRIVER_ERRORS, UnstorableValue, is_record_error, reason
from jobimporter.store.sql_queries import job_filters, job_order
from jobimporter.store.sql_upserts import (
    RECORD_COLUMNS,
    Stamps,
    copy_new_jobs,
    link_feed,
    locked_contents,
    record_known_batch,
    stale_flags,
    stored_states,
    upsert_jobs,
)

logger = logging.getLogger(__name__)

DUPLICATE_REASON = "duplicate of another item in this batch"
VANISHED_REASON = "job was deleted from the store during this import; the next run imports it again"
# What a bulk or single-record write may fail with; ``is_record_error`` decides whose fault it is.
_WRITE_ERRORS: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, UnstorableValue)


# A batch whose content a concurrent batch keeps overwriting is tried this many times in all.
_CONTENT_RACE_TRIES = 3


class _AlreadyRecorded(Exception):
    """The batch key was claimed by an earlier delivery; raised to roll the transaction back."""


class _UnreadContent(Exception):
    """We overwrote a job whose previous content we had not read (a concurrent batch stored it after
    we looked): the update's changed fields are unknown, so the transaction is rolled back and redone."""


@dataclass(slots=True)
class _Tally:
    unchanged: int = 0
    failures: list[ItemFailure] = field(default_factory=list)
    new_keys: list[str] = field(default_factory=list)
    updated_keys: list[str] = field(default_factory=list)

    def count(self, returned: Sequence[Row[Any]], sent: int, stamps: Stamps) -> None:
        """Classify one statement's rows: inserted ones carry this batch's mark, overwritten ones
        (not a mere last_seen refresh) this batch's ``now``; rows not returned were left alone."""
        new = [row.key for row in returned if row.created_by == stamps.created_by]
        updated = [
            row.key
            for row in returned
            if row.created_by != stamps.created_by and row.last_changed == stamps.now
        ]
        self.new_keys += new
        self.updated_keys += updated
        self.unchanged += sent - len(new) - len(updated)

    def result(self) -> UpsertResult:
        return UpsertResult(
            new=len(self.new_keys),
            updated=len(self.updated_keys),
            unchanged=self.unchanged,
            failed=len(self.failures),
            failures=tuple(self.failures),
        )


@dataclass(frozen=True, slots=True)
class _Batch:
    key: BatchKey
    feed_id: str
    stamps: Stamps
    rows: list[dict[str, Any]]  # the records' fields, one per distinct key, sorted by key
    failures: list[ItemFailure]  # failed before the store, and in-batch duplicates
    known: dict[str, str]  # key → external_id of items the caller found unchanged by raw hash
    listed: list[str]  # every key the batch listed (records, known, failures with a key), sorted


def _plan(
    key: BatchKey,
    feed_id: str,
    records: Sequence[JobRecord],
    failures: Sequence[ItemFailure],
    now: datetime,
    seen_refresh_s: float,
    known: Sequence[tuple[str, str]] = (),
) -> _Batch:
    latest: dict[str, JobRecord] = {}
    duplicates: list[ItemFailure] = []
    for record in records:
        earlier = latest.pop(record.key, None)
        if earlier is not None:
            duplicates.append(ItemFailure(earlier.external_id, DUPLICATE_REASON))
        latest[record.key] = record
    stamps = Stamps(now=now, created_by=str(key), stale_before=now - timedelta(seconds=seen_refresh_s))
    # Plain attribute reads: model_dump() copies every list and dict, a third of a cold batch's CPU.
    rows = [{name: getattr(latest[k], name) for name in RECORD_COLUMNS} for k in sorted(latest)]
    unchanged = {k: external_id for k, external_id in known if k not in latest}
    listed = sorted({*latest, *unchanged, *(f.key for f in failures if f.key)})
    return _Batch(key, feed_id, stamps, rows, [*failures, *duplicates], unchanged, listed)


async def upsert_batch(
    conn: AsyncConnection,
    caps: Capabilities,
    key: BatchKey,
    feed_id: str,
    records: Sequence[JobRecord],
    failures: Sequence[ItemFailure],
    *,
    now: datetime,
    seen_refresh_s: float,
    known: Sequence[tuple[str, str]] = (),
) -> UpsertResult:
    """See ``JobStore.upsert_batch``; ``conn`` must be a writer connection outside a transaction."""
    if now.tzinfo is None:
        raise StoreError("store: upsert_batch needs a timezone-aware 'now'")
    started = time.perf_counter()
    batch = _plan(key, feed_id, records, failures, now, seen_refresh_s, known)
    if caps.array_binds and batch.known and not batch.rows and not batch.failures:
        return await _upsert_known_only(conn, batch)
    for attempt in range(1, _CONTENT_RACE_TRIES + 1):
        try:
            result = await _claim_and_write(conn, caps, batch)
        except _AlreadyRecorded:
            logger.info("store: batch %s was already recorded; returning its result", key)
            return await _recorded(conn, key)
        except _UnreadContent as exc:
            logger.info("store: batch %s, try %d: %s; writing it again", key, attempt, exc)
            continue
        elapsed = time.perf_counter() - started
        logger.debug("store: batch %s: %s in %.3fs", key, describe(result), elapsed)
        return result
    raise StoreError(
        f"store: batch {key}: its jobs were overwritten by concurrent batches {_CONTENT_RACE_TRIES} "
        "times while it was written",
        transient=True,
    )


async def _claim_and_write(conn: AsyncConnection, caps: Capabilities, batch: _Batch) -> UpsertResult:
    async with conn.begin():
        if not await _claim(conn, caps, batch):
            raise _AlreadyRecorded
        result = await _write(conn, caps, batch)
        await _record(conn, batch, result)
    return result


async def _upsert_known_only(conn: AsyncConnection, batch: _Batch) -> UpsertResult:
    """PostgreSQL, a batch of raw-hash matches only (what an unchanged re-import sends): the same
    claim, confirm, link and record as the general path, in one statement and one round trip."""
    started = time.perf_counter()
    key = batch.key
    row = await record_known_batch(
        conn, (key.entry_id, key.batch_no), batch.feed_id, list(batch.known.items()), VANISHED_REASON,
        batch.stamps,
    )  # fmt: skip
    if row is None:
        logger.info("store: batch %s was already recorded; returning its result", key)
        return await _recorded(conn, key)
    failures = tuple(ItemFailure(f["external_id"], f["reason"]) for f in row.failures)
    result = UpsertResult(unchanged=row.unchanged, failed=row.failed, failures=failures)
    logger.debug("store: batch %s: %s in %.3fs", key, describe(result), time.perf_counter() - started)
    return result


async def _claim(conn: AsyncConnection, caps: Capabilities, batch: _Batch) -> bool:
    key = batch.key
    stmt = (
        caps.insert(batches)
        .values(entry_id=key.entry_id, batch_no=key.batch_no, failures=[], created_at=batch.stamps.now)
        .on_conflict_do_nothing(index_elements=[batches.c.entry_id, batches.c.batch_no])
        .returning(batches.c.batch_no)
    )
    return (await conn.execute(stmt)).first() is not None


@dataclass(frozen=True, slots=True)
class _Split:
    fresh: list[dict[str, Any]]  # not stored yet
    pending: list[dict[str, Any]]  # stored, but changed, with a new raw hash, or seen too long ago
    skipped: list[str]  # stored, same hashes, seen recently: nothing to write
    changed: list[str]  # the keys of ``pending`` whose content differs (sorted)


async def _split(conn: AsyncConnection, caps: Capabilities, batch: _Batch) -> _Split:
    stored = await stored_states(conn, caps, [row["key"] for row in batch.rows])
    split = _Split([], [], [], [])
    for row in batch.rows:
        state = stored.get(row["key"])
        if state is None:
            split.fresh.append(row)
        elif (
            state.content_hash == row["content_hash"]
            and state.raw_hash == row["raw_hash"]
            and state.last_seen >= batch.stamps.stale_before
        ):
            split.skipped.append(row["key"])
        else:
            split.pending.append(row)
            if state.content_hash != row["content_hash"]:
                split.changed.append(row["key"])
    return split


async def _write(conn: AsyncConnection, caps: Capabilities, batch: _Batch) -> UpsertResult:
    tally = _Tally(failures=list(batch.failures))
    # Looking first means unchanged jobs are not even sent (a steady re-import costs one SELECT),
    # and new ones can take the COPY path. The upsert statement still decides every row it gets,
    # so a job another batch writes between the look and the write is classified correctly.
    split = await _split(conn, caps, batch)
    tally.unchanged += len(split.skipped)
    known = await _confirm_known(conn, caps, batch, tally)
    previous = await locked_contents(conn, caps, split.changed)  # what an update is compared with
    pending = split.pending
    if split.fresh and caps.copy_new_rows and await _copied(conn, batch, split.fresh):
        tally.new_keys += [row["key"] for row in split.fresh]
    else:
        pending = sorted([*pending, *split.fresh], key=lambda row: str(row["key"]))
    written = await _upsert(conn, caps, batch, pending, tally)
    await link_feed(conn, caps, sorted([*split.skipped, *known, *written]), batch.feed_id, batch.stamps)
    await append_changes(conn, caps, _changes(batch, tally, previous))
    return tally.result()


def _changes(batch: _Batch, tally: _Tally, previous: dict[str, dict[str, Any]]) -> list[NewChange]:
    """The batch's ``new`` and ``updated`` changes, in key order; an update names its changed fields."""
    rows = {row["key"]: row for row in batch.rows}
    unread = [key for key in tally.updated_keys if key not in previous]
    if unread:
        raise _UnreadContent(f"{len(unread)} jobs (e.g. {unread[0]}) were stored by another batch meanwhile")

    def change(key: str, kind: ChangeKind, fields: list[str]) -> NewChange:
        return NewChange(key, kind, batch.stamps.now, fields, batch.feed_id, batch.key.entry_id)

    made = [change(key, ChangeKind.NEW, []) for key in tally.new_keys]
    made += [
        change(key, ChangeKind.UPDATED, changed_fields(previous[key], rows[key]))
        for key in tally.updated_keys
    ]
    return sorted(made, key=lambda made_change: made_change.job_key)


async def _confirm_known(
    conn: AsyncConnection, caps: Capabilities, batch: _Batch, tally: _Tally
) -> list[str]:
    """Count the caller's raw-hash matches as unchanged, refreshing a stale last_seen; a job that
    vanished since the caller looked fails (its raw hash is gone too, so the next run re-imports it)."""
    if not batch.known:
        return []
    flags = await stale_flags(conn, caps, sorted(batch.known), batch.stamps.stale_before)
    for key, external_id in batch.known.items():
        if key not in flags:
            tally.failures.append(ItemFailure(external_id, VANISHED_REASON))
    present = sorted(flags)
    stale = [key for key in present if flags[key]]
    if stale:
        await conn.execute(sa.update(jobs).where(jobs.c.key.in_(stale)).values(last_seen=batch.stamps.now))
    tally.unchanged += len(present)
    return present


async def _copied(conn: AsyncConnection, batch: _Batch, fresh: list[dict[str, Any]]) -> bool:
    try:
        async with conn.begin_nested():
            await copy_new_jobs(conn, fresh, batch.feed_id, batch.stamps)
    except _WRITE_ERRORS as exc:
        # A key inserted by a concurrent batch meanwhile, or a value the database refuses: the
        # upsert statement sorts out both, row by row if need be.
        if not is_record_error(exc):
            raise
        logger.info("store: batch %s: COPY of new jobs refused (%s); upserting them", batch.key, reason(exc))
        return False
    return True


async def _upsert(
    conn: AsyncConnection, caps: Capabilities, batch: _Batch, rows: list[dict[str, Any]], tally: _Tally
) -> list[str]:
    """Upsert ``rows`` in bulk, or one by one if the bulk statement is refused; the keys written."""
    if not rows:
        return []
    try:
        # A SAVEPOINT, so a refused bulk statement leaves the claim (and transaction) usable.
        async with conn.begin_nested():
            returned = await upsert_jobs(conn, caps, rows, batch.stamps)
    except _WRITE_ERRORS as exc:
        if not is_record_error(exc):
            raise
        logger.warning(
            "store: batch %s refused in bulk (%s); writing it record by record", batch.key, reason(exc)
        )
        return await _upsert_one_by_one(conn, caps, batch, rows, tally)
    tally.count(returned, len(rows), batch.stamps)
    return [row["key"] for row in rows]


async def _upsert_one_by_one(
    conn: AsyncConnection, caps: Capabilities, batch: _Batch, rows: list[dict[str, Any]], tally: _Tally
) -> list[str]:
    written: list[str] = []
    for row in rows:
        try:
            async with conn.begin_nested():
                returned = await upsert_jobs(conn, caps, [row], batch.stamps)
        except _WRITE_ERRORS as exc:
            if not is_record_error(exc):
                raise
            tally.failures.append(ItemFailure(row["external_id"], f"could not be stored: {reason(exc)}"))
            continue
        tally.count(returned, 1, batch.stamps)
        written.append(row["key"])
    return written


async def _record(conn: AsyncConnection, batch: _Batch, result: UpsertResult) -> None:
    key = batch.key
    await conn.execute(
        sa.update(batches)
        .where(batches.c.entry_id == key.entry_id, batches.c.batch_no == key.batch_no)
        .values(
            new=result.new,
            updated=result.updated,
            unchanged=result.unchanged,
            failed=result.failed,
            failures=[f.to_dict() for f in result.failures],
            job_keys=batch.listed,
        )
    )


def result_from_row(row: Row[Any]) -> UpsertResult:
    return UpsertResult(
        new=row.new,
        updated=row.updated,
        unchanged=row.unchanged,
        failed=row.failed,
        failures=tuple(ItemFailure(f["external_id"], f["reason"]) for f in row.failures),
    )


async def _recorded(conn: AsyncConnection, key: BatchKey) -> UpsertResult:
    query = sa.select(batches).where(batches.c.entry_id == key.entry_id, batches.c.batch_no == key.batch_no)
    row = (await conn.execute(query)).first()
    if row is None:  # only if someone deleted it between our claim and this read
        raise StoreError(f"store: batch {key} was recorded but its row is gone", transient=True)
    return result_from_row(row)


async def batch_results(conn: AsyncConnection, entry_id: str) -> dict[int, UpsertResult]:
    query = sa.select(batches).where(batches.c.entry_id == entry_id).order_by(batches.c.batch_no)
    return {row.batch_no: result_from_row(row) for row in await conn.execute(query)}


# ---------------------------------------------------------------- reads


def _stored_job(row: Row[Any], feed_ids: list[str]) -> StoredJob:
    record = JobRecord.model_validate({name: row._mapping[name] for name in RECORD_COLUMNS})
    return StoredJob(
        record=record,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        last_changed=row.last_changed,
        feed_ids=feed_ids,
        status=JobStatus(row.status),
        expired_at=row.expired_at,
        expiry_reason=ExpiryReason(row.expiry_reason) if row.expiry_reason else None,
        unlisted_at=row.unlisted_at,
    )


async def _feed_ids(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, list[str]]:
    query = (
        sa.select(job_feeds.c.job_key, job_feeds.c.feed_id)
        .where(job_feeds.c.job_key.in_(list(keys)))
        .order_by(job_feeds.c.job_key, job_feeds.c.feed_id)
    )
    by_key: dict[str, list[str]] = {}
    for job_key, feed_id in await conn.execute(query):
        by_key.setdefault(job_key, []).append(feed_id)
    return by_key


def _in_feed(feed_id: str | None) -> list[sa.ColumnElement[bool]]:
    if feed_id is None:
        return []
    linked = sa.exists().where(job_feeds.c.job_key == jobs.c.key, job_feeds.c.feed_id == feed_id)
    return [linked]


async def get_job(conn: AsyncConnection, key: str) -> StoredJob:
    row = (await conn.execute(sa.select(jobs).where(jobs.c.key == key))).first()
    if row is None:
        raise NotFound("job", key)
    return _stored_job(row, (await _feed_ids(conn, [key])).get(key, []))


async def list_jobs(
    conn: AsyncConnection,
    caps: Capabilities,
    *,
    limit: int,
    offset: int,
    feed_id: str | None,
    query: JobQuery | None,
) -> list[StoredJob]:
    query = query or JobQuery()
    stmt = (
        sa.select(jobs)
        .where(*_in_feed(feed_id), *job_filters(caps, query))
        .order_by(*job_order(query))
        .limit(limit)
        .offset(offset)
    )
    rows = (await conn.execute(stmt)).all()
    feed_ids = await _feed_ids(conn, (row.key for row in rows)) if rows else {}
    return [_stored_job(row, feed_ids.get(row.key, [])) for row in rows]


async def count_jobs(
    conn: AsyncConnection, caps: Capabilities, *, feed_id: str | None, query: JobQuery | None
) -> int:
    filters = job_filters(caps, query) if query else []
    stmt = sa.select(sa.func.count()).select_from(jobs).where(*_in_feed(feed_id), *filters)
    return int((await conn.execute(stmt)).scalar_one())


async def column_by_key(
    conn: AsyncConnection, caps: Capabilities, name: str, keys: Sequence[str]
) -> dict[str, str]:
    """Column ``name`` by key for the stored jobs among ``keys`` where it is not NULL."""
    column = jobs.c[name]
    found: dict[str, str] = {}
    wanted = sorted(set(keys))
    if caps.array_binds:
        # One array parameter: rendering and binding a thousand IN parameters cost more than the query.
        any_key = jobs.c.key == sa.any_(sa.bindparam("keys", type_=postgresql.ARRAY(sa.Text)))
        query = sa.select(jobs.c.key, column).where(any_key, column.isnot(None))
        return {key: value for key, value in await conn.execute(query, {"keys": wanted})}
    step = caps.max_bind_params // 2
    for start in range(0, len(wanted), step):
        query = sa.select(jobs.c.key, column).where(
            jobs.c.key.in_(wanted[start : start + step]), column.isnot(None)
        )
        found.update({key: value for key, value in await conn.execute(query)})
    return found
