"""Webhooks: telling other systems what happened, with signed JSON POSTs delivered through the queue.

Events an endpoint may ask for (``WebhookEvent``): ``run.finished`` (every run that finishes),
``run.partial`` and ``run.failed`` (runs that ended so), ``feed.paused`` (a feed paused by its health)
and ``jobs.changed`` (the change log, up to 100 changes per delivery).

Flow, never in an import's way:

1. ``Dispatcher`` (in every worker process; one at a time under a Redis lock) turns what the store
   recorded into deliveries: finished runs and paused feeds of the last day, and each endpoint's
   changes after its cursor. A delivery's id names its endpoint and subject, so one that two
   dispatchers (or a restart) make is stored once; the change cursor moves in the same transaction as
   the delivery is stored (``JobStore.add_changes_delivery``), so each change goes out once. It wakes
   on the events stream (a run finishing, a batch written) and every ``interval_s`` besides.
2. Each new delivery is queued on ``<prefix>-webhooks`` (job id ``hook-<delivery id>``).
3. ``Sender.process`` POSTs the stored body with its signature, keeps every attempt and its answer
   (``JobStore.record_attempt``), and raises for BullMQ to retry with exponential backoff; after the
   last attempt, or a 4xx that retrying cannot fix, the delivery is ``failed`` and the job a dead
   letter (Failed jobs page; retrying it sends the delivery again).

Signing (``signature``): ``X-Jobimporter-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>"
with the endpoint's secret>`` and ``X-Jobimporter-Timestamp: <unix seconds>`` (new on each attempt),
so a receiver can refuse old or replayed requests. ``X-Jobimporter-Event`` and
``X-Jobimporter-Delivery`` (the delivery id: a receiver dedupes on it) come with every request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from bullmq.custom_errors import UnrecoverableError
from redis.exceptions import RedisError

from jobimporter import __version__
from jobimporter.context import ImportContext
from jobimporter.errors import ImporterError, NotFound, WebhookError
from jobimporter.events import BatchProcessed, EntryChanged, RunFinished
from jobimporter.models import (
    RUN_EVENTS,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Feed,
    ImportRun,
    JobChange,
    RunStatus,
    Webhook,
    WebhookEvent,
    WebhookFormat,
    utcnow,
)
from jobimporter.queue import WEBHOOK_JOB, WebhookPolicy, webhook_job_options
from jobimporter.store.base import DeliveryQuery, RunQuery

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Jobimporter-Signature"
TIMESTAMP_HEADER = "X-Jobimporter-Timestamp"
EVENT_HEADER = "X-Jobimporter-Event"
DELIVERY_HEADER = "X-Jobimporter-Delivery"
CHANGES_PER_DELIVERY = 100
_RESPONSE_KEPT = 1000  # characters of an answer's body kept with its attempt
_LOOKBACK = timedelta(days=1)  # finished runs and paused feeds looked at by each dispatch
_OVERLAP = timedelta(minutes=1)  # runs looked at again by the next dispatch (late commits)
_REQUEUE_AFTER = timedelta(minutes=1)  # a pending delivery older than this is queued again (deduped)
_WAKING_EVENTS = (RunFinished, BatchProcessed, EntryChanged)
_RUN_STATUS_EVENTS = {RunStatus.PARTIAL: WebhookEvent.RUN_PARTIAL, RunStatus.FAILED: WebhookEvent.RUN_FAILED}


# ---------------------------------------------------------------- signing


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``b"<timestamp>." + body`` with ``secret``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    secret: str, body: bytes, headers: Mapping[str, str], *, now: float, tolerance_s: float = 300
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is within ``tolerance_s``."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        timestamp = int(lowered[TIMESTAMP_HEADER.lower()])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, timestamp, body)
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    return abs(now - timestamp) <= tolerance_s and hmac.compare_digest(expected, given)


def request_headers(webhook: Webhook, delivery: Delivery, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"jobimporter-webhooks/{__version__}",
        EVENT_HEADER: delivery.event.value,
        DELIVERY_HEADER: delivery.id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(webhook.secret, timestamp, delivery.body.encode()),
    }


# ---------------------------------------------------------------- bodies


def _delivery(webhook: Webhook, event: WebhookEvent, subject: str, data: Any, now: datetime) -> Delivery:
    delivery_id = f"dlv-{webhook.id}-{event.value}-{subject}"
    if webhook.format is WebhookFormat.SLACK:
        body: dict[str, Any] = {"text": data}
    else:
        body = {"id": delivery_id, "event": event.value, "created_at": now.isoformat(), "data": data}
    return Delivery(
        id=delivery_id,
        webhook_id=webhook.id,
        event=event,
        subject=subject,
        body=json.dumps(body, separators=(",", ":"), default=str),
        created_at=now,
    )


def run_delivery(webhook: Webhook, run: ImportRun, event: WebhookEvent, now: datetime) -> Delivery:
    if webhook.format is WebhookFormat.SLACK:
        return _delivery(webhook, event, run.run_id, run_text(run), now)
    return _delivery(webhook, event, run.run_id, {"run": run_data(run)}, now)


def run_data(run: ImportRun) -> dict[str, Any]:
    """The run as ``import --json`` prints it, with its totals."""
    totals = {
        k: sum(getattr(e, k) for e in run.feeds) for k in ("new", "updated", "unchanged", "failed", "expired")
    }
    return run.model_dump(mode="json") | {"totals": totals}


def run_text(run: ImportRun) -> str:
    """One Slack message: the run's outcome, its totals, and each failed feed with its reason."""
    totals = run_data(run)["totals"]
    figures = ", ".join(f"{totals[k]} {k}" for k in ("new", "updated", "failed", "expired"))
    lines = [
        f"jobimporter: run {run.run_id} ({run.trigger.value}) {run.status.value}: {len(run.feeds)} feeds, {figures}"
    ]
    lines += [f"• {e.name}: {e.error}" for e in run.feeds if e.status.value == "failed"][:10]
    return "\n".join(lines)


