"""The ``JobStore`` contract for the job lifecycle, feed health and the change log (issue 11), written
once against the ABC and run over every backend. Each test names the contract sentence it checks
(``store/base.py``: the class docstring, ``finalize_entry``, ``upsert_batch``, ``expire_due_jobs``…).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern
from pytest_lazy_fixtures import lf

from fixtures.sql import run_sql
from jobimporter.models import (
    BatchKey,
    ChangeKind,
    EntryStatus,
    ExpiryReason,
    FailureKind,
    Feed,
    ImportEntry,
    ImportRun,
    ItemFailure,
    JobChange,
    JobRecord,
    JobStatus,
    Trigger,
    UpsertResult,
    new_id,
    utcnow,
)
from jobimporter.store import JobStore
from jobimporter.store.base import EntryLifecycle, JobQuery
from jobimporter.store.mongo import MongoStore
from jobimporter.store.mongo_changes import NewChange, append_changes
from jobimporter.store.mongo_errors import WRITE_CONFLICT
from jobimporter.store.mongo_jobs import LIFECYCLE_FIELDS
from jobimporter.store.mongo_schema import BATCHES, IMPORT_LOGS, JOBS, SCHEMA, SCHEMA_VERSION, schema_version
from jobimporter.store.sql import SQLStore

from .conftest import started_store
from .test_store import DAY, T0, job, jobs, source, unwritten

HOUR = timedelta(hours=1)
GRACE = DAY.total_seconds()


# ---------------------------------------------------------------- builders


async def feeds(store: JobStore, *names: str) -> list[Feed]:
    return await store.sync_feeds([source(name, f"https://{name}.example/feed") for name in names])


async def new_entry(store: JobStore, feed: Feed, at: datetime) -> ImportEntry:
    run_id = new_id("run")
    entry = ImportEntry(
        id=new_id("imp"), run_id=run_id, feed_id=feed.id, url=feed.url, name=feed.name, started_at=at
    )
    await store.create_run(ImportRun(run_id=run_id, trigger=Trigger.CRON, started_at=at, feeds=[entry]))
    return entry


async def write(
    store: JobStore, entry: ImportEntry, batches: Sequence[Sequence[JobRecord]], at: datetime, **extra: object
) -> list[UpsertResult]:
    """Batches 1..n of the entry, then the entry's batch count (as the feed job records it)."""
    results = [
        await store.upsert_batch(BatchKey(entry.id, n), entry.feed_id, list(batch), now=at, **extra)  # type: ignore[arg-type]
        for n, batch in enumerate(batches, start=1)
    ]
    await store.update_entry(entry.id, {"status": EntryStatus.PROCESSING, "batches": len(batches)})
    return results


async def close(
    store: JobStore,
    entry: ImportEntry,
    at: datetime,
    *,
    complete: bool = True,
    grace: float = GRACE,
    status: EntryStatus = EntryStatus.COMPLETED,
    failure: FailureKind | None = None,
    pause_after: int = 5,
    error: str | None = None,
) -> ImportEntry:
    lifecycle = EntryLifecycle(
        complete=complete, expire_after_s=grace, failure=failure, pause_after=pause_after
    )
    return await store.finalize_entry(
        entry.id, status=status, finished_at=at, error=error, lifecycle=lifecycle
    )


async def imported(
    store: JobStore,
    feed: Feed,
    records: Sequence[JobRecord],
    at: datetime,
    *,
    batch: int = 3,
    **closing: object,
) -> ImportEntry:
    """One whole import of ``feed`` listing ``records`` (in batches of ``batch``), closed at ``at``."""
    entry = await new_entry(store, feed, at)
    chunks = [records[i : i + batch] for i in range(0, len(records), batch)]
    await write(store, entry, chunks, at)
    return await close(store, entry, at, **closing)  # type: ignore[arg-type]


async def changes(store: JobStore, after: int = 0) -> list[JobChange]:
    return await store.list_changes(after=after, limit=10_000)


def kinds(found: Sequence[JobChange]) -> list[tuple[str, ChangeKind]]:
    return [(change.job_key, change.kind) for change in found]


