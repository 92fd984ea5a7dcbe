"""The ``JobStore`` contract for webhook endpoints and their deliveries (issue 11), over every backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from jobimporter.errors import Conflict, NotFound
from jobimporter.models import (
    BatchKey,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EntryStatus,
    WebhookEvent,
    WebhookFormat,
    WebhookSource,
)
from jobimporter.store import JobStore
from jobimporter.store.base import DeliveryQuery, RunQuery

from .test_store import T0, jobs, stored_run


def hook(name: str = "board", **fields: object) -> WebhookSource:
    values: dict[str, object] = {"url": f"https://{name}.example/hook", "events": [WebhookEvent.RUN_FINISHED]}
    return WebhookSource(name=name, **(values | fields))  # type: ignore[arg-type]


def delivery(webhook_id: str, n: int, **fields: object) -> Delivery:
    values: dict[str, object] = {
        "id": f"dlv-{webhook_id}-{n}",
        "webhook_id": webhook_id,
        "event": WebhookEvent.RUN_FINISHED,
        "subject": f"run_{n}",
        "body": f'{{"n": {n}}}',
        "created_at": T0 + timedelta(minutes=n),
    }
    return Delivery(**(values | fields))  # type: ignore[arg-type]


async def test_add_webhook_gives_an_id_a_secret_and_starts_at_the_current_change(store: JobStore) -> None:
    """add_webhook: "a fresh id (and a random secret when source has none); its changes_cursor is
    last_change_cursor() ... Conflict if an endpoint has that URL"."""
    await store.upsert_batch(BatchKey("ent_a", 1), "feed_a", jobs(range(3)), now=T0)
    added = await store.add_webhook(hook())
    assert added.changes_cursor == await store.last_change_cursor() > 0
    assert len(added.secret) >= 32
    given = await store.add_webhook(hook("slack", secret="s" * 20, format=WebhookFormat.SLACK))
    assert (given.secret, given.format) == ("s" * 20, WebhookFormat.SLACK)
    assert added.secret != (await store.add_webhook(hook("other"))).secret
    with pytest.raises(Conflict):
        await store.add_webhook(hook())
    assert [w.name for w in await store.list_webhooks()] == ["board", "other", "slack"]


async def test_sync_webhooks_by_url_keeps_ids_cursors_and_unstated_secrets(store: JobStore) -> None:
    """sync_webhooks: "new ones added, the others' name, events, format, enabled and (when given)
    secret updated; ids and cursors kept"."""
    first, second = await store.sync_webhooks([hook("a"), hook("b", secret="b" * 16)])
    again_a, again_b = await store.sync_webhooks(
        [hook("a", events=[WebhookEvent.JOBS_CHANGED], enabled=False), hook("b", secret="c" * 16)]
    )
    assert (again_a.id, again_a.secret, again_a.changes_cursor) == (
        first.id,
        first.secret,
        first.changes_cursor,
    )
    assert (again_a.events, again_a.enabled) == ([WebhookEvent.JOBS_CHANGED], False)
    assert (again_b.id, again_b.secret) == (second.id, "c" * 16)
    assert [w.id for w in await store.list_webhooks(enabled_only=True)] == [second.id]


async def test_update_and_delete_webhooks(store: JobStore) -> None:
    a, b = await store.sync_webhooks([hook("a"), hook("b")])
    changed = await store.update_webhook(a.id, {"name": "A", "events": [WebhookEvent.FEED_PAUSED]})
    assert (changed.name, changed.events, changed.url) == ("A", [WebhookEvent.FEED_PAUSED], a.url)
    with pytest.raises(Conflict):
        await store.update_webhook(a.id, {"url": b.url})
    await store.add_deliveries([delivery(a.id, 1)])
    await store.delete_webhook(a.id)
    with pytest.raises(NotFound):
        await store.get_webhook(a.id)
    with pytest.raises(NotFound):
        await store.delete_webhook(a.id)
    assert (await store.get_delivery(f"dlv-{a.id}-1")).webhook_id == a.id  # "its deliveries stay"


