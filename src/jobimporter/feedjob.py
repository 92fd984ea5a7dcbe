"""The feed job: fetch → parse → identify → fan out batch jobs; then, once every batch has settled,
finalize the feed's import entry (and the run, when it was the last entry).

It only streams: each item is parsed and identified here, and looked up by its raw hash; the items
that changed travel raw to batch jobs, which normalize them, so every worker process (on every
machine) shares a big feed's normalizing. Batches of raw-hash matches are written here.

One BullMQ job does both steps. After the fan-out it stores ``step = "finalize"`` in its data and
waits for its children (``moveToWaitingChildren``); BullMQ runs it again when the last child
completes or fails for good. No polling.

Failure rules:
- a transient fetch error (timeout, connection, 429, 5xx) is retried with exponential backoff,
  never sooner than the server's Retry-After; after the last attempt the entry fails with the reason;
- a permanent one (404, 410, not a feed, too large) fails the entry at once (UnrecoverableError);
- a parse error mid-document fails the entry with the reason, keeping the items read before it;
- an invalid item, or a duplicate of an earlier item in the same document, fails alone.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, BinaryIO, Self, cast

from bullmq.custom_errors import DelayedError, UnrecoverableError, WaitingChildrenError

from jobimporter.batchjob import PARSING, write_batch
from jobimporter.context import ImportContext
from jobimporter.errors import FeedError, FetchError, FetchHTTPError, ItemError, StoreError
from jobimporter.fetch import FetchResult, fetch_feed
from jobimporter.lifecycle import entry_lifecycle, failure_of, parse_failure
from jobimporter.models import (
    BatchKey,
    EntryStatus,
    FailureKind,
    Feed,
    FeedFormat,
    ImportEntry,
    ItemFailure,
    Priority,
    RawItem,
    utcnow,
)
from jobimporter.normalize import NORMALIZER_VERSION, Identity, identify
from jobimporter.paging import PageFetcher, page_fetch
from jobimporter.parse import parse_feed
from jobimporter.queue import BATCH_JOB, batch_job_id, batch_job_options
from jobimporter.runs import close_entry, publish_entry
from jobimporter.sources import publisher_host
from jobimporter.store.base import EntryChanges, EntryLifecycle

log = logging.getLogger(__name__)

# Items sent to Redis per addBulk round trip: enough to amortize the trip, few enough that the
# serialized batches held in memory at once stay a few MB whatever the feed's size.
_ITEMS_PER_ENQUEUE = 1000
# Items identified per raw-hash lookup: one database round trip decides which of them need normalizing.
_ITEMS_PER_LOOKUP = 1000
# A feed's items queued for batch jobs and not yet written, at most (~3 KB each in Redis): enough to
# keep dozens of worker processes busy, and what bounds Redis's memory however big the feed is.
_ITEMS_AHEAD = 10_000
# How often a feed job that is that far ahead checks whether its batches have made room.
_ROOM_CHECK_S = 0.05
# Batches of known items the feed job writes at once: enough to keep the store busy while it
# parses, few enough to leave the pool's connections to the batch workers.
_KNOWN_WRITES_IN_FLIGHT = 3
# Batches of known items waiting for a connection before parsing waits for them (~100 items each).
_KNOWN_WRITES_QUEUED = 50


@dataclass(slots=True)
class FeedJobData:
    """The feed job's data; it carries what the finalize step needs from the fan-out step."""

    run_id: str
    entry_id: str
    feed_id: str
    url: str
    name: str
    format: str = FeedFormat.AUTO.value
    priority: str = Priority.NORMAL.value
    step: str = "fetch"
    batch_size: int | None = None  # fixed by the first fan-out attempt, reused by every retry
    batch_sizes: list[int] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None
    parse_error: str | None = None
    host_slot: int | None = None  # the politeness slot reserved when the job stepped aside (Redis ms)
    host_slot_attempt: int | None = None  # the attempt that reserved it; a later attempt takes anew

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> FeedJobData:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(slots=True)
class _Chunk:
    """One slice of the document: identified items, items that failed, and whether it ended."""

    items: list[tuple[RawItem, Identity]] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)
    done: bool = False
    error: str | None = None