async def status_of(store: JobStore, n: int) -> tuple[JobStatus, datetime | None, ExpiryReason | None]:
    stored = await store.get_job(job(n).key)
    return stored["status"], stored["expired_at"], stored["expiry_reason"]


# ---------------------------------------------------------------- expiry


async def test_a_complete_import_unlinks_the_jobs_its_feed_no_longer_lists_once(store: JobStore) -> None:
    """finalize_entry: "every live link of the entry's feed to a job that none of its batches listed
    goes dead, and expired is how many ... finalizing it again keeps expired as it was"; the job
    waits out its grace period (unlisted_at = finished_at); links stay."""
    (feed,) = await feeds(store, "a")
    await imported(store, feed, jobs(range(6)), T0)
    second = await imported(store, feed, jobs(range(4)), T0 + HOUR)

    assert (second.expired, second.unchanged, second.total_fetched) == (2, 4, 0)
    gone = await store.get_job(job(5).key)
    assert (gone["status"], gone["unlisted_at"], gone["feed_ids"]) == (JobStatus.ACTIVE, T0 + HOUR, [feed.id])
    assert (await store.get_job(job(1).key))["unlisted_at"] is None

    again = await close(store, second, T0 + 2 * HOUR)
    assert again.expired == 2
    third = await imported(store, feed, jobs(range(4)), T0 + 3 * HOUR)
    assert third.expired == 0  # already gone: each leaves once
    assert ChangeKind.EXPIRED not in {c.kind for c in await changes(store)}  # the grace period runs


async def test_a_zero_grace_period_expires_at_once_and_logs_it(store: JobStore) -> None:
    """finalize_entry: "or with 0 expires at once (expired_at = finished_at, LEFT_FEEDS, change expired)"."""
    (feed,) = await feeds(store, "a")
    await imported(store, feed, jobs(range(3)), T0, grace=0)
    before = await store.last_change_cursor()
    second = await imported(store, feed, jobs([0]), T0 + HOUR, grace=0)

    assert second.expired == 2
    assert await status_of(store, 2) == (JobStatus.EXPIRED, T0 + HOUR, ExpiryReason.LEFT_FEEDS)
    logged = await changes(store, before)
    assert kinds(logged) == [(job(1).key, ChangeKind.EXPIRED), (job(2).key, ChangeKind.EXPIRED)]
    assert {(c.at, c.feed_id, c.entry_id, c.reason) for c in logged} == {
        (T0 + HOUR, feed.id, second.id, ExpiryReason.LEFT_FEEDS.value)
    }
    await close(store, second, T0 + 2 * HOUR, grace=0)
    assert await changes(store, before) == logged  # a repeated finalize appends nothing
    assert await store.count_jobs(query=JobQuery(status=JobStatus.EXPIRED)) == 2
    assert await store.count_jobs(query=JobQuery(status=JobStatus.ACTIVE)) == 1


async def test_expire_due_jobs_after_the_grace_period_exactly_once(store: JobStore) -> None:
    """expire_due_jobs: jobs without a live link whose unlisted_at is expire_after_s or more before now:
    expired_at = unlisted_at + expire_after_s, LEFT_FEEDS; safe under concurrent callers."""
    (feed,) = await feeds(store, "a")
    await imported(store, feed, jobs(range(3)), T0)
    await imported(store, feed, jobs([0]), T0 + HOUR)
    before = await store.last_change_cursor()

    assert await store.expire_due_jobs(T0 + HOUR + DAY - timedelta(seconds=1), expire_after_s=GRACE) == 0
    done = await asyncio.gather(
        *(store.expire_due_jobs(T0 + 2 * DAY, expire_after_s=GRACE) for _ in range(4))
    )
    assert sum(done) == 2
    assert await status_of(store, 1) == (JobStatus.EXPIRED, T0 + HOUR + DAY, ExpiryReason.LEFT_FEEDS)
    assert await status_of(store, 0) == (JobStatus.ACTIVE, None, None)
    logged = await changes(store, before)
    assert kinds(logged) == [(job(1).key, ChangeKind.EXPIRED), (job(2).key, ChangeKind.EXPIRED)]
    assert {(c.at, c.reason, c.feed_id) for c in logged} == {
        (T0 + HOUR + DAY, ExpiryReason.LEFT_FEEDS.value, None)
    }
    assert await store.expire_due_jobs(T0 + 3 * DAY, expire_after_s=GRACE) == 0


