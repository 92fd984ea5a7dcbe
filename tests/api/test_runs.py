"""Runs and import entries: POST /api/runs through the real queue, listing, filters, paging, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from jobimporter.models import EntryStatus, ImportEntry, ImportRun, Trigger, new_id
from jobimporter.runtime import Runtime

from .conftest import WORKERS, ImportFeeds, serve_jobs

pytestmark = [pytest.mark.external_service]

RUN_KEYS = {"run_id", "trigger", "status", "started_at", "finished_at", "feeds", "totals", "duration_s"}
ENTRY_KEYS = {
    "id", "run_id", "feed_id", "url", "name", "status", "http_status", "bytes", "duration_s", "started_at",
    "finished_at", "total_fetched", "new", "updated", "unchanged", "failed", "expired", "batches", "failures",
    "error",
}  # fmt: skip
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@WORKERS
async def test_post_run_imports_through_the_queue_with_exact_counts(
    client: httpx.AsyncClient, feeds: Any, import_feeds: ImportFeeds, real_jobs: list[dict[str, Any]]
) -> None:
    a = serve_jobs(feeds, "/a", real_jobs[:15])
    b = serve_jobs(feeds, "/b", real_jobs[10:20])
    down = serve_jobs(feeds, "/down", [], status=404)

    run = await import_feeds([a, b, down])

    assert set(run) == RUN_KEYS and run["trigger"] == "manual" and run["status"] == "partial"
    entries = {e["name"]: e for e in run["feeds"]}
    assert all(set(e) == ENTRY_KEYS for e in run["feeds"])
    assert (entries[a.name]["status"], entries[a.name]["total_fetched"]) == ("completed", 15)
    assert entries[b.name]["total_fetched"] == 10
    assert entries[a.name]["new"] + entries[b.name]["new"] == 20  # 5 shared jobs are new once
    assert entries[a.name]["unchanged"] + entries[b.name]["unchanged"] == 5
    assert entries[down.name]["status"] == "failed" and "404" in entries[down.name]["error"]
    assert run["totals"] == {
        "total_fetched": 25,
        "new": 20,
        "updated": 0,
        "unchanged": 5,
        "failed": 0,
        "expired": 0,
    }
    assert run["duration_s"] is not None and run["duration_s"] >= 0

    listed = (await client.get("/api/runs")).json()
    assert (listed["total"], listed["page"], listed["page_size"]) == (1, 1, 20)
    assert listed["items"][0] == run
    imports = (await client.get("/api/imports", params={"run_id": run["run_id"]})).json()
    assert [e["id"] for e in imports["items"]] == [e["id"] for e in run["feeds"]]
    assert {e["trigger"] for e in imports["items"]} == {"manual"}
    one = (await client.get(f"/api/imports/{entries[down.name]['id']}")).json()
    assert one == {**entries[down.name], "trigger": "manual"}


async def test_post_run_defaults_to_enabled_feeds_and_refuses_unknown_ones(
    client: httpx.AsyncClient, feeds: Any, runtime: Runtime, real_jobs: list[dict[str, Any]]
) -> None:
    assert (await client.post("/api/runs")).status_code == 422  # no feeds yet
    on = serve_jobs(feeds, "/on", real_jobs[:3])
    off = serve_jobs(feeds, "/off", real_jobs[3:5]).model_copy(update={"enabled": False})
    await runtime.ctx.store.sync_feeds([on, off])

    answer = await client.post("/api/runs")
    assert answer.status_code == 202
    run = (await client.get(f"/api/runs/{answer.json()['run_id']}")).json()
    assert [e["url"] for e in run["feeds"]] == [on.url]

    refused = await client.post("/api/runs", json={"feed_ids": ["feed_nope", "feed_gone"]})
    assert refused.status_code == 422 and refused.json()["detail"] == "unknown feed ids: feed_nope, feed_gone"
    assert (await client.post("/api/runs", json={"feed_ids": []})).status_code == 422
    assert (await client.post("/api/runs", json={"feeds": ["x"]})).status_code == 422


async def stored_runs(runtime: Runtime) -> list[ImportRun]:
    """Four finished runs on consecutive days: cron/feed_a ok, manual/feed_a+b, cron/feed_b, cli."""
    store = runtime.ctx.store
    plan = [
        (Trigger.CRON, [("feed_a", EntryStatus.COMPLETED)]),
        (Trigger.MANUAL, [("feed_a", EntryStatus.COMPLETED), ("feed_b", EntryStatus.FAILED)]),
        (Trigger.CRON, [("feed_b", EntryStatus.FAILED)]),
        (Trigger.CLI, [("feed_a", EntryStatus.NOT_MODIFIED)]),
    ]
    runs = []
    for day, (trigger, entries) in enumerate(plan):
        run_id = new_id("run")
        rows = [
            ImportEntry(id=f"{run_id}-{i}", run_id=run_id, feed_id=f, url=f"https://{f}.example/", name=f)
            for i, (f, _) in enumerate(entries)
        ]
        started = T0 + timedelta(days=day)
        await store.create_run(ImportRun(run_id=run_id, trigger=trigger, started_at=started, feeds=rows))
        for row, (_, status) in zip(rows, entries, strict=True):
            await store.finalize_entry(row.id, status=status, finished_at=started + timedelta(seconds=5))
        closed = await store.finalize_run_if_done(run_id, started + timedelta(seconds=10))
        assert closed is not None
        runs.append(closed)
    return runs


async def test_runs_list_filters_sort_and_pages(client: httpx.AsyncClient, runtime: Runtime) -> None:
    cron_a, manual, cron_b, cli = await stored_runs(runtime)

    async def ids(**params: Any) -> list[str]:
        answer = await client.get("/api/runs", params=params)
        assert answer.status_code == 200, answer.text
        return [r["run_id"] for r in answer.json()["items"]]

    assert await ids() == [cli.run_id, cron_b.run_id, manual.run_id, cron_a.run_id]
    assert await ids(sort="started_at") == [cron_a.run_id, manual.run_id, cron_b.run_id, cli.run_id]
    assert await ids(trigger="cron") == [cron_b.run_id, cron_a.run_id]
    assert await ids(trigger="cron", status="failed") == [cron_b.run_id]
    assert await ids(feed_id="feed_b") == [cron_b.run_id, manual.run_id]
    since, until = (T0 + timedelta(days=1)).isoformat(), (T0 + timedelta(days=3)).isoformat()
    assert await ids(since=since, until=until) == [cron_b.run_id, manual.run_id]
    assert await ids(since="2026-03-03T12:00:00") == [cron_b.run_id, cli.run_id][::-1]  # naive is UTC
    page = (await client.get("/api/runs", params={"page": 2, "page_size": 3})).json()
    assert (page["total"], page["page"], page["page_size"]) == (4, 2, 3)
    assert [r["run_id"] for r in page["items"]] == [cron_a.run_id]
    assert (await client.get("/api/runs", params={"page": 9})).json()["items"] == []
    run = (await client.get(f"/api/runs/{manual.run_id}")).json()
    assert (run["status"], run["duration_s"], run["totals"]["failed"]) == ("partial", 10.0, 0)


async def test_imports_list_filters_sort_and_pages(client: httpx.AsyncClient, runtime: Runtime) -> None:
    cron_a, manual, cron_b, cli = await stored_runs(runtime)

    async def ids(**params: Any) -> list[str]:
        answer = await client.get("/api/imports", params=params)
        assert answer.status_code == 200, answer.text
        return [e["id"] for e in answer.json()["items"]]

    every = [cli.feeds[0].id, cron_b.feeds[0].id, manual.feeds[0].id, manual.feeds[1].id, cron_a.feeds[0].id]
    assert await ids() == every
    assert await ids(sort="started_at") == [every[4], every[2], every[3], every[1], every[0]]
    assert await ids(feed_id="feed_b", status="failed") == [cron_b.feeds[0].id, manual.feeds[1].id]
    assert await ids(trigger="manual") == [manual.feeds[0].id, manual.feeds[1].id]
    assert await ids(run_id=cron_a.run_id) == [cron_a.feeds[0].id]
    assert await ids(until=(T0 + timedelta(days=1)).isoformat()) == [cron_a.feeds[0].id]
    page = (await client.get("/api/imports", params={"page": 2, "page_size": 2})).json()
    assert (page["total"], [e["id"] for e in page["items"]]) == (5, every[2:4])
    assert page["items"][0]["trigger"] == "manual"


BAD_QUERIES = [
    ("/api/runs", {"page_size": 201}),
    ("/api/runs", {"page": 0}),
    ("/api/runs", {"trigger": "weekly"}),
    ("/api/runs", {"status": "done"}),
    ("/api/runs", {"since": "yesterday"}),
    ("/api/runs", {"sort": "status"}),
    ("/api/imports", {"status": "lost"}),
    ("/api/imports", {"sort": "-name"}),
    ("/api/jobs", {"sort": "salary"}),
    ("/api/jobs", {"since": "soon"}),
    ("/api/stats", {"limit": 0}),
    ("/api/failed", {"page_size": 0}),
]


async def test_bad_query_parameters_are_422_with_a_clear_message(client: httpx.AsyncClient) -> None:
    for path, params in BAD_QUERIES:
        answer = await client.get(path, params=params)
        assert answer.status_code == 422, (path, params)
        detail = answer.json()["detail"]
        assert isinstance(detail, str) and f"query.{next(iter(params))}" in detail, detail
        assert answer.json()["errors"][0]["loc"] == ["query", next(iter(params))]


async def test_missing_runs_and_imports_are_404(client: httpx.AsyncClient) -> None:
    for path in ("/api/runs/run_missing", "/api/imports/imp_missing"):
        answer = await client.get(path)
        assert answer.status_code == 404
        assert answer.json()["detail"].endswith("not found")
