"""Dead letters: the BullMQ jobs that failed for good, across the queues; list, retry, discard.

Free of any web framework: the admin API and the ``jobimporter failed`` command share it. A dead
letter's id is ``<queue name>:<job id>`` (e.g. ``jobimporter-feeds:feed-imp_…``).

Retrying keeps the history exact:
- a failed **feed** job: its import entry is reopened first (``JobStore.reopen_entry``: entry queued,
  run running), since the feed job does nothing for an entry that is already final; then the job goes
  back to waiting with its attempts reset. Should the retry be refused, the entry is closed again.
- a failed **batch** job whose feed job still waits for its batches: it simply goes back to waiting,
  and the feed job counts it when it settles.
- a failed **batch** job whose feed job already finalized the entry (counting the batch's items as
  failed): the entry is reopened, and the feed job and the batch are queued again as a flow under
  their own ids, so the feed job finalizes the entry anew once the batch has settled. If the feed job
  is gone (completed jobs are kept ``JOBIMPORTER_KEEP_COMPLETED_S``, an hour by default) the retry is
  refused (``Conflict``): import the feed again instead.
- a failed **schedule** tick or **webhook** delivery: back to waiting (a delivery is tried again
  with its attempts reset, and its record shows the new attempts).

Discarding removes the job (a feed job with its batches); history is left as it is, except that a
feed job's entry still open (its job gave up while the database was away) is closed as failed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bullmq import FlowProducer, Job, Queue
from redis.exceptions import RedisError

from jobimporter.context import ImportContext
from jobimporter.errors import Conflict, NotFound, QueueError, StoreError
from jobimporter.models import EntryStatus, ImportEntry
from jobimporter.queue import connection
from jobimporter.runs import close_entry, publish_entry

log = logging.getLogger(__name__)

_RESET_ATTEMPTS = {"resetAttemptsMade": True, "resetAttemptsStarted": True}


@dataclass(frozen=True, slots=True)
class LetterSummary:
    """What a dead letter was about, from its job data (never the items themselves)."""

    run_id: str | None = None
    entry_id: str | None = None
    feed_id: str | None = None
    url: str | None = None
    name: str | None = None
    batch_no: int | None = None
    items: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    queue: str
    name: str
    job_id: str
    reason: str | None
    attempts: int
    failed_at: datetime | None
    summary: LetterSummary


@contextmanager
def _redis_errors(action: str) -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise QueueError(f"queue: {action} failed: {exc}") from exc
    except TypeError as exc:  # how bullmq's scripts say a job's key is gone (removed meanwhile)
        if "Missing key" not in str(exc):
            raise
        raise NotFound("job", action, stage="queue") from exc


class DeadLetters:
    """The failed sets of the feed, batch, schedule and webhook queues of ``ctx.queues``."""

    def __init__(self, ctx: ImportContext, redis_url: str) -> None:
        self.ctx = ctx
        self._redis_url = redis_url
        queues = ctx.queues
        self._queues: dict[str, Queue] = {
            q.name: q for q in (queues.feeds, queues.batches, queues.schedule, queues.webhooks)
        }

    # ------------------------------------------------------------ reading

    def queue_names(self) -> list[str]:
        return list(self._queues)

    async def count(self, queue: str | None = None) -> int:
        with _redis_errors("counting dead letters"):
            return sum([await q.getFailedCount() for q in self._selected(queue)])

    async def letters(
        self, queue: str | None = None, *, offset: int = 0, limit: int = 50
    ) -> list[DeadLetter]:
        """Queue by queue (feeds, batches, schedule, webhooks), newest failure first within each."""
        letters: list[DeadLetter] = []
        with _redis_errors("listing dead letters"):
            for q in self._selected(queue):
                if limit <= 0:
                    break
                failed = int(await q.getFailedCount())
                if offset >= failed:
                    offset -= failed
                    continue
                jobs = await q.getFailed(offset, offset + limit - 1)
                letters += [await self._letter(q, job) for job in jobs[:limit]]
                limit -= len(jobs)
                offset = 0
        return letters

    async def get(self, letter_id: str) -> DeadLetter:
        queue, job = await self._failed_job(letter_id)
        return await self._letter(queue, job)

    def _selected(self, queue: str | None) -> list[Queue]:
        if queue is None:
            return list(self._queues.values())
        if queue not in self._queues:
            raise NotFound("queue", queue, stage="queue")
        return [self._queues[queue]]

    async def _failed_job(self, letter_id: str) -> tuple[Queue, Job]:
        queue_name, _, job_id = letter_id.partition(":")
        queue = self._queues.get(queue_name)
        if queue is None or not job_id:
            raise NotFound("dead letter", letter_id, stage="queue")
        with _redis_errors(f"reading {letter_id}"):
            job = await queue.getJob(job_id)
            if job is None or not await job.isFailed():
                raise NotFound("dead letter", letter_id, stage="queue")
        return queue, job

    async def _letter(self, queue: Queue, job: Job) -> DeadLetter:
        finished = int(job.finishedOn or 0)
        return DeadLetter(
            id=f"{queue.name}:{job.id}",
            queue=queue.name,
            name=str(job.name),
            job_id=str(job.id),
            reason=job.failedReason,
            attempts=int(job.attemptsMade),
            failed_at=datetime.fromtimestamp(finished / 1000, UTC) if finished else None,
            summary=await self._summary(job.data if isinstance(job.data, dict) else {}),
        )

    async def _summary(self, data: dict[str, Any]) -> LetterSummary:
        url, name = data.get("url"), data.get("name")
        entry_id = data.get("entry_id")
        if entry_id and url is None:  # a batch: its feed is named by its entry
            try:
                entry = await self.ctx.store.get_entry(str(entry_id))
                url, name = entry.url, entry.name
            except StoreError:  # gone, or the database is away: listed without its feed's name
                pass
        items = data.get("items")
        count = len(items) + len(data.get("known") or []) if isinstance(items, list) else None
        batch_no = data.get("batch_no")
        return LetterSummary(
            run_id=data.get("run_id"),
            entry_id=entry_id,
            feed_id=data.get("feed_id"),
            url=url,
            name=name,
            batch_no=int(batch_no) if batch_no is not None else None,
            items=count,
        )

    # ------------------------------------------------------------ retry and discard

    async def retry(self, letter_id: str) -> int:
        """Retry one dead letter (see the module docstring); returns how many went back (a feed job
        takes its failed batches along)."""
        queue, job = await self._failed_job(letter_id)
        feed_job = queue.name == self.ctx.queues.names.feeds
        retried = await self._retry_job(
            queue, job, await self._failed_batches_by_feed_job() if feed_job else {}
        )
        log.info("dead letter %s retried (%d jobs)", letter_id, retried)
        return retried

    async def retry_all(self, queue: str | None = None) -> int:
        """Retry every dead letter (feed jobs first, so their batches find them waiting); the count."""
        retried = 0
        selected = self._selected(queue)
        feeds_too = self.ctx.queues.feeds in selected
        failed_batches = await self._failed_batches_by_feed_job() if feeds_too else {}  # once, not per job
        for q in selected:
            with _redis_errors("listing dead letters"):
                jobs = await q.getFailed(0, -1)
            for job in jobs:
                try:
                    retried += await self._retry_job(q, job, failed_batches)
                except (NotFound, Conflict) as exc:  # gone or not retryable: the others still go
                    log.warning("dead letter %s:%s not retried: %s", q.name, job.id, exc)
        log.info("dead letters: %d retried", retried)
        return retried

    async def discard(self, letter_id: str) -> None:
        """Remove one dead letter (a feed job with its batches). A feed job whose entry was left open
        (the database was away when it gave up) closes it as failed, so its run can finish."""
        queue, job = await self._failed_job(letter_id)
        if queue.name == self.ctx.queues.names.feeds:
            await self._close_discarded(job)
        with _redis_errors(f"discarding {letter_id}"):
            await job.remove()
        log.info("dead letter %s discarded", letter_id)

    async def _close_discarded(self, job: Job) -> None:
        entry_id = str(job.data.get("entry_id") or "")
        if not entry_id:
            return
        try:
            entry = await self.ctx.store.get_entry(entry_id)
        except NotFound:
            return
        if entry.status.is_final:
            return
        reason = f"dead letter discarded: {job.failedReason or 'no reason recorded'}"
        await close_entry(self.ctx, entry.run_id, entry_id, status=EntryStatus.FAILED, error=reason)

    async def _retry_job(self, queue: Queue, job: Job, failed_batches: dict[str, list[Job]]) -> int:
        names = self.ctx.queues.names
        if queue.name == names.feeds:
            return await self._retry_feed_job(job, failed_batches.get(str(job.id), []))
        if queue.name == names.batches:
            await self._retry_batch_job(job)
            return 1
        with _redis_errors(f"retrying {queue.name}:{job.id}"):
            await job.retry("failed", _RESET_ATTEMPTS)
        return 1

    async def _retry_feed_job(self, job: Job, children: list[Job]) -> int:
        """A feed job that died waiting for batches that died too (``children``, a long database
        outage) takes them along: queued again as one flow, so it counts them once they settle."""
        entry_id = str(job.data.get("entry_id") or "")
        async with self._reopened(entry_id):
            if children:
                await self._requeue_as_flow(job, children)
                return 1 + len(children)
            with _redis_errors(f"retrying feed job {job.id}"):
                await job.retry("failed", _RESET_ATTEMPTS)
            return 1

    async def _failed_batches_by_feed_job(self) -> dict[str, list[Job]]:
        with _redis_errors("listing the failed batches"):
            failed = await self.ctx.queues.batches.getFailed(0, -1)
        by_parent: dict[str, list[Job]] = {}
        for job in failed:
            parent_id = (job.parent or {}).get("id")
            if parent_id:
                by_parent.setdefault(str(parent_id), []).append(job)
        return by_parent

    async def _retry_batch_job(self, job: Job) -> None:
        parent = await self._parent_of(job)
        with _redis_errors(f"reading the state of {parent.id}"):
            state = await parent.getState()
        if state == "waiting-children":
            with _redis_errors(f"retrying batch job {job.id}"):
                await job.retry("failed", _RESET_ATTEMPTS)
            return
        if state == "failed":
            raise Conflict(
                f"queue: the feed job {parent.id} of batch {job.id} failed too; retry it, it takes its "
                "failed batches along"
            )
        if state != "completed":
            raise Conflict(
                f"queue: the feed job {parent.id} of batch {job.id} is {state}; retry it when it settles"
            )
        async with self._reopened(str(job.data.get("entry_id") or "")):
            await self._requeue_as_flow(parent, [job])

    async def _parent_of(self, job: Job) -> Job:
        parent_id = (job.parent or {}).get("id")
        with _redis_errors(f"reading the feed job of {job.id}"):
            parent = await self.ctx.queues.feeds.getJob(parent_id) if parent_id else None
        if parent is None:
            raise Conflict(
                f"queue: the feed job of batch {job.id} is gone; import the feed again to retry its items"
            )
        return parent

    async def _requeue_as_flow(self, parent: Job, children: list[Job]) -> None:
        """Queue the feed job and the batches again under their ids, the feed job waiting for them."""
        names = self.ctx.queues.names
        flow = {
            "name": parent.name,
            "queueName": names.feeds,
            "data": parent.data,
            "opts": _without_parent(parent.opts, parent.id),
            "children": [
                {
                    "name": child.name,
                    "queueName": names.batches,
                    "data": child.data,
                    "opts": _without_parent(child.opts, child.id),
                }
                for child in children
            ],
        }
        producer = FlowProducer({"connection": connection(self._redis_url)})
        try:
            with _redis_errors(f"queueing {len(children)} batches of {parent.id} again"):
                for child in children:
                    await child.remove()
                await parent.remove()  # with its settled batches, whose results are in the store
                await producer.add(flow)
        finally:
            await producer.close()

    @asynccontextmanager
    async def _reopened(self, entry_id: str) -> AsyncIterator[None]:
        """Reopen the entry for the body; if the body fails, close it again as it was."""
        if not entry_id:
            yield
            return
        store = self.ctx.store
        before = await store.get_entry(entry_id)
        await publish_entry(self.ctx, await store.reopen_entry(entry_id))
        try:
            yield
        except BaseException:
            await self._close_again(before)
            raise

    async def _close_again(self, before: ImportEntry) -> None:
        if not before.status.is_final:
            return
        await close_entry(
            self.ctx, before.run_id, before.id,
            status=before.status, finished_at=before.finished_at, error=before.error,
        )  # fmt: skip


def _without_parent(opts: dict[str, Any], job_id: str) -> dict[str, Any]:
    """A job's options for queueing it again under ``job_id``, without its old parent link."""
    kept = {key: value for key, value in opts.items() if key not in ("parent", "jobId")}
    return kept | {"jobId": job_id}