def paused_delivery(webhook: Webhook, feed: Feed, now: datetime) -> Delivery:
    assert feed.paused_at is not None
    subject = f"{feed.id}-{round(feed.paused_at.timestamp() * 1000)}"
    if webhook.format is WebhookFormat.SLACK:
        text = f"jobimporter: feed {feed.name} ({feed.url}) paused itself: {feed.paused_reason}"
        return _delivery(webhook, WebhookEvent.FEED_PAUSED, subject, text, now)
    data = {"feed": feed.model_dump(mode="json", include={"id", "name", "url", "paused_at", "paused_reason"})}
    return _delivery(webhook, WebhookEvent.FEED_PAUSED, subject, data, now)


def changes_delivery(webhook: Webhook, after: int, changes: Sequence[JobChange], now: datetime) -> Delivery:
    """The changes after ``after`` (as ``GET /api/changes`` returns them) and the cursor they end at."""
    until = changes[-1].cursor
    data = {"after": after, "cursor": until, "changes": [c.model_dump(mode="json") for c in changes]}
    return _delivery(webhook, WebhookEvent.JOBS_CHANGED, f"{after + 1}-{until}", data, now)


# ---------------------------------------------------------------- turning records into deliveries


class Dispatcher:
    """Makes and queues the deliveries (see the module docstring); ``run()`` until cancelled."""

    def __init__(self, ctx: ImportContext, policy: WebhookPolicy, *, interval_s: float = 5.0) -> None:
        self.ctx, self.policy, self.interval_s = ctx, policy, interval_s
        self._handled: set[str] = set()  # delivery ids made already (this process); bounded below
        self._newest_finish: datetime | None = None  # of the runs seen; older ones were all handled

    async def run(self) -> None:
        pending, last = True, 0.0
        async for _, event in self.ctx.events.subscribe("$", block_ms=1000):
            pending = pending or isinstance(event, _WAKING_EVENTS)
            waited = time.monotonic() - last
            if (pending and waited >= 1.0) or waited >= self.interval_s:
                pending, last = False, time.monotonic()
                await self._dispatch_quietly()

    async def _dispatch_quietly(self) -> None:
        try:
            async with self.ctx.locks.held("webhook-dispatch", ttl_s=60, wait_s=0):
                await self.dispatch()
        except (
            ImporterError,
            RedisError,
        ) as exc:  # another process dispatches, or Redis or the database is away
            log.debug("webhooks: no dispatch this time: %s", exc)

    async def dispatch(self) -> int:
        """One pass: make the deliveries that are due, queue them (and old pending ones again)."""
        hooks = await self.ctx.store.list_webhooks(enabled_only=True)
        if not hooks:
            return 0
        now = utcnow()
        made = await self._for_runs(hooks, now) + await self._for_pauses(hooks, now)
        for hook in hooks:
            if WebhookEvent.JOBS_CHANGED in hook.events:
                made += await self._for_changes(hook, now)
        await self.enqueue(made + await self._stale(now))
        if len(self._handled) > 100_000:
            self._handled.clear()
        return len(made)

    async def _for_runs(self, hooks: list[Webhook], now: datetime) -> list[Delivery]:
        """Runs finished since the last look (a minute's overlap: a run's finish may commit late); at
        start, those of the last day (their deliveries, if made before, are not made again)."""
        if not any(set(RUN_EVENTS) & set(hook.events) for hook in hooks):
            return []
        newest = self._newest_finish or now - _LOOKBACK
        runs = await self.ctx.store.list_runs(limit=500, query=RunQuery(finished_since=newest - _OVERLAP))
        self._newest_finish = max([newest, *(run.finished_at for run in runs if run.finished_at)])
        wanted = [
            run_delivery(hook, run, event, now)
            for run in runs
            if run.finished_at is not None
            for hook in hooks
            if run.finished_at >= hook.created_at
            for event in _run_events(run)
            if event in hook.events
        ]
        return await self._add(wanted)

    async def _for_pauses(self, hooks: list[Webhook], now: datetime) -> list[Delivery]:
        if not any(WebhookEvent.FEED_PAUSED in hook.events for hook in hooks):
            return []
        paused = [
            feed
            for feed in await self.ctx.store.list_feeds()
            if feed.paused_at is not None and feed.paused_at >= now - _LOOKBACK
        ]
        wanted = [
            paused_delivery(hook, feed, now)
            for feed in paused
            for hook in hooks
            if WebhookEvent.FEED_PAUSED in hook.events
            and feed.paused_at
            and feed.paused_at >= hook.created_at
        ]
        return await self._add(wanted)

    async def _add(self, wanted: list[Delivery]) -> list[Delivery]:
        new = [d for d in wanted if d.id not in self._handled]
        if not new:
            return []
        added = await self.ctx.store.add_deliveries(new)
        self._handled.update(d.id for d in new)
        return added

    async def _for_changes(self, hook: Webhook, now: datetime) -> list[Delivery]:
        """The endpoint's changes after its cursor, one delivery per 100, each moving the cursor."""
        made: list[Delivery] = []
        after = hook.changes_cursor
        while changes := await self.ctx.store.list_changes(after=after, limit=CHANGES_PER_DELIVERY):
            delivery = changes_delivery(hook, after, changes, now)
            if not await self.ctx.store.add_changes_delivery(delivery, after=after, until=changes[-1].cursor):
                break  # someone else moved the cursor: the next pass goes on from where it is
            made.append(delivery)
            after = changes[-1].cursor
        return made

    async def _stale(self, now: datetime) -> list[Delivery]:
        """Pending deliveries old enough that their queue job may be gone (a crash between storing and
        queueing, a Redis that lost its data); queueing an existing job id again does nothing."""
        query = DeliveryQuery(status=DeliveryStatus.PENDING, created_before=now - _REQUEUE_AFTER)
        return await self.ctx.store.list_deliveries(limit=100, query=query)

    async def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        jobs = [
            {
                "name": WEBHOOK_JOB,
                "data": {"delivery_id": d.id, "webhook_id": d.webhook_id, "event": d.event.value},
                "opts": webhook_job_options(d.id, self.policy, self.ctx.policy),
            }
            for d in deliveries
        ]
        if jobs:
            await self.ctx.queues.webhooks.addBulk(jobs)