async def process_feed_job(ctx: ImportContext, job: Any, token: str) -> dict[str, Any]:
    data = FeedJobData.from_job(job.data)
    if data.step == "finalize":
        # Normally BullMQ runs us again once every batch settled. But a worker that died between
        # storing this step and waiting for the batches left a job that is retaken with batches
        # still pending: wait for them first, or they would count as lost.
        if await job.moveToWaitingChildren(token, {}):
            raise WaitingChildrenError()
        return await finalize(ctx, data)
    entry = await ctx.store.get_entry(data.entry_id)
    if entry.status.is_final:  # re-delivered after it was finished: nothing left to do
        return {"status": entry.status.value}
    return await _fetch_and_fan_out(ctx, job, token, data, entry)


async def _fetch_and_fan_out(
    ctx: ImportContext, job: Any, token: str, data: FeedJobData, entry: ImportEntry
) -> dict[str, Any]:
    feed = await ctx.store.get_feed(data.feed_id)
    await _wait_for_host(ctx, job, token, data)
    # The request leaves at the host's slot; the entry is marked fetching meanwhile, not before it.
    outcome, marked = await asyncio.gather(
        _fetch(ctx, job, data, feed), _mark_fetching(ctx, data, entry), return_exceptions=True
    )
    if isinstance(marked, BaseException):
        if isinstance(outcome, FetchResult):
            outcome.close()
        raise marked
    if isinstance(outcome, FetchError):
        return await _fail_fetch(ctx, job, data, outcome)
    if isinstance(outcome, BaseException):
        raise outcome
    with outcome as result:
        if result.not_modified:
            return await _finish_not_modified(ctx, data, result)
        await _mark_processing(ctx, data, result)
        if data.batch_size is None:
            # Batch ids are numbered by position, so a retried fan-out must cut the items exactly as
            # the first attempt did, even on a worker configured with another batch size.
            data.batch_size = ctx.batch_size
            await job.updateData(asdict(data))
        await _fan_out(ctx, job, data, result, feed)
    await job.updateData(asdict(data))
    if await job.moveToWaitingChildren(token, {}):
        raise WaitingChildrenError()
    return await finalize(ctx, data)


async def _fetch(ctx: ImportContext, job: Any, data: FeedJobData, feed: Feed) -> FetchResult | FetchError:
    # Later attempts fetch unconditionally: batches of an earlier attempt may already be queued,
    # and a 304 would leave them without a finalize step that counts them.
    conditional = job.attemptsMade == 0
    try:
        return await fetch_feed(
            ctx.http,
            data.url,
            limits=ctx.limits,
            etag=feed.etag if conditional else None,
            last_modified=feed.last_modified if conditional else None,
            spool_dir=ctx.spool_dir,
        )
    except FetchError as exc:
        return exc


async def _mark_fetching(ctx: ImportContext, data: FeedJobData, entry: ImportEntry) -> None:
    changes: EntryChanges = {"status": EntryStatus.FETCHING}
    if entry.started_at is None:
        changes["started_at"] = utcnow()
    await publish_entry(ctx, await ctx.store.update_entry(data.entry_id, changes))


async def _wait_for_host(ctx: ImportContext, job: Any, token: str, data: FeedJobData) -> None:
    """Wait for this feed's turn at its host (``politeness``): go when the slot is near; otherwise step
    aside to BullMQ's delayed set until the reserved slot (no attempt is used, and the worker slot
    serves other hosts meanwhile), and claim it when the job runs again. A 429 that came while this
    job slept holds it back too."""
    host = publisher_host(data.url)
    slot = data.host_slot if data.host_slot_attempt == job.attemptsMade else None
    turn = await (ctx.limiter.take(host) if slot is None else ctx.limiter.claim(host, slot))
    while turn.go:
        await asyncio.sleep(turn.wait_ms / 1000)
        if not await ctx.limiter.held_for(host):
            return
        turn = await ctx.limiter.take(host)
    data.host_slot, data.host_slot_attempt = turn.slot_ms, job.attemptsMade
    await job.updateData(asdict(data))
    await job.moveToDelayed(round(time.time() * 1000) + turn.wait_ms, token)
    raise DelayedError()