async def test_add_deliveries_stores_each_id_once(store: JobStore) -> None:
    """add_deliveries: "Store the deliveries whose id is not stored yet; returns those"."""
    (endpoint,) = await store.sync_webhooks([hook()])
    first = await store.add_deliveries([delivery(endpoint.id, 1), delivery(endpoint.id, 2)])
    again = await asyncio.gather(
        *(store.add_deliveries([delivery(endpoint.id, n) for n in (2, 3)]) for _ in range(3))
    )
    assert [d.subject for d in first] == ["run_1", "run_2"]
    assert sorted(d.subject for added in again for d in added) == ["run_3"]
    assert await store.count_deliveries() == 3


async def test_a_changes_delivery_moves_the_cursor_once(store: JobStore) -> None:
    """add_changes_delivery: "if the endpoint's changes_cursor is still after, move it to until and
    store delivery ... otherwise change nothing and return False"."""
    (endpoint,) = await store.sync_webhooks([hook(events=[WebhookEvent.JOBS_CHANGED])])
    start = endpoint.changes_cursor
    wanted = [delivery(endpoint.id, n, event=WebhookEvent.JOBS_CHANGED) for n in range(4)]
    # Each caller moves the cursor somewhere else, so a move that ignored ``after`` would show.
    moved = await asyncio.gather(
        *(store.add_changes_delivery(d, after=start, until=start + 10 + n) for n, d in enumerate(wanted))
    )
    assert sorted(moved) == [False, False, False, True]
    winner = moved.index(True)
    assert (await store.get_webhook(endpoint.id)).changes_cursor == start + 10 + winner
    assert [d.id for d in await store.list_deliveries()] == [wanted[winner].id]


async def test_attempts_are_kept_with_their_answers(store: JobStore) -> None:
    """record_attempt: "Append attempt to the delivery and set its status (finished_at = the attempt's
    time once it is no longer pending)"; list_deliveries newest first, filtered."""
    (endpoint,) = await store.sync_webhooks([hook()])
    await store.add_deliveries([delivery(endpoint.id, n) for n in range(3)])
    target = f"dlv-{endpoint.id}-1"
    failed = DeliveryAttempt(at=T0, duration_s=0.2, status_code=500, response="boom")
    still = await store.record_attempt(target, failed, DeliveryStatus.PENDING)
    assert (still.status, still.finished_at, still.attempts) == (DeliveryStatus.PENDING, None, [failed])
    ok = DeliveryAttempt(at=T0 + timedelta(seconds=5), duration_s=0.1, status_code=200, response="thanks")
    done = await store.record_attempt(target, ok, DeliveryStatus.DELIVERED)
    assert (done.status, done.finished_at, done.attempts) == (DeliveryStatus.DELIVERED, ok.at, [failed, ok])
    with pytest.raises(NotFound):
        await store.record_attempt("dlv-missing", ok, DeliveryStatus.DELIVERED)

    listed = await store.list_deliveries()
    assert [d.subject for d in listed] == ["run_2", "run_1", "run_0"]
    pending = DeliveryQuery(status=DeliveryStatus.PENDING)
    assert [d.subject for d in await store.list_deliveries(query=pending)] == ["run_2", "run_0"]
    assert await store.count_deliveries(DeliveryQuery(webhook_id="hook_other")) == 0
    before = DeliveryQuery(created_before=T0 + timedelta(minutes=1))
    assert [d.subject for d in await store.list_deliveries(query=before, limit=5)] == ["run_0"]


async def test_runs_can_be_listed_by_when_they_finished(store: JobStore) -> None:
    """RunQuery: "finished_since <= finished_at (runs still open never match it)" — what the webhook
    dispatcher asks for."""
    early = await stored_run(store, EntryStatus.COMPLETED, started_at=T0)
    late = await stored_run(store, EntryStatus.COMPLETED, started_at=T0 + timedelta(hours=1))
    await stored_run(store, EntryStatus.QUEUED, started_at=T0 + timedelta(hours=2))  # still running
    await store.finalize_run_if_done(early.run_id, T0 + timedelta(hours=3))  # finishes last
    await store.finalize_run_if_done(late.run_id, T0 + timedelta(hours=1, minutes=5))

    since = RunQuery(finished_since=T0 + timedelta(hours=2))
    assert [run.run_id for run in await store.list_runs(query=since)] == [early.run_id]
    everything = RunQuery(finished_since=T0)
    assert {run.run_id for run in await store.list_runs(query=everything)} == {early.run_id, late.run_id}
    assert await store.count_runs(everything) == 2
