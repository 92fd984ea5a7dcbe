"""End to end through the real queue: local feed server → fetch job → batch jobs → store → history.

Real servers only: the private Redis and PostgreSQL the tests start, SQLite in a temp dir, and the
local HTTP feed server. Workers run in this process except where a test kills one.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_lazy_fixtures import lf

from fixtures.sql import SQL_BACKENDS, run_sql
from fixtures.wpjm import changed_copy, load_real_jobs, many_jobs, nine_feeds, render_feed, serve_feeds
from jobimporter.config import Settings
from jobimporter.models import EntryStatus, FeedSource, ImportRun, RunStatus, Trigger
from jobimporter.runs import feed_job, start_run, wait_for_run
from jobimporter.runtime import Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        database_url=database_url,
        batch_size=7,  # small batches: several per feed, so fan-out and finalize really happen
        concurrency=4,
        backoff_ms=100,
        fetch_timeout_s=2.0,
        read_timeout_s=1.0,
        max_feed_bytes=2_000_000,
        host_interval_s=0,  # every test feed is on 127.0.0.1; politeness has its own tests
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with Runtime(settings, workers=True) as rt:
        yield rt


ImportFn = Callable[[list[FeedSource]], Any]


@pytest.fixture
def run_import(runtime: Runtime) -> Callable[[list[FeedSource]], Any]:
    async def run(sources: list[FeedSource]) -> ImportRun:
        ctx = runtime.ctx
        feeds = await ctx.store.sync_feeds(sources)
        after = await ctx.events.last_id()
        run = await start_run(ctx, feeds, Trigger.CLI)
        return await wait_for_run(ctx, run.run_id, after)

    return run


def assert_exact(run: ImportRun) -> None:
    for entry in run.feeds:  # failed entries too: a feed that broke mid-document keeps exact counts
        if entry.status.is_final:
            assert entry.total_fetched == entry.new + entry.updated + entry.unchanged + entry.failed, entry
            assert len(entry.failures) == entry.failed, entry


def by_url(run: ImportRun) -> dict[str, Any]:
    return {e.url: e for e in run.feeds}


async def test_first_import_counts_each_job_once_across_overlapping_feeds(
    feeds: Any, runtime: Runtime, run_import: Any
) -> None:
    sources = serve_feeds(feeds, nine_feeds())
    run = await run_import(sources)

    assert run.status is RunStatus.COMPLETED, [(e.url, e.status, e.error) for e in run.feeds]
    assert_exact(run)
    distinct = await runtime.ctx.store.count_jobs()
    assert sum(e.new for e in run.feeds) == distinct
    assert sum(e.total_fetched for e in run.feeds) > distinct  # the feeds really overlap
    higher_ed = next(e for e in run.feeds if e.url.endswith("/rss/articleFeed.cfm"))
    assert (higher_ed.status, higher_ed.total_fetched) == (EntryStatus.COMPLETED, 0)
    for entry in run.feeds:
        assert entry.total_fetched == nine_feeds_count(entry.url), entry.url


def nine_feeds_count(url: str) -> int:
    path = url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    return render_count(nine_feeds()["/" + path])


def render_count(body: bytes) -> int:
    return body.count(b"<item>")


async def test_reimport_is_all_unchanged_and_three_edits_are_exactly_three_updates(
    feeds: Any, runtime: Runtime, run_import: Any
) -> None:
    sources = serve_feeds(feeds, nine_feeds())
    first = await run_import(sources)
    second = await run_import(sources)
    assert second.status is RunStatus.COMPLETED
    assert_exact(second)
    assert [(e.new, e.updated, e.failed) for e in second.feeds] == [(0, 0, 0)] * len(second.feeds)
    assert sum(e.unchanged for e in second.feeds) == sum(e.total_fetched for e in first.feeds)

    jobs = load_real_jobs()[:50]
    edited = {str(j["id"]) for j in jobs[:3]}
    changed = [changed_copy(j) if str(j["id"]) in edited else j for j in jobs]
    main = next(s for s in sources if s.url.endswith("/?feed=job_feed"))
    feeds.route(
        main.url.split(str(feeds.url("")).rstrip("/"), 1)[1],
        body=render_feed(changed, title="Jobicy", link="https://jobicy.com"),
    )
    third = await run_import(sources)
    assert_exact(third)
    assert sum(e.updated for e in third.feeds) == 3
    assert sum(e.new for e in third.feeds) == 0


async def test_batches_of_raw_hash_matches_are_written_by_the_feed_job_exactly_once(
    feeds: Any, runtime: Runtime, run_import: Any
) -> None:
    """A batch whose items all matched their stored raw hash is written by the feed job itself (no
    batch job goes through Redis), under its batch key, and announced like any batch."""
    from jobimporter.events import BatchProcessed

    # One feed: an item in several feeds is stored with the raw hash of the last one to write it
    # (the base URL is part of it), so in the other feeds it is normalized and found unchanged by hash.
    sources = [s for s in serve_feeds(feeds, nine_feeds()) if s.url.endswith("/?feed=job_feed")]
    first = await run_import(sources)
    ctx = runtime.ctx
    completed_jobs = (await ctx.queues.counts())[ctx.queues.names.batches]["completed"]
    after = await ctx.events.last_id()
    second = await run_import(sources)

    assert second.status is RunStatus.COMPLETED
    assert_exact(second)
    assert sum(e.unchanged for e in second.feeds) == sum(e.total_fetched for e in first.feeds)
    assert (await ctx.queues.counts())[ctx.queues.names.batches]["completed"] == completed_jobs
    announced: dict[tuple[str, int], int] = {}
    async for _, event in ctx.events.subscribe(after, block_ms=100):
        if event is None:
            break
        if isinstance(event, BatchProcessed) and event.run_id == second.run_id:
            announced[(event.entry_id, event.batch_no)] = event.unchanged
    assert len(announced) == sum(e.batches for e in second.feeds)
    assert sum(announced.values()) == sum(e.unchanged for e in second.feeds)


REFUSED_CLAIMS = 3
# The first REFUSED_CLAIMS batch claims fail as a serialization failure would (transient). A sequence
# counts them: unlike a table, it is not rolled back with the statement the trigger refuses.
REFUSE_FIRST_CLAIMS = (
    "CREATE SEQUENCE batch_claims",
    (
        "CREATE FUNCTION refuse_first_claims() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF nextval('batch_claims') <= {REFUSED_CLAIMS} THEN "
        "RAISE EXCEPTION 'could not serialize access (a test trigger)' USING ERRCODE = '40001'; "
        "END IF; RETURN NEW; END $$"
    ),
    (
        "CREATE TRIGGER refuse_first_claims BEFORE INSERT ON batches FOR EACH ROW "
        "EXECUTE FUNCTION refuse_first_claims()"
    ),
)


# PostgreSQL only: SQLite has no sequence, and whatever a trigger records there is rolled back with
# the refused statement, so it cannot refuse exactly the first writes. The feed job's handling of a
# refused write is the same code on either backend.
@pytest.mark.parametrize("database_url", [lf("pg_database_url")], ids=["postgres"])
async def test_a_known_batch_the_store_refuses_in_the_feed_job_is_left_to_a_batch_job(
    feeds: Any, runtime: Runtime, run_import: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A re-import of one feed: every batch is raw-hash matches, which the feed job writes itself
    (test above) until the database refuses it. The first claims are refused: those batches, and
    only those, go to batch jobs, which write them; the counts stay exact."""
    sources = [s for s in serve_feeds(feeds, nine_feeds()) if s.url.endswith("/?feed=job_feed")]
    first = await run_import(sources)
    batches = first.feeds[0].batches
    assert batches > REFUSED_CLAIMS
    ctx = runtime.ctx
    batch_jobs_before = (await ctx.queues.counts())[ctx.queues.names.batches]["completed"]
    await run_sql(settings.database_url, *REFUSE_FIRST_CLAIMS)
    with caplog.at_level(logging.INFO, logger="jobimporter.feedjob"):
        second = await run_import(sources)

    assert second.status is RunStatus.COMPLETED, [(e.url, e.status, e.error) for e in second.feeds]
    assert_exact(second)
    assert [(e.new, e.updated, e.failed) for e in second.feeds] == [(0, 0, 0)] * len(second.feeds)
    assert sum(e.unchanged for e in second.feeds) == sum(e.total_fetched for e in first.feeds)
    left = [r.getMessage() for r in caplog.records if "left to a batch job" in r.getMessage()]
    assert len(left) == REFUSED_CLAIMS and all("a test trigger" in m for m in left), left
    batch_jobs = (await ctx.queues.counts())[ctx.queues.names.batches]["completed"] - batch_jobs_before
    assert batch_jobs == REFUSED_CLAIMS
    # Every batch was claimed by the feed job once, and each refused one again by its batch job.
    assert await run_sql(settings.database_url, "SELECT last_value FROM batch_claims") == [
        batches + REFUSED_CLAIMS
    ]


