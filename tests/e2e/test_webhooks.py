"""Webhooks end to end against a local receiver (``plugins.hookserver``, a real HTTP server): signed
bodies that verify with the README's snippet, every change delivered once, retries after a 500,
giving up into the failed set, an import that a dead endpoint does not hold up, Slack's format,
a paused feed announced. Workers, Redis, the database and the feed server are real.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.jobxml import job_xml
from jobimporter.config import Settings
from jobimporter.deadletters import DeadLetters
from jobimporter.models import (
    Delivery,
    DeliveryStatus,
    FeedSource,
    ImportRun,
    Trigger,
    Webhook,
    WebhookEvent,
    WebhookFormat,
    WebhookSource,
)
from jobimporter.queue import webhook_job_id
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime
from jobimporter.store.base import DeliveryQuery
from plugins.feedserver import FeedServer
from plugins.hookserver import HookServer, ReceivedHook

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "whsec-test-0123456789abcdef"


def readme_verify() -> Callable[..., bool]:
    """The receiver's check exactly as the README prints it (its ``# verify a jobimporter webhook``
    block), so the documented snippet is what these tests run."""
    blocks = re.findall(r"```python\n(# verify a jobimporter webhook\n.*?)```", README.read_text(), re.DOTALL)
    assert len(blocks) == 1, "the README has one webhook verification snippet"
    namespace: dict[str, Any] = {}
    exec(blocks[0], namespace)  # noqa: S102 - our own README, tested as documentation
    verify: Callable[..., bool] = namespace["verify"]
    return verify


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def runtime(
    tmp_path: Path, redis_url: str, database_url: str, overrides: dict[str, Any]
) -> AsyncIterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        database_url=database_url,
        batch_size=7,
        host_interval_s=0,  # one host for every test feed; politeness has its own tests
        **overrides,
    )
    async with Runtime(settings, workers=True) as rt:
        yield rt


Importer = Callable[..., Awaitable[ImportRun]]


@pytest.fixture
def run_import(runtime: Runtime) -> Importer:
    async def run(*sources: FeedSource) -> ImportRun:
        ctx = runtime.ctx
        feeds = await ctx.store.sync_feeds(list(sources))
        after = await ctx.events.last_id()
        started = await start_run(ctx, feeds, Trigger.CLI)
        return await asyncio.wait_for(wait_for_run(ctx, started.run_id, after), 120)

    return run


def serve(feeds: FeedServer, path: str, body: bytes, **reply: Any) -> FeedSource:
    feeds.route(path, body=body, content_type="application/xml", **reply)
    return FeedSource(name=path, url=feeds.url(path))


async def endpoint(
    runtime: Runtime, hooks: HookServer, path: str, *events: WebhookEvent, **fields: Any
) -> Webhook:
    source = WebhookSource(name=path, url=hooks.url(path), secret=SECRET, events=list(events), **fields)
    return await runtime.ctx.store.add_webhook(source)


async def until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Wait on recorded state (the receiver's log, the store) until ``check`` gives something."""
    try:
        async with asyncio.timeout(90):
            while True:
                if value := await check():
                    return value
                await asyncio.sleep(0.1)  # the store is the record: nothing announces a delivery
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def deliveries(runtime: Runtime, hook: Webhook) -> list[Delivery]:
    return await runtime.ctx.store.list_deliveries(limit=500, query=DeliveryQuery(webhook_id=hook.id))


def bodies(received: list[ReceivedHook]) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in received]