async def _mark_processing(ctx: ImportContext, data: FeedJobData, result: FetchResult) -> None:
    entry = await ctx.store.update_entry(
        data.entry_id,
        {
            "status": EntryStatus.PROCESSING,
            "http_status": result.status,
            "bytes": result.bytes,
            "fetch_s": result.duration_s,
            "error": None,
        },
    )
    await publish_entry(ctx, entry)


async def _fan_out(ctx: ImportContext, job: Any, data: FeedJobData, result: FetchResult, feed: Feed) -> None:
    """Parse the body slice by slice off the event loop (lxml is CPU-bound), queueing batches as they
    fill. One dedicated thread per feed parses: a libxml2 parser must not move between threads."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse") as parser_thread:
        await _fan_out_in(parser_thread, ctx, job, data, result, feed)


async def _fan_out_in(
    parser_thread: ThreadPoolExecutor,
    ctx: ImportContext,
    job: Any,
    data: FeedJobData,
    result: FetchResult,
    feed: Feed,
) -> None:
    assert result.body is not None
    items = _parse(ctx, data, result, feed)
    source, base_url = publisher_host(data.url), result.effective_url
    seen: set[str] = set()
    early_failures: list[ItemFailure] = []
    loop = asyncio.get_running_loop()
    batch_size = data.batch_size or ctx.batch_size
    per_chunk = batch_size * max(1, _ITEMS_PER_LOOKUP // batch_size)
    read = functools.partial(_read_chunk, items, per_chunk, source, base_url, seen)
    reading = loop.run_in_executor(parser_thread, read)
    sender = _BatchSender(ctx, job, data, source, base_url)
    async with _KnownWriter(ctx, data) as known_writer:
        while True:
            chunk = await reading
            if not chunk.done:
                # Read ahead: the parser works on the next slice while this one is looked up and
                # queued. Slices are still handled one at a time, in document order.
                reading = loop.run_in_executor(parser_thread, read)
            known = await _known_keys(ctx, chunk.items)
            early_failures += chunk.failures
            for group in _in_batches(chunk.items, batch_size):
                data.batch_sizes.append(len(group))
                if all(identity.key in known for _, identity in group):
                    await known_writer.submit(len(data.batch_sizes), [_known(i) for _, i in group])
                else:
                    await sender.add(len(data.batch_sizes), group, known)
            if chunk.done:
                data.parse_error = chunk.error
                break
        await sender.flush()
    await sender.add_left_over(known_writer.left_over)
    await _record_early_failures(ctx, data, early_failures)
    data.etag, data.last_modified, data.step = result.etag, result.last_modified, "finalize"


def _parse(ctx: ImportContext, data: FeedJobData, result: FetchResult, feed: Feed) -> Iterator[RawItem]:
    """The feed's items: its format, board profile and field mapping, and its further pages (fetched
    politely, for the parser thread, on this loop)."""
    pages = PageFetcher(
        asyncio.get_running_loop(),
        page_fetch(ctx.http, ctx.limits, ctx.spool_dir),
        ctx.limiter.wait_turn,
        attempts=ctx.policy.attempts,
        backoff_s=ctx.policy.backoff_ms / 1000,
    )
    return parse_feed(
        cast(BinaryIO, result.body),
        format=FeedFormat(data.format),
        url=result.effective_url,
        mapping=feed.mapping,
        profile=feed.profile,
        load_page=pages,
        max_pages=feed.max_pages,
    )


class _KnownWriter:
    """Writes the batches whose items all matched their stored raw hash, here rather than through
    batch jobs, a few at a time while the feed goes on being read.

    Such a batch only confirms, links and counts stored jobs: a few cheap statements, while a trip
    through Redis and a worker costs more than the writing (an unchanged re-import is mostly these).
    It is the same exactly-once write a batch job makes (``write_batch``, under the same batch key).
    A batch the store refused is listed in ``left_over``, for a batch job that retries it or fails
    it with its reason like any other.
    """

    def __init__(self, ctx: ImportContext, data: FeedJobData) -> None:
        self._ctx, self._data = ctx, data
        self._backlog = asyncio.Semaphore(_KNOWN_WRITES_QUEUED)
        self._connections = asyncio.Semaphore(_KNOWN_WRITES_IN_FLIGHT)
        self._tasks: list[asyncio.Task[None]] = []
        self.left_over: list[tuple[int, list[tuple[str, str]]]] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Wait for the writes under way, or cancel them when the fan-out failed. (Not a TaskGroup:
        it would wrap the fan-out's own error in an ExceptionGroup, and that error is the reason
        the entry reports.)"""
        try:
            if exc_type is None:
                await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def submit(self, batch_no: int, known: list[tuple[str, str]]) -> None:
        # Parsing goes on while writes wait for a connection; it waits only when the store is far
        # behind, so memory stays bounded.
        await self._backlog.acquire()
        self._tasks.append(asyncio.create_task(self._write(batch_no, known)))

    async def _write(self, batch_no: int, known: list[tuple[str, str]]) -> None:
        data = self._data
        key = BatchKey(data.entry_id, batch_no)
        try:
            async with self._connections:
                await write_batch(self._ctx, data.run_id, key, data.feed_id, [], [], known)
        except StoreError as exc:
            log.info(
                "feed %s: batch %s left to a batch job: %s", data.url, key, exc, extra={"run_id": data.run_id}
            )
            self.left_over.append((batch_no, known))
        finally:
            self._backlog.release()