async def test_a_source_end_date_expires_the_job_at_that_time(store: JobStore) -> None:
    """expire_due_jobs: "those whose end date (expires_at) is at or before now: expired_at = expires_at,
    END_DATE" — even while its feed lists it, and a feed that goes on listing it does not revive it."""
    (feed,) = await feeds(store, "a")
    ends = T0 + 5 * HOUR
    records = [job(0, expires_at=ends), job(1, expires_at=T0 + 30 * DAY), job(2)]
    await imported(store, feed, records, T0)

    assert await store.expire_due_jobs(ends - timedelta(microseconds=1), expire_after_s=GRACE) == 0
    assert await store.expire_due_jobs(ends + HOUR, expire_after_s=GRACE) == 1
    assert await status_of(store, 0) == (JobStatus.EXPIRED, ends, ExpiryReason.END_DATE)
    (ended,) = [c for c in await changes(store) if c.kind is ChangeKind.EXPIRED]
    assert (ended.job_key, ended.at, ended.reason) == (job(0).key, ends, ExpiryReason.END_DATE.value)

    await imported(store, feed, records, T0 + 6 * HOUR)  # still listed, end date passed: stays expired
    assert (await status_of(store, 0))[0] is JobStatus.EXPIRED
    extended = [job(0, expires_at=T0 + 10 * DAY), *records[1:]]
    await imported(store, feed, extended, T0 + 7 * HOUR)  # a later end date: active again
    assert await status_of(store, 0) == (JobStatus.ACTIVE, None, None)
    assert kinds(await changes(store, ended.cursor)) == [
        (job(0).key, ChangeKind.UPDATED),
        (job(0).key, ChangeKind.REACTIVATED),
    ]


async def test_a_job_that_comes_back_is_active_again(store: JobStore) -> None:
    """finalize_entry: "every job a recorded batch of the entry listed ... that is expired while its
    end date has not passed becomes active again (change reactivated); one waiting out its grace
    period stops waiting"; the dead link is live again (upsert_batch)."""
    (feed,) = await feeds(store, "a")
    await imported(store, feed, jobs(range(3)), T0, grace=0)
    await imported(store, feed, jobs([0]), T0 + HOUR, grace=0)  # 1 and 2 expire at once
    before = await store.last_change_cursor()

    back = await imported(store, feed, jobs(range(3)), T0 + 2 * HOUR, grace=0)

    assert back.expired == 0
    assert await status_of(store, 1) == (JobStatus.ACTIVE, None, None)
    assert kinds(await changes(store, before)) == [
        (job(1).key, ChangeKind.REACTIVATED),
        (job(2).key, ChangeKind.REACTIVATED),
    ]
    gone_again = await imported(store, feed, jobs(range(2)), T0 + 3 * HOUR, grace=0)
    assert gone_again.expired == 1  # the revived link went dead again

    (waiting,) = await feeds(store, "b")
    await imported(store, waiting, jobs([7, 8]), T0)
    await imported(store, waiting, jobs([7]), T0 + HOUR)
    assert (await store.get_job(job(8).key))["unlisted_at"] == T0 + HOUR
    await imported(store, waiting, jobs([7, 8]), T0 + 2 * HOUR)
    assert (await store.get_job(job(8).key))["unlisted_at"] is None
    assert await store.expire_due_jobs(T0 + 9 * DAY, expire_after_s=GRACE) == 0  # job 8 waits no more


async def test_a_failed_or_cut_short_import_unlinks_nothing(store: JobStore) -> None:
    """finalize_entry: "An entry that failed, lost a batch, or whose caller did not say complete
    unlinks nothing"."""
    (feed,) = await feeds(store, "a")
    await imported(store, feed, jobs(range(6)), T0, grace=0)

    failed = await imported(
        store, feed, jobs(range(2)), T0 + HOUR, grace=0, complete=False, status=EntryStatus.FAILED
    )
    assert failed.expired == 0

    cut = await new_entry(store, feed, T0 + 2 * HOUR)
    await write(store, cut, [jobs(range(3))], T0 + 2 * HOUR)
    await store.update_entry(cut.id, {"batches": 2})  # batch 2 never recorded its result
    lost = await close(store, cut, T0 + 2 * HOUR, grace=0)
    assert lost.expired == 0

    assert await store.count_jobs(query=JobQuery(status=JobStatus.ACTIVE)) == 6
    assert ChangeKind.EXPIRED not in {c.kind for c in await changes(store)}
    assert [(await store.get_job(job(n).key))["unlisted_at"] for n in range(6)] == [None] * 6