@pytest.mark.parametrize("database_url", SQL_BACKENDS)
async def test_a_store_error_during_the_fan_out_is_the_reason_the_entry_gives(
    feeds: Any, run_import: Any, settings: Settings
) -> None:
    """The raw-hash lookup of the fan-out fails (its column is gone, as after a botched migration):
    every attempt fails the same way and the entry gives the database's reason."""
    await run_sql(settings.database_url, "ALTER TABLE jobs RENAME COLUMN raw_hash TO raw_hash_gone")
    feeds.route("/f", body=render_feed(load_real_jobs()[:9], title="t", link="https://jobicy.com"))
    run = await run_import([FeedSource(name="f", url=feeds.url("/f"))])
    entry = run.feeds[0]
    assert entry.status is EntryStatus.FAILED
    assert entry.error is not None and entry.error.startswith("store: read raw hashes failed:"), entry.error
    assert "raw_hash" in entry.error and "(gave up after 3 attempts)" in entry.error, entry.error
    assert (entry.total_fetched, entry.batches) == (0, 0)


async def test_a_feed_queued_raw_slice_by_slice_stores_exactly_what_normalize_gives(
    feeds: Any, runtime: Runtime, run_import: Any
) -> None:
    """What the batch jobs store, normalized from the raw items the feed job read slice by slice and
    queued (as JSON rows), is exactly what normalizing each item gives."""
    from jobimporter import feedjob
    from jobimporter.normalize import identify, normalize
    from jobimporter.parse import parse_feed
    from jobimporter.sources import publisher_host

    # More items than one slice holds (a slice is looked up and queued at once), so the
    # parser reads the next slice ahead while the first is handled.
    count = feedjob._ITEMS_PER_LOOKUP + 150
    short = [dict(job, jobDescription=f"<p>{job['jobExcerpt']}</p>") for job in many_jobs(count)]
    body = render_feed(short, title="t", link="https://jobicy.com")  # under this file's size cap
    feeds.route("/big", body=body)
    run = await run_import([FeedSource(name="big", url=feeds.url("/big"))])

    entry = run.feeds[0]
    assert (entry.status, entry.total_fetched, entry.new, entry.failed) == (
        EntryStatus.COMPLETED, count, count, 0
    )  # fmt: skip
    url = feeds.url("/big")
    items = list(parse_feed(io.BytesIO(body)))
    edge = feedjob._ITEMS_PER_LOOKUP
    for item in [*items[::97], *items[edge - 8 : edge + 8], items[-1]]:  # both slices and their seam
        identity = identify(item, source=publisher_host(url), base_url=url)
        expected = normalize(item, source=publisher_host(url), base_url=url)
        assert (await runtime.ctx.store.get_job(identity.key))["record"] == expected


