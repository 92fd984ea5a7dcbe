"""Webhook pieces that need no server: signatures, bodies, and ``[[webhooks]]`` in a sources file."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobimporter.errors import ConfigError
from jobimporter.models import (
    Delivery,
    EntryStatus,
    ImportEntry,
    ImportRun,
    RunStatus,
    Trigger,
    Webhook,
    WebhookEvent,
    WebhookFormat,
    WebhookSource,
)
from jobimporter.sources import load_sources, load_webhooks
from jobimporter.webhooks import request_headers, run_delivery, signature, verify

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SECRET = "0123456789abcdef-secret"


def webhook(**fields: object) -> Webhook:
    values: dict[str, object] = {
        "id": "hook_1",
        "name": "board",
        "url": "https://board.example/hook",
        "secret": SECRET,
        "events": [WebhookEvent.RUN_FINISHED],
        "created_at": T0,
    }
    return Webhook(**(values | fields))  # type: ignore[arg-type]


def a_run() -> ImportRun:
    entries = [
        ImportEntry(id="imp_1", run_id="run_1", feed_id="f1", url="https://a/", name="A", new=3, expired=2,
                    status=EntryStatus.COMPLETED),
        ImportEntry(id="imp_2", run_id="run_1", feed_id="f2", url="https://b/", name="B", status=EntryStatus.FAILED,
                    error="fetch: HTTP 404 Not Found"),
    ]  # fmt: skip
    return ImportRun(
        run_id="run_1",
        trigger=Trigger.CRON,
        status=RunStatus.PARTIAL,
        started_at=T0,
        finished_at=T0,
        feeds=entries,
    )


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_body() -> None:
    body = b'{"event":"run.finished"}'
    expected = hmac.new(SECRET.encode(), b"1764666000." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, 1764666000, body) == f"sha256={expected}"


def test_verify_refuses_another_body_secret_or_an_old_timestamp() -> None:
    hook = webhook()
    delivery = run_delivery(hook, a_run(), WebhookEvent.RUN_FINISHED, T0)
    headers = request_headers(hook, delivery, 1764666000)
    body = delivery.body.encode()
    assert verify(SECRET, body, headers, now=1764666000 + 299)
    assert not verify(SECRET, body, headers, now=1764666000 + 301)  # a replay
    assert not verify(SECRET, body + b" ", headers, now=1764666000)
    assert not verify("another-secret-000000", body, headers, now=1764666000)
    assert not verify(
        SECRET, body, {k: v for k, v in headers.items() if "Timestamp" not in k}, now=1764666000
    )


def test_a_run_delivery_carries_the_run_and_its_totals_or_a_slack_text() -> None:
    delivery = run_delivery(webhook(), a_run(), WebhookEvent.RUN_PARTIAL, T0)
    body = json.loads(delivery.body)
    assert (body["id"], body["event"]) == (delivery.id, "run.partial")
    assert delivery.id == "dlv-hook_1-run.partial-run_1"  # names its endpoint and subject: stored once
    assert body["data"]["run"]["totals"] == {
        "new": 3,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "expired": 2,
    }
    slack = run_delivery(webhook(format=WebhookFormat.SLACK), a_run(), WebhookEvent.RUN_PARTIAL, T0)
    text = json.loads(slack.body)["text"]
    assert text.splitlines() == [
        "jobimporter: run run_1 (cron) partial: 2 feeds, 3 new, 0 updated, 0 failed, 2 expired",
        "• B: fetch: HTTP 404 Not Found",
    ]
    assert isinstance(slack, Delivery)


def test_slack_endpoints_cannot_take_job_changes() -> None:
    with pytest.raises(ValueError, match="run and feed events only"):
        WebhookSource(
            name="s", url="https://hooks.slack.com/x", events=[WebhookEvent.JOBS_CHANGED], format="slack"
        )


SOURCES = """
[[feeds]]
name = "Jobs"
url = "https://jobs.example/feed"

[[webhooks]]
name = "Board"
url = "https://board.example/hook"
secret = "a-secret-of-twenty-chars"
events = ["jobs.changed", "run.failed"]

[[webhooks]]
name = "Ops"
url = "https://hooks.slack.com/services/T/B/X"
events = ["feed.paused"]
format = "slack"
"""


def test_webhooks_are_read_from_the_sources_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(SOURCES)
    board, ops = load_webhooks(path)
    assert (board.events, board.format, board.secret) == (
        [WebhookEvent.JOBS_CHANGED, WebhookEvent.RUN_FAILED],
        WebhookFormat.JSON,
        "a-secret-of-twenty-chars",
    )
    assert (ops.format, ops.secret) == (WebhookFormat.SLACK, None)
    assert [feed.name for feed in load_sources(path)] == ["Jobs"]  # the feeds read as before
    path.write_text(SOURCES.split("[[webhooks]]")[0])
    assert load_webhooks(path) == []


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'name = "B"\nurl = "https://b/"\nevents = ["run.failed"]',
            "webhook #1 ('B'): secret: required for format 'json'",
        ),
        (
            'name = "B"\nurl = "https://b/"\nsecret = "x"\nevents = ["run.failed"]',
            "secret: String should have at least 16",
        ),
        (
            'name = "B"\nurl = "https://b/"\nsecret = "0123456789abcdefg"\nevents = ["run.done"]',
            "events.0: Input should be",
        ),
        (
            'name = "B"\nurl = "ftp://b/"\nsecret = "0123456789abcdefg"\nevents = []',
            "url: String should match",
        ),
        (
            'name = "S"\nurl = "https://s/"\nevents = ["jobs.changed"]\nformat = "slack"',
            "format 'slack' carries run and feed events only",
        ),
    ],
)
def test_a_bad_webhook_is_refused_with_the_field_and_the_problem(
    tmp_path: Path, table: str, message: str
) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(f'[[feeds]]\nname = "J"\nurl = "https://j/"\n\n[[webhooks]]\n{table}\n')
    with pytest.raises(ConfigError, match="^sources: ") as refused:
        load_webhooks(path)
    assert message in str(refused.value)