async def test_an_item_that_failed_after_it_was_identified_keeps_its_job_listed(store: JobStore) -> None:
    """upsert_batch: the keys it records include "the failures that carry a key"."""
    (feed,) = await feeds(store, "a")
    await imported(store, feed, jobs(range(3)), T0, grace=0)
    entry = await new_entry(store, feed, T0 + HOUR)
    broken = ItemFailure(job(2).external_id, "normalize: no title", key=job(2).key)
    await store.upsert_batch(BatchKey(entry.id, 0), feed.id, [], [broken], now=T0 + HOUR)
    await write(store, entry, [jobs([0])], T0 + HOUR)

    closed = await close(store, entry, T0 + HOUR, grace=0)

    assert (closed.expired, closed.failed) == (1, 1)  # job 1 left; job 2 is listed, only broken
    assert (await status_of(store, 2))[0] is JobStatus.ACTIVE
    assert (await status_of(store, 1))[0] is JobStatus.EXPIRED


async def test_a_job_stays_active_while_another_feed_lists_it(store: JobStore) -> None:
    """The class docstring: "A job is active while it has a live link"."""
    a, b = await feeds(store, "a", "b")
    await imported(store, a, jobs(range(4)), T0, grace=0)
    await imported(store, b, jobs(range(2, 6)), T0, grace=0)

    dropped_by_a = await imported(store, a, jobs([0]), T0 + HOUR, grace=0)
    assert dropped_by_a.expired == 3  # links 1, 2, 3 of feed a
    assert [(await status_of(store, n))[0] for n in range(6)] == [
        JobStatus.ACTIVE, JobStatus.EXPIRED, JobStatus.ACTIVE, JobStatus.ACTIVE, JobStatus.ACTIVE,
        JobStatus.ACTIVE,
    ]  # fmt: skip
    await imported(store, b, jobs([5]), T0 + 2 * HOUR, grace=0)
    assert [(await status_of(store, n))[0] for n in range(2, 6)] == [JobStatus.EXPIRED] * 3 + [
        JobStatus.ACTIVE
    ]
    assert (await store.get_job(job(3).key))["feed_ids"] == sorted([a.id, b.id])  # links stay, dead


async def test_feeds_sharing_jobs_closing_at_once_expire_each_job_once(store: JobStore) -> None:
    """finalize_entry: "Correct under concurrent finalizes of feeds that share jobs: a job every one of
    them dropped is left without a live link and expires once" (truly concurrent on PostgreSQL)."""
    shared = jobs(range(40))
    many = await feeds(store, *(f"f{i}" for i in range(4)))
    for feed in many:
        await imported(store, feed, shared, T0, grace=0, batch=20)
    before = await store.last_change_cursor()
    kept = jobs(range(30))  # every feed drops 30..39; feed 0 also drops 20..29, which the others keep
    entries = [await new_entry(store, feed, T0 + HOUR) for feed in many]
    for i, entry in enumerate(entries):
        await write(store, entry, [kept[:20]] if i == 0 else [kept[:20], kept[20:]], T0 + HOUR)

    closed = await asyncio.gather(*(close(store, entry, T0 + HOUR, grace=0) for entry in entries))

    assert [entry.expired for entry in closed] == [20, 10, 10, 10]
    logged = await changes(store, before)
    assert sorted(kinds(logged)) == [(job(n).key, ChangeKind.EXPIRED) for n in range(30, 40)]
    assert await store.count_jobs(query=JobQuery(status=JobStatus.ACTIVE)) == 30