def _run_events(run: ImportRun) -> list[WebhookEvent]:
    events = [WebhookEvent.RUN_FINISHED]
    if run.status in _RUN_STATUS_EVENTS:
        events.append(_RUN_STATUS_EVENTS[run.status])
    return events


assert set(RUN_EVENTS) == {WebhookEvent.RUN_FINISHED, *_RUN_STATUS_EVENTS.values()}


# ---------------------------------------------------------------- sending


class Sender:
    """Sends one delivery per queue job, with its own HTTP client (never the feeds' one: a dead
    endpoint must not take the connections feed downloads need)."""

    def __init__(self, policy: WebhookPolicy) -> None:
        self.policy = policy
        self.http = httpx.AsyncClient(timeout=policy.timeout_s, follow_redirects=False)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def process(self, ctx: ImportContext, job: Any, token: str) -> dict[str, Any]:
        delivery = await ctx.store.get_delivery(str(job.data["delivery_id"]))
        if delivery.status is DeliveryStatus.DELIVERED:  # re-delivered after it was recorded
            return {"status": delivery.status.value}
        try:
            webhook = await ctx.store.get_webhook(delivery.webhook_id)
        except NotFound:
            return await _give_up(ctx, delivery, "the webhook was deleted")
        if not webhook.enabled:
            return await _give_up(ctx, delivery, "the webhook is disabled")
        attempt = await self._post(webhook, delivery)
        return await _settle(ctx, job, delivery, attempt)

    async def _post(self, webhook: Webhook, delivery: Delivery) -> DeliveryAttempt:
        started, at = time.monotonic(), utcnow()
        headers = request_headers(webhook, delivery, int(time.time()))
        try:
            answer = await self.http.post(webhook.url, content=delivery.body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            lost = f"webhook: no answer from {webhook.url}: {type(exc).__name__}: {exc}".rstrip(": ")
            return DeliveryAttempt(at=at, duration_s=time.monotonic() - started, error=lost)
        error = None if answer.is_success else f"webhook: {webhook.url} answered HTTP {answer.status_code}"
        return DeliveryAttempt(
            at=at,
            duration_s=time.monotonic() - started,
            status_code=answer.status_code,
            error=error,
            response=answer.text[:_RESPONSE_KEPT],
        )


async def _settle(
    ctx: ImportContext, job: Any, delivery: Delivery, attempt: DeliveryAttempt
) -> dict[str, Any]:
    """Record the attempt; raise for a retry, or give up for good after the last one (or a 4xx that
    no retry can fix: anything but 408, 425 and 429)."""
    if attempt.error is None:
        await ctx.store.record_attempt(delivery.id, attempt, DeliveryStatus.DELIVERED)
        return {"status": DeliveryStatus.DELIVERED.value, "attempts": len(delivery.attempts) + 1}
    code = attempt.status_code
    hopeless = code is not None and 400 <= code < 500 and code not in (408, 425, 429)
    last = hopeless or job.attemptsMade + 1 >= int(job.opts.get("attempts") or 1)
    status = DeliveryStatus.FAILED if last else DeliveryStatus.PENDING
    await ctx.store.record_attempt(delivery.id, attempt, status)
    log.warning(
        "webhooks: delivery %s: %s%s", delivery.id, attempt.error, "; giving up" if last else "; retrying"
    )
    if hopeless:
        raise UnrecoverableError(attempt.error)
    raise WebhookError(attempt.error)


async def _give_up(ctx: ImportContext, delivery: Delivery, why: str) -> dict[str, Any]:
    attempt = DeliveryAttempt(at=utcnow(), duration_s=0.0, error=f"webhook: not sent: {why}")
    await ctx.store.record_attempt(delivery.id, attempt, DeliveryStatus.FAILED)
    return {"status": DeliveryStatus.FAILED.value}


__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Dispatcher",
    "Sender",
    "signature",
    "verify",
]