def _read_chunk(items: Iterator[RawItem], size: int, source: str, base_url: str, seen: set[str]) -> _Chunk:
    with PARSING:  # this process's batches give way: every worker waits for this feed's items
        return _read_chunk_of(items, size, source, base_url, seen)


def _read_chunk_of(items: Iterator[RawItem], size: int, source: str, base_url: str, seen: set[str]) -> _Chunk:
    chunk = _Chunk()
    try:
        while len(chunk.items) < size:
            raw = next(items, None)
            if raw is None:
                chunk.done = True
                break
            _take(raw, source, base_url, seen, chunk)
    except FeedError as exc:
        chunk.done, chunk.error = True, str(exc)
    return chunk


def _take(raw: RawItem, source: str, base_url: str, seen: set[str], chunk: _Chunk) -> None:
    try:
        identity = identify(raw, source=source, base_url=base_url)
    except ItemError as exc:
        chunk.failures.append(ItemFailure(_item_label(raw), str(exc)))
        return
    if identity.key in seen:
        reason = "duplicate: an earlier item in this feed has the same id"
        chunk.failures.append(ItemFailure(identity.external_id, reason))
        return
    seen.add(identity.key)
    chunk.items.append((raw, identity))


async def _known_keys(ctx: ImportContext, items: list[tuple[RawItem, Identity]]) -> set[str]:
    """The keys of the items whose stored raw hash matches: unchanged byte for byte, so they skip
    normalizing and travel as ``(key, external_id)`` only."""
    if not items:
        return set()
    stored = await ctx.store.raw_hashes([identity.key for _, identity in items])
    return {i.key for _, i in items if stored.get(i.key) == i.raw_hash}