async def test_a_redelivered_batch_adds_nothing_to_the_count_or_the_log(store: JobStore) -> None:
    """upsert_batch's exactly-once applies to the keys it lists and the changes it appends."""
    (feed,) = await feeds(store, "a")
    await imported(store, feed, jobs(range(6)), T0, grace=0)
    before = await store.last_change_cursor()
    entry = await new_entry(store, feed, T0 + HOUR)
    await write(store, entry, [jobs(range(3), "v2")], T0 + HOUR)
    again = await store.upsert_batch(BatchKey(entry.id, 1), feed.id, jobs(range(6), "v3"), now=T0 + 2 * HOUR)

    closed = await close(store, entry, T0 + HOUR, grace=0)

    assert again == UpsertResult(updated=3)
    assert (closed.updated, closed.expired) == (3, 3)
    assert sorted(kinds(await changes(store, before))) == sorted(
        [(job(n).key, ChangeKind.UPDATED) for n in range(3)]
        + [(job(n).key, ChangeKind.EXPIRED) for n in range(3, 6)]
    )


async def test_purge_expired_deletes_old_expired_jobs_and_keeps_their_changes(store: JobStore) -> None:
    """purge_expired: "Delete the jobs expired before expired_before with their feed links ...; their
    changes stay in the log"."""
    (feed,) = await feeds(store, "a")
    await imported(store, feed, jobs(range(3)), T0, grace=0)
    await imported(store, feed, jobs([0]), T0 + HOUR, grace=0)

    assert await store.purge_expired(T0 + HOUR) == 0
    assert await store.purge_expired(T0 + 2 * HOUR) == 2
    assert await store.count_jobs() == 1
    assert await store.count_jobs(feed_id=feed.id) == 1
    assert len(await store.list_changes(job_key=job(1).key)) == 2  # new, expired


# ---------------------------------------------------------------- the change log


async def test_the_change_log_names_each_change_and_the_fields_an_update_changed(store: JobStore) -> None:
    """Class docstring: new and updated "with fields, the names of the JobRecord fields whose values
    differ, the two hashes aside", appended in the transaction of the change; unchanged ones append
    nothing."""
    (feed,) = await feeds(store, "a")
    first = await imported(store, feed, jobs(range(3)), T0)
    edited = [job(0, title="Engineer 0 (senior)"), job(1, salary_min=2000.0, locations=["Paris"]), job(2)]
    second = await imported(store, feed, edited, T0 + HOUR)

    logged = await changes(store)
    assert kinds(logged) == [(job(n).key, ChangeKind.NEW) for n in range(3)] + [
        (job(0).key, ChangeKind.UPDATED),
        (job(1).key, ChangeKind.UPDATED),
    ]
    assert [c.fields for c in logged[3:]] == [["title"], ["locations", "salary_min"]]
    assert {(c.at, c.feed_id, c.entry_id) for c in logged[:3]} == {(T0, feed.id, first.id)}
    assert {(c.at, c.entry_id) for c in logged[3:]} == {(T0 + HOUR, second.id)}
    cursors = [c.cursor for c in logged]
    assert cursors == sorted(cursors) and len(set(cursors)) == 5
    assert await store.last_change_cursor() == cursors[-1]

    last = await store.last_change_cursor()
    await imported(store, feed, edited, T0 + 2 * HOUR)
    assert await changes(store, last) == []


async def test_list_changes_pages_by_cursor_and_filters_by_job(store: JobStore) -> None:
    """list_changes: "cursor greater than after, in cursor order, at most limit (of one job when
    job_key is given)"."""
    assert await store.last_change_cursor() == 0
    (feed,) = await feeds(store, "a")
    await imported(store, feed, jobs(range(5)), T0)
    await imported(store, feed, [job(2, "v2")], T0 + HOUR, grace=0)

    pages, after = [], 0
    while page := await store.list_changes(after=after, limit=2):
        pages.append(page)
        after = page[-1].cursor
    assert [len(p) for p in pages] == [2, 2, 2, 2, 2]  # 5 new, 1 updated, 4 expired
    seen = [c for p in pages for c in p]
    assert seen == await changes(store)
    assert [c.kind for c in await store.list_changes(job_key=job(2).key)] == [
        ChangeKind.NEW,
        ChangeKind.UPDATED,
    ]
    assert [c.kind for c in await store.list_changes(job_key=job(4).key)] == [
        ChangeKind.NEW,
        ChangeKind.EXPIRED,
    ]


