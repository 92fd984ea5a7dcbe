"""The lifecycle through the API and the CLI (issue 11): the change log by cursor, the jobs' status
filter and a job's changes, a paused feed shown and resumed with PATCH, webhooks and their deliveries.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobimporter.config import Settings
from jobimporter.models import Delivery, WebhookEvent
from jobimporter.runtime import Runtime

from .conftest import WORKERS, ImportFeeds, serve_jobs

pytestmark = [pytest.mark.external_service]


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, database_url: str) -> Settings:
    """As the API tests' settings, with no grace period (jobs that leave expire at once) and a feed
    paused after one permanent failure: the defaults (a day, five) are covered in e2e/test_lifecycle.py."""
    return Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        database_url=database_url,
        batch_size=7,
        backoff_ms=100,
        host_interval_s=0,
        expire_after_s=0,
        pause_after_failures=1,
    )


async def all_changes(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await client.get("/api/changes", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


@WORKERS
async def test_changes_by_cursor_the_status_filter_and_a_jobs_changes(
    client: httpx.AsyncClient,
    feeds: Any,
    import_feeds: ImportFeeds,
    real_jobs: list[dict[str, Any]],
    settings: Settings,
) -> None:
    await import_feeds([serve_jobs(feeds, "/f", real_jobs[:10])])
    second = await import_feeds([serve_jobs(feeds, "/f", real_jobs[:8])])
    assert second["feeds"][0]["expired"] == second["totals"]["expired"] == 2

    everything = await all_changes(client)
    assert [c["kind"] for c in everything] == ["new"] * 10 + ["expired"] * 2
    pages, after = [], 0
    while True:
        page = (await client.get("/api/changes", params={"after": after, "limit": 4})).json()
        pages.append(page)
        after = page["next"]
        if not page["more"]:
            break
    assert [len(p["items"]) for p in pages] == [4, 4, 4, 0]
    assert [c for p in pages for c in p["items"]] == everything
    assert pages[-1]["next"] == everything[-1]["cursor"]  # nothing new: the cursor stays
    assert (await client.get("/api/changes", params={"after": -1})).status_code == 422

    active = (await client.get("/api/jobs")).json()
    expired = (await client.get("/api/jobs", params={"status": "expired"})).json()
    assert (
        active["total"],
        expired["total"],
        (await client.get("/api/jobs?status=all")).json()["total"],
    ) == (8, 2, 10)
    assert {j["status"] for j in active["items"]} == {"active"}
    gone = expired["items"][0]
    assert (gone["status"], gone["expiry_reason"]) == ("expired", "left its feeds")
    assert gone["expired_at"] == second["feeds"][0]["finished_at"]
    assert (await client.get("/api/jobs", params={"status": "gone"})).status_code == 422
    history = (await client.get(f"/api/jobs/{gone['key']}/changes")).json()
    assert [(c["kind"], c["reason"]) for c in history] == [("new", None), ("expired", "left its feeds")]
    assert (await client.get("/api/jobs/nope/changes")).status_code == 404

    printed = await _cli_changes(settings, "--json", "--after", str(everything[3]["cursor"]))
    assert [json.loads(line) for line in printed] == everything[4:]
    text = await _cli_changes(settings)
    assert len(text) >= 12 and text[0].startswith(f"#{everything[0]['cursor']}  ")
    assert all(len(line) <= 80 for line in text)
    assert "  expired  " in " ".join(text[-4:]) and "(left its feeds)" in " ".join(text[-3:])


async def _cli_changes(settings: Settings, *args: str) -> list[str]:
    """``jobimporter changes`` as a user runs it, against the test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.update(
        DATABASE_URL=str(settings.database_url), JOBIMPORTER_DATA_DIR=str(settings.data_dir), COLUMNS="80"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobimporter.cli", "changes", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().splitlines()


@WORKERS
async def test_changes_follow_prints_new_changes_as_they_come(
    feeds: Any, import_feeds: ImportFeeds, real_jobs: list[dict[str, Any]], settings: Settings
) -> None:
    """``jobimporter changes --follow --json``: what is there, then each change appended later, until
    Ctrl-C (exit 130, no traceback), even started with SIGINT ignored (a shell's background job, or a
    parent that ignores it: the follower once inherited that and ran on)."""
    await import_feeds([serve_jobs(feeds, "/f", real_jobs[:3])])
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.update(DATABASE_URL=str(settings.database_url), JOBIMPORTER_DATA_DIR=str(settings.data_dir))
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", 'trap "" INT; exec "$@"', "follower",
        sys.executable, "-m", "jobimporter.cli", "changes", "--follow", "--json", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        first = [json.loads(await asyncio.wait_for(process.stdout.readline(), 60)) for _ in range(3)]
        await import_feeds([serve_jobs(feeds, "/f", real_jobs[:5])])  # two more jobs
        later = [json.loads(await asyncio.wait_for(process.stdout.readline(), 60)) for _ in range(2)]
    finally:
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert [c["kind"] for c in first + later] == ["new"] * 5
    assert [c["cursor"] for c in first + later] == sorted({c["cursor"] for c in first + later})
    assert process.returncode == 130 and b"Traceback" not in err, err


@WORKERS
async def test_a_paused_feed_shows_why_and_resumes_with_patch(
    client: httpx.AsyncClient, feeds: Any, import_feeds: ImportFeeds
) -> None:
    run = await import_feeds([serve_jobs(feeds, "/gone", [], status=404)])
    feed_id = run["feeds"][0]["feed_id"]

    paused = (await client.get(f"/api/feeds/{feed_id}")).json()
    assert (paused["enabled"], paused["paused_at"]) == (False, run["feeds"][0]["finished_at"])
    assert "404" in paused["paused_reason"] and paused["health"]["permanent_failures"] == 1
    resumed = await client.patch(f"/api/feeds/{feed_id}", json={"enabled": True})
    assert resumed.status_code == 200
    body = resumed.json()
    assert (body["enabled"], body["paused_at"], body["paused_reason"]) == (True, None, None)
    assert body["health"]["permanent_failures"] == 0


async def test_webhooks_are_added_edited_removed_and_never_show_their_secret(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    created = await client.post(
        "/api/webhooks",
        json={"name": "Board", "url": "https://board.example/hook", "events": ["jobs.changed", "run.failed"]},
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert len(hook["secret"]) >= 32 and hook["format"] == "json"  # made for it, shown this once
    shown = (await client.get(f"/api/webhooks/{hook['id']}")).json()
    assert "secret" not in shown and shown["events"] == ["jobs.changed", "run.failed"]
    assert all("secret" not in h for h in (await client.get("/api/webhooks")).json()["items"])
    given = await client.post(
        "/api/webhooks",
        json={"name": "B", "url": "https://b.example/", "events": ["run.finished"], "secret": "x" * 20},
    )
    assert given.json()["secret"] == "x" * 20

    again = await client.post(
        "/api/webhooks", json={"name": "Again", "url": hook["url"], "events": ["run.failed"]}
    )
    assert again.status_code == 409
    slack = {"name": "S", "url": "https://s.example/", "events": ["jobs.changed"], "format": "slack"}
    refused = await client.post("/api/webhooks", json=slack)
    assert refused.status_code == 422 and "run and feed events only" in refused.json()["detail"]
    bad = await client.patch(f"/api/webhooks/{hook['id']}", json={"format": "slack"})
    assert bad.status_code == 422
    edited = await client.patch(
        f"/api/webhooks/{hook['id']}", json={"events": ["feed.paused"], "enabled": False}
    )
    assert (edited.json()["events"], edited.json()["enabled"]) == (["feed.paused"], False)
    assert (
        await client.post("/api/webhooks", json={"name": "N", "url": "ftp://x/", "events": []})
    ).status_code == 422

    stored = Delivery(
        id="dlv-1", webhook_id=hook["id"], event=WebhookEvent.RUN_FAILED, subject="run_1", body="{}",
        created_at=(await runtime.ctx.store.get_webhook(hook["id"])).created_at,
    )  # fmt: skip
    await runtime.ctx.store.add_deliveries([stored])
    listed = (await client.get("/api/webhooks/deliveries", params={"webhook_id": hook["id"]})).json()
    assert (listed["total"], listed["items"][0]["id"], listed["items"][0]["status"]) == (
        1,
        "dlv-1",
        "pending",
    )
    assert (await client.get("/api/webhooks/deliveries", params={"status": "delivered"})).json()["total"] == 0
    assert (await client.get("/api/webhooks/deliveries/dlv-1")).json()["body"] == "{}"
    assert (await client.get("/api/webhooks/deliveries/nope")).status_code == 404

    assert (await client.delete(f"/api/webhooks/{hook['id']}")).status_code == 204
    assert (await client.get(f"/api/webhooks/{hook['id']}")).status_code == 404
    assert (await client.get("/api/webhooks/deliveries/dlv-1")).status_code == 200  # deliveries stay
