"""Dead letters: a feed that fails for good is in the failed set; retrying it once the feed is back
completes its entry with exact counts; a failed batch is retried and its entry recounted; discard."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from fixtures.sql import SQL_BACKENDS, is_sqlite, run_sql
from jobimporter.config import Settings
from jobimporter.runtime import Runtime

from .conftest import WORKERS, ImportFeeds, serve_jobs, wait_for_run

pytestmark = [pytest.mark.external_service, WORKERS]

# Batch 2 refused by a trigger, as a column too small for a value would refuse it: a permanent error.
REFUSAL = "value too long for the column (a test trigger)"
REFUSE_BATCH_TWO = {
    "sqlite": (
        (
            "CREATE TRIGGER refuse_batch_two BEFORE INSERT ON batches WHEN NEW.batch_no = 2 "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        ),
    ),
    "postgresql": (
        (
            "CREATE FUNCTION refuse_batch_two() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
        ),
        (
            "CREATE TRIGGER refuse_batch_two BEFORE INSERT ON batches FOR EACH ROW "
            "WHEN (NEW.batch_no = 2) EXECUTE FUNCTION refuse_batch_two()"
        ),
    ),
}
TAKE_BATCH_TWO = {
    "sqlite": ("DROP TRIGGER refuse_batch_two",),
    "postgresql": ("DROP TRIGGER refuse_batch_two ON batches",),
}

LETTER_KEYS = {"id", "queue", "name", "job_id", "reason", "attempts", "failed_at", "summary"}


async def failed_letters(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/api/failed", params=params)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    assert answer.json()["total"] >= len(items)
    return items


async def until_no_letters(client: httpx.AsyncClient, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while await failed_letters(client):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_a_failed_feed_is_listed_then_retried_to_exact_counts(
    client: httpx.AsyncClient, feeds: Any, import_feeds: ImportFeeds, real_jobs: list[dict[str, Any]]
) -> None:
    good = serve_jobs(feeds, "/good", real_jobs[:6])
    gone = serve_jobs(feeds, "/gone", [], status=404)
    run = await import_feeds([good, gone])
    assert run["status"] == "partial"
    failed_entry = run["feeds"][1]

    (letter,) = await failed_letters(client)
    assert set(letter) == LETTER_KEYS
    assert letter["id"] == f"jobimporter-feeds:feed-{failed_entry['id']}"
    assert (letter["queue"], letter["name"], letter["attempts"]) == ("jobimporter-feeds", "import-feed", 1)
    assert "404" in letter["reason"] and letter["failed_at"]
    assert letter["summary"] == {
        "run_id": run["run_id"], "entry_id": failed_entry["id"], "feed_id": failed_entry["feed_id"],
        "url": gone.url, "name": gone.name, "batch_no": None, "items": None,
    }  # fmt: skip
    assert (await client.get(f"/api/failed/{letter['id']}")).json() == letter
    assert await failed_letters(client, queue="jobimporter-batches") == []

    serve_jobs(feeds, "/gone", real_jobs[3:13])  # the feed is back: 10 jobs, 3 of them known
    answer = await client.post(f"/api/failed/{letter['id']}/retry")
    assert (answer.status_code, answer.json()) == (202, {"retried": 1})

    rerun = await wait_for_run(client, run["run_id"])
    entry = next(e for e in rerun["feeds"] if e["id"] == failed_entry["id"])
    assert (entry["status"], entry["error"], entry["http_status"]) == ("completed", None, 200)
    assert (entry["total_fetched"], entry["new"], entry["unchanged"], entry["failed"]) == (10, 7, 3, 0)
    assert rerun["status"] == "completed" and rerun["totals"]["new"] == 13
    assert rerun["feeds"][0] == run["feeds"][0]  # the other entry is untouched
    assert await failed_letters(client) == []
    assert (await client.post(f"/api/failed/{letter['id']}/retry")).status_code == 404


async def test_retry_all_and_discard(
    client: httpx.AsyncClient, feeds: Any, import_feeds: ImportFeeds, real_jobs: list[dict[str, Any]]
) -> None:
    sources = [serve_jobs(feeds, f"/gone{n}", [], status=410) for n in range(3)]
    run = await import_feeds(sources)
    assert run["status"] == "failed"
    letters = await failed_letters(client)
    assert len(letters) == 3
    page = (await client.get("/api/failed", params={"page": 2, "page_size": 2})).json()
    assert (page["total"], len(page["items"])) == (3, 1)

    assert (await client.delete(f"/api/failed/{letters[0]['id']}")).status_code == 204
    assert (await client.delete(f"/api/failed/{letters[0]['id']}")).status_code == 404
    kept = await client.get(f"/api/imports/{letters[0]['summary']['entry_id']}")
    assert kept.json()["status"] == "failed"  # discarding leaves the history alone

    for n in range(3):
        serve_jobs(feeds, f"/gone{n}", real_jobs[n * 2 : n * 2 + 2])
    answer = await client.post("/api/failed/retry")
    assert (answer.status_code, answer.json()) == (202, {"retried": 2})
    rerun = await wait_for_run(client, run["run_id"])
    statuses = {e["id"]: e["status"] for e in rerun["feeds"]}
    assert sorted(statuses.values()) == ["completed", "completed", "failed"]
    assert rerun["status"] == "partial" and rerun["totals"]["new"] == 4
    await until_no_letters(client)


async def test_unknown_letters_and_queues(client: httpx.AsyncClient) -> None:
    for letter_id in ("nope", "jobimporter-feeds:feed-nope", "other-queue:feed-x", "jobimporter-feeds:"):
        assert (await client.post(f"/api/failed/{letter_id}/retry")).status_code == 404
        assert (await client.get(f"/api/failed/{letter_id}")).status_code == 404
    bad = await client.get("/api/failed", params={"queue": "elsewhere"})
    assert bad.status_code == 422 and "jobimporter-feeds" in bad.json()["detail"]
    assert (await client.post("/api/failed/retry", params={"queue": "elsewhere"})).status_code == 422


@pytest.mark.parametrize("database_url", SQL_BACKENDS)
async def test_a_failed_batch_is_retried_and_its_entry_recounted(
    client: httpx.AsyncClient,
    feeds: Any,
    runtime: Runtime,
    settings: Settings,
    import_feeds: ImportFeeds,
    real_jobs: list[dict[str, Any]],
) -> None:
    """Batch 2 of 3 is refused by the database (a trigger raising a permanent error): the entry
    counts its 7 items as failed. Once the trigger is gone, retrying the batch writes it and
    recounts the entry."""
    store = runtime.ctx.store
    backend = "sqlite" if is_sqlite(settings.database_url) else "postgresql"
    await run_sql(settings.database_url, *REFUSE_BATCH_TWO[backend])
    run = await import_feeds([serve_jobs(feeds, "/feed", real_jobs[:20])])
    (entry,) = run["feeds"]
    assert (entry["status"], entry["new"], entry["failed"]) == ("completed", 13, 7)
    assert run["status"] == "partial"
    (letter,) = await failed_letters(client)
    assert letter["id"] == f"jobimporter-batches:batch-{entry['id']}-2"
    assert letter["summary"]["batch_no"] == 2 and letter["summary"]["items"] == 7
    assert letter["summary"]["url"] == entry["url"]  # named from its entry
    assert REFUSAL in letter["reason"] and letter["attempts"] == 1  # permanent: not retried

    await run_sql(settings.database_url, *TAKE_BATCH_TWO[backend])  # the database takes it now
    assert (await client.post(f"/api/failed/{letter['id']}/retry")).json() == {"retried": 1}

    rerun = await wait_for_run(client, run["run_id"])
    (again,) = rerun["feeds"]
    assert (again["status"], again["total_fetched"], again["new"], again["failed"]) == (
        "completed",
        20,
        20,
        0,
    )
    assert (again["failures"], again["error"], rerun["status"]) == ([], None, "completed")
    assert await store.count_jobs() == 20
    await until_no_letters(client)