async def test_an_unchanged_reimport_closes_without_writing_job_rows(store: JobStore) -> None:
    """upsert_batch: "A stored record whose content is unchanged writes no job row, whatever the
    lifecycle" — closing the entries of a whole unchanged import writes none either (xmin on
    PostgreSQL, the change stream on MongoDB) and appends nothing."""
    (feed,) = await feeds(store, "a")
    records = jobs(range(12))
    await imported(store, feed, records, T0)
    last = await store.last_change_cursor()

    async with unwritten(store, [r.key for r in records]):
        again = await imported(store, feed, records, T0 + HOUR)
        entry = await new_entry(store, feed, T0 + 2 * HOUR)  # raw-hash matches, as the feed job sends them
        await write(store, entry, [[]], T0 + 2 * HOUR, known=[(r.key, r.external_id) for r in records])
        known = await close(store, entry, T0 + 2 * HOUR)

    assert (again.unchanged, again.expired, known.unchanged, known.expired) == (12, 0, 12, 0)
    assert await changes(store, last) == []


# ---------------------------------------------------------------- feed health


async def failing(store: JobStore, feed: Feed, at: datetime, failure: FailureKind, **closing: object) -> None:
    entry = await new_entry(store, feed, at)
    await close(
        store, entry, at, complete=False, status=EntryStatus.FAILED, failure=failure,
        error=f"fetch: HTTP {404 if failure is FailureKind.PERMANENT else 503}", **closing,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_a_feed_pauses_after_n_permanent_failures_never_for_transient_ones(store: JobStore) -> None:
    """finalize_entry: "when it is permanent and the feed has lifecycle.pause_after permanent failures
    ... the feed is paused: enabled false, paused_at = finished_at and a paused_reason"; FeedHealth
    counts "permanent failures since its last success and since it was last resumed"."""
    gone, flaky = await feeds(store, "gone", "flaky")
    for hour in range(8):
        await failing(store, flaky, T0 + hour * HOUR, FailureKind.TRANSIENT, pause_after=3)
    await failing(store, gone, T0, FailureKind.PERMANENT, pause_after=3)
    await imported(store, gone, jobs([1]), T0 + HOUR)  # a success resets the count
    await failing(store, gone, T0 + 2 * HOUR, FailureKind.PERMANENT, pause_after=3)
    await failing(
        store, gone, T0 + 3 * HOUR, FailureKind.TRANSIENT, pause_after=3
    )  # neither counts nor resets
    await failing(store, gone, T0 + 4 * HOUR, FailureKind.PERMANENT, pause_after=3)
    assert (await store.get_feed(gone.id)).enabled
    assert (await store.feed_health([gone.id]))[gone.id]["permanent_failures"] == 2

    await failing(store, gone, T0 + 5 * HOUR, FailureKind.PERMANENT, pause_after=3)

    paused = await store.get_feed(gone.id)
    assert (paused.enabled, paused.paused_at) == (False, T0 + 5 * HOUR)
    assert paused.paused_reason is not None and "3 imports in a row" in paused.paused_reason
    assert "fetch: HTTP 404" in paused.paused_reason
    health = await store.feed_health([gone.id, flaky.id])
    assert (health[gone.id]["permanent_failures"], health[flaky.id]["permanent_failures"]) == (3, 0)
    assert (await store.get_feed(flaky.id)).enabled


async def test_resuming_a_paused_feed_clears_the_pause_and_counts_afresh(store: JobStore) -> None:
    """update_feed: "enabled: True resumes a feed its health paused: paused_at and paused_reason are
    cleared, and its permanent failures are counted afresh"; sync_feeds: "A feed its health paused ...
    stays disabled whatever sources say"."""
    (feed,) = await feeds(store, "gone")
    for hour in range(2):
        await failing(store, feed, T0 + hour * HOUR, FailureKind.PERMANENT, pause_after=2)
    assert (await store.get_feed(feed.id)).paused_at == T0 + HOUR
    (synced,) = await store.sync_feeds([source("gone", feed.url, enabled=True)])
    assert (synced.enabled, synced.paused_at) == (False, T0 + HOUR)

    resumed = await store.update_feed(feed.id, {"enabled": True})

    assert (resumed.enabled, resumed.paused_at, resumed.paused_reason) == (True, None, None)
    assert (await store.feed_health([feed.id]))[feed.id]["permanent_failures"] == 0
    after_resume = utcnow()  # the store stamps the resume with its own clock
    await failing(store, feed, after_resume + HOUR, FailureKind.PERMANENT, pause_after=2)
    assert (await store.get_feed(feed.id)).enabled  # one failure since the resume
    await failing(store, feed, after_resume + 2 * HOUR, FailureKind.PERMANENT, pause_after=2)
    assert not (await store.get_feed(feed.id)).enabled


async def test_reopening_an_entry_forgets_how_it_failed(store: JobStore) -> None:
    """reopen_entry: "error, its failure kind ... cleared"."""
    (feed,) = await feeds(store, "gone")
    entry = await new_entry(store, feed, T0)
    await close(store, entry, T0, complete=False, status=EntryStatus.FAILED, failure=FailureKind.PERMANENT)
    assert (await store.feed_health([feed.id]))[feed.id]["permanent_failures"] == 1
    await store.reopen_entry(entry.id)
    assert (await store.feed_health([feed.id]))[feed.id]["permanent_failures"] == 0


@pytest.mark.parametrize("pause_after", [0])
async def test_pause_after_zero_never_pauses(store: JobStore, pause_after: int) -> None:
    (feed,) = await feeds(store, "gone")
    for hour in range(6):
        await failing(store, feed, T0 + hour * HOUR, FailureKind.PERMANENT, pause_after=pause_after)
    assert (await store.get_feed(feed.id)).enabled


SLOW_FIRST_CHANGE = (
    "CREATE SEQUENCE slow_first_change",
    (
        "CREATE FUNCTION slow_first_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF nextval('slow_first_change') = 1 THEN PERFORM pg_sleep(1); END IF; RETURN NEW; END $$"
    ),
    (
        "CREATE TRIGGER slow_first_change BEFORE INSERT ON changes FOR EACH ROW "
        "EXECUTE FUNCTION slow_first_change()"
    ),
)


# PostgreSQL here (SQLite's writers take turns, so commit order is cursor order there by construction);
# MongoDB has its own version below, holding an appending transaction open instead of a trigger.
@pytest.mark.parametrize("store", [lf("postgres_store")], ids=["postgres"])
async def test_changes_become_visible_in_cursor_order(store: JobStore) -> None:
    """Class docstring: "changes become visible in cursor order (a change commits only after every
    change with a smaller cursor is visible)". On PostgreSQL a trigger (from outside) holds the first
    batch's append for a second after its cursor was drawn, while a second batch appends behind it; a
    reader polling all the while never sees a cursor it would have to go back for."""
    assert isinstance(store, SQLStore)
    await run_sql(store.engine.url.render_as_string(hide_password=False), *SLOW_FIRST_CHANGE)
    reads: list[list[int]] = []
    writing = asyncio.gather(
        store.upsert_batch(BatchKey("ent_a", 1), "feed_a", jobs(range(5)), now=T0),
        _after_a_moment(store.upsert_batch(BatchKey("ent_b", 1), "feed_b", jobs(range(5, 10)), now=T0)),
    )
    while not writing.done():
        reads.append([c.cursor for c in await store.list_changes(after=0, limit=100)])
        await asyncio.sleep(0.01)
    await writing
    final = [c.cursor for c in await store.list_changes(after=0, limit=100)]
    assert len(final) == 10
    assert all(final[: len(read)] == read for read in reads), reads  # every read a prefix of the log


async def _after_a_moment(work: Any) -> Any:
    await asyncio.sleep(0.3)  # starts while the first batch's append is held by the trigger
    return await work


class _CounterConflicts(monitoring.CommandListener):
    """Sets ``met`` once a command of the client drawing change cursors (``findAndModify`` of the
    counter) fails with a write conflict. pymongo's asyncio client calls it on the event loop."""

    def __init__(self) -> None:
        self.met = asyncio.Event()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if event.command_name == "findAndModify" and event.failure.get("code") == WRITE_CONFLICT:
            self.met.set()


async def test_changes_become_visible_in_cursor_order_on_mongodb(mongo_database_url: str) -> None:
    """The same promise on MongoDB, where cursors come from a counter document written in the
    appending transaction (``mongo_changes``). The test holds a transaction open that has appended a
    change (drawn its cursor) through the store's own ``append_changes``; a batch then appends behind
    it. Until the held one commits, the batch's append meets a write conflict on the counter (seen by
    a command listener on the store's client) and nothing is visible; afterwards the held change
    comes first, and a reader polling all the while only ever sees a prefix of the log."""
    conflicts = _CounterConflicts()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_database_url, event_listeners=[conflicts]
    )
    async with MongoStore(client) as store:
        # A batch first: the first documents with lists mark their indexes multikey, a catalog
        # write that concurrent transactions would meet as a write conflict of their own.
        await store.upsert_batch(BatchKey("ent_0", 1), "feed_0", [job(100)], now=T0)
        reads: list[list[int]] = []
        async with client.start_session() as held:
            await held.start_transaction(
                read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority")
            )
            await append_changes(store.database, [NewChange(job(100).key, ChangeKind.UPDATED, T0)], held)
            writing = asyncio.create_task(
                store.upsert_batch(BatchKey("ent_b", 1), "feed_b", jobs(range(5)), now=T0)
            )
            met = asyncio.create_task(conflicts.met.wait())
            await asyncio.wait([met, writing], timeout=30, return_when=asyncio.FIRST_COMPLETED)
            met.cancel()
            reads.append([c.cursor for c in await store.list_changes(after=1, limit=100)])
            await held.commit_transaction()
        while not writing.done():
            reads.append([c.cursor for c in await store.list_changes(after=1, limit=100)])
            await asyncio.sleep(0.01)  # a reader polling; what it reads is the point
        await writing
        final = await store.list_changes(after=1, limit=100)
    await client.close()
    assert reads[0] == []  # the batch could not commit behind the held change
    assert [c.job_key for c in final] == [job(100).key, *(job(n).key for n in range(5))]
    assert [c.cursor for c in final] == list(range(2, 8))
    assert all([c.cursor for c in final][: len(read)] == read for read in reads), reads