async def test_every_change_is_delivered_once_signed_and_the_run_announced(
    feeds: FeedServer, hooks: HookServer, runtime: Runtime, run_import: Importer
) -> None:
    hook = await endpoint(runtime, hooks, "/board", WebhookEvent.RUN_FINISHED, WebhookEvent.JOBS_CHANGED)
    source = serve(feeds, "/jobs.xml", job_xml(range(1, 16)))
    run = await run_import(source)
    feeds.route("/jobs.xml", body=job_xml(range(1, 16), edits=[3, 4]), content_type="application/xml")
    await run_import(source)
    wanted = await runtime.ctx.store.list_changes(after=hook.changes_cursor, limit=1000)
    assert len(wanted) == 17  # 15 new, 2 updated

    def changes_sent() -> list[dict[str, Any]]:
        return [
            c
            for b in bodies(hooks.received("/board"))
            if b["event"] == "jobs.changed"
            for c in b["data"]["changes"]
        ]

    async def all_there() -> bool:
        runs = [b for b in bodies(hooks.received("/board")) if b["event"] == "run.finished"]
        return len(changes_sent()) >= 17 and len(runs) >= 2

    await until(all_there, "17 changes and 2 runs at the endpoint")
    assert [c["cursor"] for c in changes_sent()] == [c.cursor for c in wanted]  # in order, each once
    assert [c["kind"] for c in changes_sent()][-2:] == ["updated", "updated"]
    assert changes_sent()[-1]["fields"] == ["description_html", "description_text"]
    verify = readme_verify()
    for request in hooks.received("/board"):
        assert verify(SECRET, request.body, request.headers), request.headers
        assert not verify(SECRET, request.body + b" ", request.headers)  # a changed body does not verify
        assert not verify("another-secret-entirely", request.body, request.headers)
        body = json.loads(request.body)
        assert request.headers["x-jobimporter-event"] == body["event"]
        assert request.headers["x-jobimporter-delivery"] == body["id"]
    runs = {
        b["data"]["run"]["run_id"]: b["data"]["run"]
        for b in bodies(hooks.received("/board"))
        if "run" in b["data"]
    }
    assert len(runs) == 2
    assert (runs[run.run_id]["status"], runs[run.run_id]["totals"]["new"]) == ("completed", 15)

    async def settled() -> bool:
        return all(d.status is DeliveryStatus.DELIVERED for d in await deliveries(runtime, hook))

    await until(settled, "every delivery recorded as delivered")
    for delivery in await deliveries(runtime, hook):
        (attempt,) = delivery.attempts
        assert (attempt.status_code, attempt.error, attempt.response) == (200, None, "ok")
    assert len(await deliveries(runtime, hook)) == len(hooks.received("/board"))  # nothing sent twice


async def test_a_delivery_answered_500_is_retried_at_the_default_backoff(
    feeds: FeedServer, hooks: HookServer, runtime: Runtime, run_import: Importer
) -> None:
    """At the defaults (6 attempts, 5 s, 10 s, … apart): a 500, then a 200 five seconds later."""
    hooks.answer("/flaky", [500, 200])
    hook = await endpoint(runtime, hooks, "/flaky", WebhookEvent.RUN_FINISHED)
    await run_import(serve(feeds, "/jobs.xml", job_xml(range(1, 3))))

    async def delivered() -> list[Delivery]:
        found = await deliveries(runtime, hook)
        return found if found and found[0].status is DeliveryStatus.DELIVERED else []

    (delivery,) = await until(delivered, "the retried delivery")
    assert [a.status_code for a in delivery.attempts] == [500, 200]
    assert delivery.attempts[0].error == f"webhook: {hook.url} answered HTTP 500"
    assert delivery.attempts[0].response == "not today"
    gap = (delivery.attempts[1].at - delivery.attempts[0].at).total_seconds()
    assert gap >= 4.9  # BullMQ's backoff, recorded by us (tolerance: clock rounding)
    first, second = hooks.received("/flaky")
    assert first.body == second.body  # the same delivery, signed anew
    assert first.headers["x-jobimporter-delivery"] == second.headers["x-jobimporter-delivery"] == delivery.id
    assert int(second.headers["x-jobimporter-timestamp"]) >= int(first.headers["x-jobimporter-timestamp"])


# Two attempts 100 ms apart: the default retry and backoff are covered by the test above.
@pytest.mark.parametrize(
    "overrides", [{"webhook_attempts": 2, "webhook_backoff_ms": 100}], ids=["2-attempts"]
)
async def test_a_delivery_that_always_fails_gives_up_into_the_failed_set(
    feeds: FeedServer, hooks: HookServer, runtime: Runtime, run_import: Importer
) -> None:
    hooks.answer("/down", [500])
    hook = await endpoint(runtime, hooks, "/down", WebhookEvent.RUN_FINISHED)
    await run_import(serve(feeds, "/jobs.xml", job_xml(range(1, 3))))

    async def failed() -> list[Delivery]:
        found = await deliveries(runtime, hook)
        return found if found and found[0].status is DeliveryStatus.FAILED else []

    (delivery,) = await until(failed, "the delivery to give up")
    assert [a.status_code for a in delivery.attempts] == [500, 500]
    dead = DeadLetters(runtime.ctx, runtime.redis_url)
    letter_id = f"{runtime.ctx.queues.names.webhooks}:{webhook_job_id(delivery.id)}"
    letter = await until(lambda: _letter(dead, letter_id), "the dead letter")
    assert letter.reason == f"webhook: {hook.url} answered HTTP 500"

    hooks.answer("/down", [200])  # the endpoint is back: retrying the dead letter delivers it
    assert await dead.retry(letter_id) == 1

    async def delivered() -> bool:
        return (await runtime.ctx.store.get_delivery(delivery.id)).status is DeliveryStatus.DELIVERED

    await until(delivered, "the retried dead letter")
    assert [a.status_code for a in (await runtime.ctx.store.get_delivery(delivery.id)).attempts] == [
        500,
        500,
        200,
    ]