async def test_unchanged_feed_answers_304_and_entry_is_not_modified(feeds: Any, run_import: Any) -> None:
    body = render_feed(load_real_jobs()[:12], title="t", link="https://jobicy.com")
    feeds.route("/etag-feed", body=body, etag='"v1"')
    source = [FeedSource(name="etag", url=feeds.url("/etag-feed"))]
    first = await run_import(source)
    assert first.feeds[0].status is EntryStatus.COMPLETED and first.feeds[0].new == 12
    second = await run_import(source)
    entry = second.feeds[0]
    assert (entry.status, entry.http_status, entry.total_fetched) == (EntryStatus.NOT_MODIFIED, 304, 0)
    assert second.status is RunStatus.COMPLETED
    assert feeds.requests[-1][2].get("if-none-match") == '"v1"'


async def test_broken_feeds_fail_their_own_entries_with_reasons_never_the_run(
    feeds: Any, run_import: Any, runtime: Runtime
) -> None:
    good = render_feed(load_real_jobs()[:10], title="good", link="https://jobicy.com")
    half = good[: good.rfind(b"<item>", 0, len(good) // 1) + 200]  # cut inside the last item
    feeds.route("/good", body=good)
    feeds.route(
        "/html",
        body=b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>blocked</body></html>",
        content_type="text/html",
    )
    feeds.route("/gone", status=404, body=b"not found")
    feeds.sequence("/busy", [{"status": 429, "headers": {"Retry-After": "1"}}, {"body": good}])
    feeds.sequence("/flaky", [{"status": 500}, {"body": good}])
    feeds.route("/slow", body=good, delay_s=5)
    feeds.route("/huge", body=b"<rss>" + b" " * 3_000_000 + b"</rss>")
    feeds.route("/malformed", body=half)
    feeds.route(
        "/xxe",
        body=b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss><channel><item><title>&x;</title></item></channel></rss>',
    )
    feeds.route(
        "/empty",
        body=b'<?xml version="1.0"?><rss version="2.0"><channel><title>empty</title></channel></rss>',
    )
    levels = b"".join(b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10) for i in range(1, 10))
    laughs = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">' + levels + b"]><rss><channel>"
    feeds.route("/laughs", body=laughs + b"<item><title>&l9;</title></item></channel></rss>")
    names = ["good", "html", "gone", "busy", "flaky", "slow", "huge", "malformed", "xxe", "laughs", "empty"]
    run = await run_import([FeedSource(name=n, url=feeds.url(f"/{n}")) for n in names])

    entries = {e.name: e for e in run.feeds}
    assert run.status is RunStatus.PARTIAL
    assert_exact(run)
    for ok in ("good", "busy", "flaky", "empty"):
        assert entries[ok].status is EntryStatus.COMPLETED, (ok, entries[ok].error)
    # good, busy, flaky and malformed share the same 10 jobs and run concurrently: each job is new once.
    assert sum(e.new for e in run.feeds) == await runtime.ctx.store.count_jobs() == 10
    for name in ("good", "busy", "flaky"):
        assert (entries[name].total_fetched, entries[name].new + entries[name].unchanged) == (10, 10)
    assert entries["empty"].total_fetched == 0
    expectations = {
        "html": "html", "gone": "404", "slow": "timeout", "huge": "cap",
        "malformed": "malformed", "xxe": "entit", "laughs": "entit",
    }  # fmt: skip
    for name, needle in expectations.items():
        entry = entries[name]
        assert entry.status is EntryStatus.FAILED, name
        assert entry.error and needle in entry.error.lower(), (name, entry.error)
    assert entries["gone"].http_status == 404
    assert len([r for r in feeds.requests if r[1] == "/gone"]) == 1  # permanent: not retried
    busy = [r[0] for r in feeds.requests if r[1] == "/busy"]
    assert len(busy) == 2 and busy[1] - busy[0] >= 0.95  # Retry-After honoured
    assert len([r for r in feeds.requests if r[1] == "/slow"]) == 3  # transient: all attempts used
    assert entries["malformed"].total_fetched >= 1  # items before the break were kept
    assert entries["malformed"].batches >= 1 and entries["malformed"].error.startswith("parse: malformed XML")


