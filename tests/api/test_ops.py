"""Queue counts, chart stats, health, readiness (503 when the database goes away) and /metrics."""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from jobimporter.config import Settings
from jobimporter.runtime import Runtime
from plugins.mongo import SecantusServer, with_database

from .conftest import WORKERS, ImportFeeds, serve_jobs

pytestmark = [pytest.mark.external_service]

STATES = {"waiting", "active", "delayed", "prioritized", "waiting-children", "completed", "failed"}


@WORKERS
async def test_queue_and_stats_after_two_runs(
    client: httpx.AsyncClient, feeds: Any, import_feeds: ImportFeeds, real_jobs: list[dict[str, Any]]
) -> None:
    good = serve_jobs(feeds, "/good", real_jobs[:20])
    gone = serve_jobs(feeds, "/gone", [], status=404)
    first = await import_feeds([good, gone])
    second = await import_feeds([good])

    queue = (await client.get("/api/queue")).json()["queues"]
    assert set(queue) == {
        "jobimporter-feeds",
        "jobimporter-batches",
        "jobimporter-schedule",
        "jobimporter-webhooks",
    }
    assert all(set(states) == STATES for states in queue.values())
    assert (queue["jobimporter-feeds"]["completed"], queue["jobimporter-feeds"]["failed"]) == (2, 1)
    # 20 items in batches of 7 on the first run; the second run's batches hold only raw-hash matches,
    # which the feed job writes itself (no batch job).
    assert queue["jobimporter-batches"]["completed"] == 3

    stats = (await client.get("/api/stats")).json()
    assert [r["run_id"] for r in stats["runs"]] == [first["run_id"], second["run_id"]]
    assert {k: stats["runs"][0][k] for k in ("new", "updated", "unchanged", "failed", "status")} == {
        "new": 20, "updated": 0, "unchanged": 0, "failed": 0, "status": "partial"
    }  # fmt: skip
    assert stats["runs"][1]["unchanged"] == 20 and stats["runs"][1]["duration_s"] > 0
    by_name = {f["name"]: f for f in stats["feeds"]}
    assert [p["run_id"] for p in by_name[good.name]["points"]] == [first["run_id"], second["run_id"]]
    assert [p["status"] for p in by_name[gone.name]["points"]] == ["failed"]
    point = by_name[good.name]["points"][0]
    assert set(point) == {"run_id", "started_at", "fetch_s", "duration_s", "new", "updated", "unchanged",
                          "failed", "status"}  # fmt: skip
    only_last = (await client.get("/api/stats", params={"limit": 1})).json()
    assert [r["run_id"] for r in only_last["runs"]] == [second["run_id"]]


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"redis": "ok", "database": "ok"})


async def test_readyz_is_503_when_the_database_is_unreachable(
    postgres_url: str, redis_url: str, tmp_path: Any
) -> None:
    """A database that goes away (dropped under the running API): /readyz says so, /healthz does not."""
    from jobimporter.api import create_app

    admin = await asyncpg.connect(postgres_url)
    name = "t_readyz_gone"
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_url, database_url=url)
    try:
        async with Runtime(settings, workers=False) as runtime:
            app = create_app(settings, runtime)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
                    assert (await client.get("/readyz")).status_code == 200
                    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                    answer = await client.get("/readyz")
                    assert answer.status_code == 503
                    assert answer.json()["redis"] == "ok"
                    assert answer.json()["database"].startswith("store: database unreachable (ping)")
                    assert (await client.get("/healthz")).status_code == 200
                    runs = await client.get("/api/runs")
                    assert runs.status_code == 503 and runs.json()["detail"].startswith("store:")
                    scrape = await client.get("/metrics")
                    assert (
                        scrape.status_code == 200
                        and 'jobimporter_up{component="database"} 0.0' in scrape.text
                    )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_readyz_is_503_when_mongodb_is_unreachable(
    own_mongo: SecantusServer, redis_url: str, tmp_path: Any
) -> None:
    """The same on MongoDB, the server stopped under the running API. The URL shortens how long a
    call waits for a server (default 10 s, which the store contract's unreachable test waits out)."""
    from jobimporter.api import create_app

    url = with_database(own_mongo.url, "jobs", serverSelectionTimeoutMS="1000")
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_url, database_url=url)
    async with Runtime(settings, workers=False) as runtime:
        app = create_app(settings, runtime)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
                assert (await client.get("/readyz")).status_code == 200
                await asyncio.to_thread(own_mongo.stop)
                answer = await client.get("/readyz")
                assert answer.status_code == 503
                assert answer.json()["redis"] == "ok"
                assert answer.json()["database"].startswith("store: database unreachable (ping)")
                assert (await client.get("/healthz")).status_code == 200
                runs = await client.get("/api/runs")
                assert runs.status_code == 503 and runs.json()["detail"].startswith("store:")
                scrape = await client.get("/metrics")
                assert scrape.status_code == 200 and 'jobimporter_up{component="database"} 0.0' in scrape.text
                await asyncio.to_thread(own_mongo.start)
                assert (await client.get("/readyz")).status_code == 200  # and back


def families(text: str) -> dict[str, list[Any]]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


@WORKERS
async def test_metrics_exposes_runs_items_feeds_and_queues(
    client: httpx.AsyncClient,
    feeds: Any,
    import_feeds: ImportFeeds,
    real_jobs: list[dict[str, Any]],
) -> None:
    good = serve_jobs(feeds, "/good", real_jobs[:9])
    gone = serve_jobs(feeds, "/gone", [], status=404)
    run = await import_feeds([good, gone])
    good_entry, gone_entry = run["feeds"]
    # Three more imports of the good feed: the median of its four download times (the mean of the
    # middle two) is none of the recorded times, nor their mean, nor the newest.
    again = [await import_feeds([good]) for _ in range(3)]
    stats = (await client.get("/api/stats")).json()
    (points,) = [f["points"] for f in stats["feeds"] if f["name"] == good.name]
    assert [p["run_id"] for p in points] == [r["run_id"] for r in (run, *again)]
    fetch_times = [p["fetch_s"] for p in points]  # as each import recorded it

    answer = await client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    found = families(answer.text)

    def value(family: str, **labels: str) -> float:
        matches = [s.value for s in found[family] if all(s.labels.get(k) == v for k, v in labels.items())]
        assert len(matches) == 1, (family, labels, found.get(family))
        return float(matches[0])

    good_id, gone_id = good_entry["feed_id"], gone_entry["feed_id"]
    assert value("jobimporter_up", component="database") == value("jobimporter_up", component="redis") == 1
    assert value("jobimporter_runs", trigger="manual", status="partial") == 1
    assert value("jobimporter_runs", trigger="manual", status="completed") == 3
    assert value("jobimporter_runs_running") == 0
    assert value("jobimporter_items", feed_id=good_id, outcome="new") == 9
    assert value("jobimporter_items", feed_id=good_id, outcome="unchanged") == 27
    assert value("jobimporter_items", feed_id=gone_id, outcome="new") == 0
    assert value("jobimporter_feed_imports", feed_id=gone_id, status="failed") == 1
    assert value("jobimporter_feed_fetch_errors", feed_id=gone_id) == 1
    assert len(set(fetch_times)) == 4 and all(t > 0 for t in fetch_times), fetch_times
    assert value("jobimporter_feed_median_fetch_seconds", feed_id=good_id) == pytest.approx(
        statistics.median(fetch_times)
    )
    assert value("jobimporter_feed_success_ratio", feed_id=gone_id) == 0
    assert value("jobimporter_queue_jobs", queue="jobimporter-feeds", state="failed") == 1
    assert "process_cpu_seconds" in found