def _in_batches(items: list[tuple[RawItem, Identity]], size: int) -> Iterator[list[tuple[RawItem, Identity]]]:
    """Cut the slice into batches in document order, so a retried fan-out numbers the same items
    the same way (whichever of them the store holds by then)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _known(identity: Identity) -> tuple[str, str]:
    return identity.key, identity.external_id


def _item_label(raw: RawItem) -> str:
    return (raw.guid or raw.link or f"item #{raw.position}").strip()[:500]


class _BatchSender:
    """Queues the batches that hold changed items as batch jobs, children of the feed job.

    About ``_ITEMS_PER_ENQUEUE`` items go per addBulk round trip. Parsing outruns the workers that
    normalize, so at most ``_ITEMS_AHEAD`` of the feed's items wait in Redis unwritten: past that the
    feed job waits for its batches to settle, and a feed of any size keeps Redis's memory (and this
    process's) flat instead of queueing all of itself at once.
    """

    def __init__(self, ctx: ImportContext, job: Any, data: FeedJobData, source: str, base_url: str) -> None:
        self._ctx, self._job_id, self._data = ctx, job.id, data
        self._parent = {"id": job.id, "queue": job.queueQualifiedName}
        self._wire = {"source": source, "base_url": base_url, "normalizer": NORMALIZER_VERSION}
        self._batches_ahead = max(1, _ITEMS_AHEAD // (data.batch_size or ctx.batch_size))
        self._pending: list[dict[str, Any]] = []
        self._pending_items = 0

    async def add(self, batch_no: int, group: list[tuple[RawItem, Identity]], known: set[str]) -> None:
        fresh = [[i.external_id, i.key, i.raw_hash, raw.to_row()] for raw, i in group if i.key not in known]
        matched = [_known(i) for _, i in group if i.key in known]
        self._pending.append(self._batch_job(batch_no, fresh, matched))
        self._pending_items += len(group)
        if self._pending_items >= _ITEMS_PER_ENQUEUE:
            await self.flush()

    async def add_left_over(self, left_over: list[tuple[int, list[tuple[str, str]]]]) -> None:
        """Batches of raw-hash matches the store refused to the feed job: a batch job retries them."""
        self._pending += [self._batch_job(batch_no, [], known) for batch_no, known in left_over]
        await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        await self._wait_for_room(len(self._pending))
        await self._ctx.queues.add_batches(self._pending)
        self._pending, self._pending_items = [], 0

    async def _wait_for_room(self, adding: int) -> None:
        queue = self._ctx.queues.feeds
        # BullMQ keeps a parent's unsettled children (waiting, active, retrying) in this set; a child
        # leaves it once completed, or failed for good.
        unsettled = queue.toKey(f"{self._job_id}:dependencies")
        waiting = await queue.client.scard(unsettled)
        if waiting and waiting + adding > self._batches_ahead:
            log.debug(
                "feed %s: %d batches queued, not yet written; waiting for room", self._data.url, waiting
            )
        # Polled: BullMQ announces no child's end to its parent, and this is one cheap read a check.
        while waiting and waiting + adding > self._batches_ahead:
            await asyncio.sleep(_ROOM_CHECK_S)
            waiting = await queue.client.scard(unsettled)

    def _batch_job(
        self, batch_no: int, fresh: list[list[Any]], known: list[tuple[str, str]]
    ) -> dict[str, Any]:
        data, ctx = self._data, self._ctx
        payload = {
            "run_id": data.run_id,
            "entry_id": data.entry_id,
            "feed_id": data.feed_id,
            "batch_no": batch_no,
            **self._wire,
            "items": fresh,
            "known": known,
        }
        options = batch_job_options(
            data.entry_id, batch_no, Priority(data.priority), ctx.policy, self._parent
        )
        return {"name": BATCH_JOB, "data": payload, "opts": options}


async def _record_early_failures(ctx: ImportContext, data: FeedJobData, failures: list[ItemFailure]) -> None:
    """Items that failed before queueing are batch 0 of the entry, written exactly once like any batch."""
    if failures:
        await ctx.store.upsert_batch(
            BatchKey(data.entry_id, 0),
            data.feed_id,
            [],
            failures,
            now=utcnow(),
            seen_refresh_s=ctx.seen_refresh_s,
        )
    total = sum(data.batch_sizes) + len(failures)
    await ctx.store.update_entry(data.entry_id, {"total_fetched": total, "batches": len(data.batch_sizes)})


async def finalize(ctx: ImportContext, data: FeedJobData) -> dict[str, Any]:
    """Close the entry from the recorded batch results; batches that never recorded one count as failed."""
    recorded = await ctx.store.batch_results(data.entry_id)
    missing = [
        (n, size, await _missing_reason(ctx, data.entry_id, n))
        for n, size in enumerate(data.batch_sizes, start=1)
        if n not in recorded
    ]
    error = data.parse_error
    if missing and not error:
        error = f"{len(missing)} of {len(data.batch_sizes)} batches failed; their items are counted as failed"
    status = EntryStatus.FAILED if data.parse_error else EntryStatus.COMPLETED
    if status is EntryStatus.COMPLETED and not missing:
        await ctx.store.save_feed_validators(data.feed_id, data.etag, data.last_modified)
    lifecycle = entry_lifecycle(
        ctx,
        complete=status is EntryStatus.COMPLETED and not missing,
        failure=parse_failure(data.parse_error, len(data.batch_sizes)),
    )
    entry = await _close(ctx, data, status=status, error=error, missing_batches=missing, lifecycle=lifecycle)
    return {"status": entry.status.value, "new": entry.new, "updated": entry.updated, "failed": entry.failed}


async def _missing_reason(ctx: ImportContext, entry_id: str, batch_no: int) -> str:
    child = await ctx.queues.batches.getJob(batch_job_id(entry_id, batch_no))
    if child is not None and child.failedReason:
        return f"batch {batch_no} failed after {child.attemptsMade} attempt(s): {child.failedReason}"
    return f"batch {batch_no} was lost before it could be written"


async def _finish_not_modified(ctx: ImportContext, data: FeedJobData, result: FetchResult) -> dict[str, Any]:
    await ctx.store.update_entry(
        data.entry_id, {"http_status": result.status, "bytes": 0, "fetch_s": result.duration_s}
    )
    entry = await _close(ctx, data, status=EntryStatus.NOT_MODIFIED)
    return {"status": entry.status.value}


async def _fail_fetch(ctx: ImportContext, job: Any, data: FeedJobData, exc: FetchError) -> dict[str, Any]:
    """Retry a transient failure while attempts remain; otherwise fail the entry with the reason."""
    attempt, attempts = job.attemptsMade + 1, int(job.opts.get("attempts") or 1)
    status = exc.status if isinstance(exc, FetchHTTPError) else None
    if isinstance(exc, FetchHTTPError) and exc.status == 429:
        await ctx.limiter.hold_back(publisher_host(data.url), exc.retry_after or ctx.policy.backoff_ms / 1000)
    if exc.transient and attempt < attempts:
        note = f"attempt {attempt} of {attempts} failed: {exc}; retrying"
        entry = await ctx.store.update_entry(data.entry_id, {"http_status": status, "error": note})
        await publish_entry(ctx, entry)
        log.warning("feed %s: %s", data.url, note, extra={"feed_url": data.url, "run_id": data.run_id})
        raise exc
    if exc.transient:
        reason = f"{exc} (gave up after {attempts} attempts)"
    else:
        reason = str(exc)
    await ctx.store.update_entry(data.entry_id, {"http_status": status})
    await _close(
        ctx,
        data,
        status=EntryStatus.FAILED,
        error=reason,
        lifecycle=entry_lifecycle(ctx, failure=failure_of(exc)),
    )
    raise UnrecoverableError(reason) from exc


async def give_up(ctx: ImportContext, job: Any, exc: BaseException) -> None:
    """The feed job's last attempt failed with something it did not handle itself (its time limit,
    a database or Redis error): fail its entry with that reason, so the run still finishes."""
    data = FeedJobData.from_job(job.data)
    entry = await ctx.store.get_entry(data.entry_id)
    if entry.status.is_final:
        return
    reason = f"{exc} (gave up after {job.attemptsMade + 1} attempts)"
    if data.step == "finalize":
        # Its batches were written: close the entry from their recorded results, marked failed.
        reason = f"finalizing failed: {reason}"
    await _close(
        ctx,
        data,
        status=EntryStatus.FAILED,
        error=reason,
        lifecycle=entry_lifecycle(ctx, failure=FailureKind.TRANSIENT),
    )


async def _close(
    ctx: ImportContext,
    data: FeedJobData,
    *,
    status: EntryStatus,
    error: str | None = None,
    missing_batches: list[tuple[int, int, str]] | None = None,
    lifecycle: EntryLifecycle | None = None,
) -> ImportEntry:
    entry = await close_entry(
        ctx, data.run_id, data.entry_id, status=status, error=error, missing_batches=missing_batches or (),
        lifecycle=lifecycle,
    )  # fmt: skip
    log.info(
        "feed %s: %s fetched=%d new=%d updated=%d unchanged=%d failed=%d expired=%d%s",
        entry.url, entry.status.value, entry.total_fetched, entry.new, entry.updated,
        entry.unchanged, entry.failed, entry.expired, f" error={entry.error}" if entry.error else "",
        extra={"feed_id": entry.feed_id, "feed_url": entry.url, "run_id": entry.run_id},
    )  # fmt: skip
    return entry