async def _letter(dead: DeadLetters, letter_id: str) -> Any:
    letters = await dead.letters(letter_id.split(":", 1)[0])
    return next((letter for letter in letters if letter.id == letter_id), None)


async def test_an_endpoint_that_never_answers_does_not_hold_up_an_import(
    feeds: FeedServer, hooks: HookServer, runtime: Runtime, run_import: Importer
) -> None:
    """The endpoint takes requests and never answers (until the test lets it). With a delivery stuck
    in a request, another import runs to its end, and its own deliveries wait their turn."""
    hooks.hold()
    hook = await endpoint(runtime, hooks, "/dead", WebhookEvent.RUN_FINISHED, WebhookEvent.JOBS_CHANGED)
    await run_import(serve(feeds, "/a.xml", job_xml(range(1, 4))))
    await asyncio.to_thread(hooks.wait_for, 1, "/dead")  # a request is stuck at the endpoint
    stuck = hooks.received("/dead")[0].headers["x-jobimporter-delivery"]

    run = await run_import(serve(feeds, "/b.xml", job_xml(range(10, 30))))

    assert sum(e.new for e in run.feeds) == 20
    assert (await runtime.ctx.store.get_delivery(stuck)).attempts == []  # still in its first request
    hooks.release()

    async def all_delivered() -> bool:
        found = await deliveries(runtime, hook)
        runs = [d for d in found if d.event is WebhookEvent.RUN_FINISHED]
        return len(runs) == 2 and all(d.status is DeliveryStatus.DELIVERED for d in found)

    await until(all_delivered, "the deliveries once the endpoint answers")


async def test_slack_endpoints_get_a_text_for_run_events(
    feeds: FeedServer, hooks: HookServer, runtime: Runtime, run_import: Importer
) -> None:
    await endpoint(
        runtime,
        hooks,
        "/slack",
        WebhookEvent.RUN_FAILED,
        WebhookEvent.RUN_FINISHED,
        format=WebhookFormat.SLACK,
    )
    gone = serve(feeds, "/gone.xml", b"gone", status=404)
    run = await run_import(gone)

    received = await asyncio.to_thread(hooks.wait_for, 2, "/slack")
    texts = [b["text"] for b in bodies(received)]
    assert [set(b) for b in bodies(received)] == [{"text"}, {"text"}]
    assert all(f"run {run.run_id} (cli) failed" in text for text in texts)
    assert all("• /gone.xml: fetch: HTTP 404" in text for text in texts), texts


# Two failures pause the feed here; five, the default, are covered in e2e/test_lifecycle.py.
@pytest.mark.parametrize("overrides", [{"pause_after_failures": 2}], ids=["pause-after-2"])
async def test_a_paused_feed_is_announced(
    feeds: FeedServer, hooks: HookServer, runtime: Runtime, run_import: Importer
) -> None:
    await endpoint(runtime, hooks, "/ops", WebhookEvent.FEED_PAUSED)
    gone = serve(feeds, "/gone.xml", b"gone", status=404)
    await run_import(gone)
    await run_import(gone)
    (feed,) = await runtime.ctx.store.sync_feeds([gone])
    assert feed.paused_at is not None

    (request,) = await asyncio.to_thread(hooks.wait_for, 1, "/ops")
    body = json.loads(request.body)
    assert (body["event"], body["data"]["feed"]["id"]) == ("feed.paused", feed.id)
    assert "2 imports in a row" in body["data"]["feed"]["paused_reason"]


async def test_the_sources_files_webhooks_are_synced_when_a_process_starts(
    tmp_path: Path, redis_url: str, database_url: str, hooks: HookServer
) -> None:
    """``[[webhooks]]`` of the sources file, as every role that is given one reads them at start: added
    by URL, and edited (not doubled) when the file changes."""
    path = tmp_path / "feeds.toml"
    table = f'[[webhooks]]\nname = "Board"\nurl = "{hooks.url("/board")}"\nsecret = "{SECRET}"\n'
    feeds = '[[feeds]]\nname = "Jobs"\nurl = "https://jobs.example/feed"\n\n'
    path.write_text(feeds + table + 'events = ["jobs.changed"]\n')
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, database_url=database_url, sources=path
    )
    async with Runtime(settings, workers=False) as rt:
        (first,) = await rt.ctx.store.list_webhooks()
    path.write_text(feeds + table + 'events = ["run.failed", "feed.paused"]\n')
    async with Runtime(settings, workers=False) as rt:
        (again,) = await rt.ctx.store.list_webhooks()
    assert (first.name, first.url, first.secret, first.events) == (
        "Board",
        hooks.url("/board"),
        SECRET,
        [WebhookEvent.JOBS_CHANGED],
    )
    assert (again.id, again.events) == (first.id, [WebhookEvent.RUN_FAILED, WebhookEvent.FEED_PAUSED])