async def test_invalid_items_fail_alone_with_reasons(feeds: Any, run_import: Any) -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>Good one</title><link>https://example.org/jobs/1</link><guid>g1</guid></item>"
        b"<item><description>no title, no link</description></item>"
        b"<item><title>Dup</title><link>https://example.org/jobs/1b</link><guid>g1</guid></item>"
        b"<item><title>Good two</title><link>https://example.org/jobs/2</link></item>"
        b"</channel></rss>"
    )
    feeds.route("/mixed", body=body)
    run = await run_import([FeedSource(name="mixed", url=feeds.url("/mixed"))])
    entry = run.feeds[0]
    assert (entry.status, entry.total_fetched, entry.new, entry.failed) == (EntryStatus.COMPLETED, 4, 2, 2)
    reasons = " | ".join(f["reason"] for f in entry.failures)
    assert "duplicate" in reasons and "title" in reasons.lower()
    assert run.status is RunStatus.PARTIAL


JOB_STATES = ("waiting", "active", "delayed", "prioritized", "waiting-children", "completed", "failed")


async def test_a_repeated_enqueue_is_dropped_not_doubled(
    feeds: Any, runtime: Runtime, run_import: Any
) -> None:
    body = render_feed(load_real_jobs()[:9], title="t", link="https://jobicy.com")
    feeds.route("/once", body=body)
    run = await run_import([FeedSource(name="once", url=feeds.url("/once"))])
    feed = (await runtime.ctx.store.list_feeds())[0]
    requests_before = len(feeds.requests)
    queue = runtime.ctx.queues.feeds
    jobs_before = sum((await queue.getJobCounts(*JOB_STATES)).values())

    # The same feed job again (a retried trigger, a second scheduler): same deterministic id, dropped.
    # A second job would be in one of these states now (kept once completed), whatever a worker did.
    await queue.addBulk([feed_job(run.feeds[0], feed, runtime.ctx)])

    assert sum((await queue.getJobCounts(*JOB_STATES)).values()) == jobs_before == 1
    assert len(feeds.requests) == requests_before
    again = await runtime.ctx.store.get_run(run.run_id)
    assert again.feeds[0].model_dump() == run.feeds[0].model_dump()
    assert await runtime.ctx.store.count_jobs() == 9


