"""Formats beyond RSS end to end: each real capture served by the local feed server, imported through
the real queue and workers into SQLite and PostgreSQL, stores exactly the items an independent
reading of the file gives (title, URL, company); paged APIs are followed page by page, politely,
up to the feed's page cap, and a page that fails fails the entry with its reason while the items
read before it are kept.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.captures import CAPTURE_LIST, Capture
from jobimporter.config import Settings
from jobimporter.models import EntryStatus, FeedSource, ImportEntry, ImportRun, Trigger
from jobimporter.runs import start_run, wait_for_run
from jobimporter.runtime import Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]

HOST_INTERVAL_S = 0.3


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        database_url=database_url,
        batch_size=25,  # several batches for the bigger captures
        backoff_ms=100,  # retries at the default backoff are covered by the queue tests
        max_feed_bytes=5_000_000,
        # Every feed here is on 127.0.0.1: a short interval still makes each page wait its turn.
        host_interval_s=HOST_INTERVAL_S,
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with Runtime(settings, workers=True) as rt:
        yield rt


async def run_import(runtime: Runtime, sources: list[FeedSource]) -> ImportRun:
    ctx = runtime.ctx
    feeds = await ctx.store.sync_feeds(sources)
    after = await ctx.events.last_id()
    run = await start_run(ctx, feeds, Trigger.CLI)
    return await wait_for_run(ctx, run.run_id, after)


async def stored(runtime: Runtime, entry: ImportEntry) -> set[tuple[str, str | None, str | None]]:
    jobs = await runtime.ctx.store.list_jobs(limit=1000, feed_id=entry.feed_id)
    return {(j["record"].title, j["record"].url, j["record"].company) for j in jobs}


@pytest.mark.parametrize("capture", CAPTURE_LIST, ids=[c.file.split("-20")[0] for c in CAPTURE_LIST])
async def test_a_real_capture_imports_whole(feeds: Any, runtime: Runtime, capture: Capture) -> None:
    feeds.route(capture.path, body=capture.body, content_type=None)
    url = feeds.url(capture.path)
    source = FeedSource(name=capture.file, url=url, profile=capture.profile, max_pages=capture.max_pages)
    run = await run_import(runtime, [source])

    (entry,) = run.feeds
    expected = capture.expected(url)
    distinct = {e.ident: e for e in reversed(expected)}  # the first of duplicates is the one kept
    assert entry.status is EntryStatus.COMPLETED, entry.error
    assert (entry.total_fetched, entry.new, entry.failed) == (
        len(expected),
        len(distinct),
        len(expected) - len(distinct),
    )
    assert all(f["reason"].startswith("duplicate") for f in entry.failures)
    assert await stored(runtime, entry) == {(e.title, e.url, e.company) for e in distinct.values()}


# ---------------------------------------------------------------- paging


def himalayas_pages(size: int) -> list[bytes]:
    """The real Himalayas capture cut into pages the way its API pages (offset, limit, totalCount)."""
    document = json.loads(next(c for c in CAPTURE_LIST if c.file.startswith("himalayas")).body)
    jobs = document["jobs"]
    return [
        json.dumps(document | {"offset": start, "limit": size, "totalCount": len(jobs), "jobs": jobs[start : start + size]}).encode()
        for start in range(0, len(jobs), size)
    ]  # fmt: skip


def route_pages(feeds: Any, pages: list[bytes], size: int) -> list[str]:
    paths = [f"/jobs/api?limit={size}&offset={n * size}" for n in range(len(pages))]
    for path, body in zip(paths, pages, strict=True):
        feeds.route(path, body=body, content_type="application/json")
    return paths


async def test_a_paged_api_is_followed_to_its_end(feeds: Any, runtime: Runtime) -> None:
    pages = himalayas_pages(7)
    paths = route_pages(feeds, pages, 7)
    run = await run_import(runtime, [FeedSource(name="himalayas", url=feeds.url(paths[0]))])

    (entry,) = run.feeds
    assert entry.status is EntryStatus.COMPLETED, entry.error
    assert (entry.total_fetched, entry.new) == (20, 20)
    assert [len(feeds.requests_for(p)) for p in paths] == [1, 1, 1]
    # Each page waited for its turn through the host limiter (test_paging.py checks the order of
    # turns and requests; the limiter's spacing has its own tests).


async def test_the_page_cap_stops_a_long_api(feeds: Any, runtime: Runtime) -> None:
    paths = route_pages(feeds, himalayas_pages(7), 7)
    run = await run_import(runtime, [FeedSource(name="capped", url=feeds.url(paths[0]), max_pages=2)])
    (entry,) = run.feeds
    assert (entry.status, entry.total_fetched, entry.new) == (EntryStatus.COMPLETED, 14, 14)
    assert feeds.requests_for(paths[2]) == []


async def test_a_page_that_fails_fails_the_entry_and_keeps_the_items_before_it(
    feeds: Any, runtime: Runtime
) -> None:
    pages = himalayas_pages(7)
    paths = route_pages(feeds, pages, 7)
    feeds.route(paths[1], status=404, body=b"gone", content_type="text/plain")
    run = await run_import(runtime, [FeedSource(name="broken", url=feeds.url(paths[0]))])

    (entry,) = run.feeds
    assert entry.status is EntryStatus.FAILED
    assert entry.error is not None and entry.error.startswith("parse: page 2 (")
    assert "HTTP 404" in entry.error and "the 7 items before it were read" in entry.error
    assert (entry.total_fetched, entry.new) == (7, 7)
    assert len(await stored(runtime, entry)) == 7
    assert feeds.requests_for(paths[2]) == []


async def test_a_page_with_a_passing_error_is_retried(feeds: Any, runtime: Runtime) -> None:
    pages = himalayas_pages(10)
    paths = route_pages(feeds, pages, 10)
    feeds.sequence(
        paths[1], [{"status": 503, "body": b"busy"}, {"body": pages[1], "content_type": "application/json"}]
    )
    run = await run_import(runtime, [FeedSource(name="flaky", url=feeds.url(paths[0]))])
    (entry,) = run.feeds
    assert (entry.status, entry.total_fetched, entry.new) == (EntryStatus.COMPLETED, 20, 20), entry.error
    assert len(feeds.requests_for(paths[1])) == 2


async def test_a_feed_with_a_field_mapping_imports_what_the_mapping_reads(
    feeds: Any, runtime: Runtime
) -> None:
    from lxml import etree

    from jobimporter.mapping import FieldMapping

    capture = next(c for c in CAPTURE_LIST if c.file.startswith("jobvite"))
    feeds.route("/jobvite.xml", body=capture.body, content_type="text/xml")
    mapping = FieldMapping.model_validate({"items": "/result/job", "fields": {
        "guid": "id", "title": "title", "link": "detail-url", "company": {"value": "Opower"},
        "locations": {"path": "location", "split": ",", "take": 0},
        "published": {"path": "date", "date_format": "%m/%d/%Y"}}})  # fmt: skip
    run = await run_import(
        runtime, [FeedSource(name="jobvite", url=feeds.url("/jobvite.xml"), mapping=mapping)]
    )

    (entry,) = run.feeds
    jobs = list(etree.fromstring(capture.body).iter("job"))
    assert (entry.status, entry.total_fetched, entry.new) == (EntryStatus.COMPLETED, len(jobs), len(jobs)), (
        entry.error
    )
    stored_jobs = await runtime.ctx.store.list_jobs(limit=1000, feed_id=entry.feed_id)
    expected = {
        (" ".join(j.findtext("title").split()), j.findtext("location").split(",")[0].strip()) for j in jobs
    }
    assert {(s["record"].title, s["record"].locations[0]) for s in stored_jobs} == expected
    assert {s["record"].company for s in stored_jobs} == {"Opower"}