async def test_a_version_1_mongodb_database_gets_the_lifecycle(mongo_database_url: str) -> None:
    """Schema version 2 on data of version 1 (``mongo_schema``): stored jobs are active and every feed
    they were seen in still lists them; an entry open during the upgrade unlinks nothing when it
    closes (its batches never recorded what they listed); the next import unlinks as usual."""
    async with started_store(mongo_database_url) as store:
        assert isinstance(store, MongoStore)
        (feed,) = await feeds(store, "a")
        await imported(store, feed, jobs(range(4)), T0)
        open_entry = await new_entry(store, feed, T0 + HOUR)
        await write(store, open_entry, [jobs(range(2))], T0 + HOUR)
        db = store.database  # now as version 1 left it: no lifecycle fields, nothing listed
        await db[JOBS].update_many({}, {"$unset": dict.fromkeys([*LIFECYCLE_FIELDS, "live_feed_ids"], "")})
        await db[BATCHES].update_many({}, {"$unset": {"job_keys": ""}})
        await db[IMPORT_LOGS].update_many({}, {"$unset": {"links_checked_at": ""}})
        await db[SCHEMA].update_one({"_id": "version"}, {"$set": {"version": 1}})

    async with started_store(mongo_database_url) as store:
        assert isinstance(store, MongoStore)
        assert await schema_version(store.database) == SCHEMA_VERSION
        upgraded = await store.get_job(job(3).key)
        assert (upgraded["status"], upgraded["unlisted_at"], upgraded["feed_ids"]) == (
            JobStatus.ACTIVE, None, [feed.id],
        )  # fmt: skip
        assert await store.count_jobs(query=JobQuery(status=JobStatus.ACTIVE)) == 4
        closed = await close(store, open_entry, T0 + HOUR, grace=0)
        assert (closed.unchanged, closed.expired) == (2, 0)
        later = await imported(store, feed, jobs([0]), T0 + 2 * HOUR, grace=0)
        assert later.expired == 3
        assert await store.count_jobs(query=JobQuery(status=JobStatus.EXPIRED)) == 3