async def test_a_feed_job_over_its_time_limit_on_every_attempt_fails_its_entry(
    feeds: Any, settings: Settings
) -> None:
    feeds.route(
        "/stuck", body=render_feed(load_real_jobs()[:3], title="t", link="https://jobicy.com"), delay_s=2
    )
    quick = settings.model_copy(
        update={"feed_timeout_s": 0.5, "read_timeout_s": 10.0, "fetch_timeout_s": 10.0}
    )
    async with Runtime(quick, workers=True) as rt:
        feed_rows = await rt.ctx.store.sync_feeds([FeedSource(name="stuck", url=feeds.url("/stuck"))])
        after = await rt.ctx.events.last_id()
        run = await start_run(rt.ctx, feed_rows, Trigger.CLI)
        done = await asyncio.wait_for(wait_for_run(rt.ctx, run.run_id, after), 30)
    entry = done.feeds[0]
    assert (done.status, entry.status) == (RunStatus.FAILED, EntryStatus.FAILED)
    assert (
        entry.error and "timed out after 0.5 s" in entry.error and "gave up after 3 attempts" in entry.error
    )
    assert len([r for r in feeds.requests if r[1] == "/stuck"]) == 3


async def test_a_feed_still_importing_is_skipped_by_the_next_run_and_the_slot_recorded(
    feeds: Any, runtime: Runtime
) -> None:
    feeds.route(
        "/busy-feed",
        body=render_feed(load_real_jobs()[:3], title="t", link="https://jobicy.com"),
        delay_s=0.7,
    )
    ctx = runtime.ctx
    rows = await ctx.store.sync_feeds([FeedSource(name="busy", url=feeds.url("/busy-feed"))])
    after = await ctx.events.last_id()
    first = await start_run(ctx, rows, Trigger.CLI)
    second = await start_run(ctx, rows, Trigger.CRON)  # the next slot, while the first still fetches

    skipped = second.feeds[0]
    assert skipped.status is EntryStatus.SKIPPED and first.run_id in str(skipped.error)
    assert (await ctx.store.get_run(second.run_id)).status is RunStatus.COMPLETED  # nothing left to wait for
    done = await wait_for_run(ctx, first.run_id, after)
    assert done.feeds[0].status is EntryStatus.COMPLETED and done.feeds[0].new == 3
    assert len(feeds.requests_for("/busy-feed")) == 1
