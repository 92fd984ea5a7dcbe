"""Feeds: list with health, add (409 on a stored URL, 422 on a bad one), edit, delete; history stays."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jobimporter.runtime import Runtime

from .conftest import WORKERS, ImportFeeds, serve_jobs

pytestmark = [pytest.mark.external_service]

FEED_KEYS = {
    "id", "name", "url", "format", "enabled", "priority", "cron", "etag", "last_modified", "health", "profile",
    "mapping", "max_pages", "paused_at", "paused_reason",
}  # fmt: skip
HEALTH_KEYS = {
    "last_status",
    "last_run_at",
    "last_success_at",
    "success_rate",
    "median_fetch_s",
    "last_error",
    "permanent_failures",
}


async def test_add_edit_delete_a_feed(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/feeds", json={"name": "Jobs", "url": "https://jobs.example/feed"})
    assert answer.status_code == 201, answer.text
    feed = answer.json()
    assert set(feed) == FEED_KEYS and set(feed["health"]) == HEALTH_KEYS
    assert (feed["format"], feed["enabled"], feed["priority"]) == ("auto", True, "normal")
    assert feed["health"].pop("permanent_failures") == 0
    assert all(value is None for value in feed["health"].values())

    clash = await client.post("/api/feeds", json={"name": "Again", "url": "https://jobs.example/feed"})
    assert clash.status_code == 409 and "already exists" in clash.json()["detail"]

    patched = await client.patch(f"/api/feeds/{feed['id']}", json={"enabled": False, "priority": "high"})
    assert patched.status_code == 200
    assert (patched.json()["enabled"], patched.json()["priority"], patched.json()["name"]) == (
        False,
        "high",
        "Jobs",
    )
    moved = await client.patch(
        f"/api/feeds/{feed['id']}", json={"url": "https://jobs.example/v2", "name": None}
    )
    assert (moved.json()["url"], moved.json()["name"]) == ("https://jobs.example/v2", "Jobs")
    other = (await client.post("/api/feeds", json={"name": "B", "url": "https://b.example/"})).json()
    clash = await client.patch(f"/api/feeds/{other['id']}", json={"url": "https://jobs.example/v2"})
    assert clash.status_code == 409

    listed = (await client.get("/api/feeds")).json()
    assert [f["name"] for f in listed["items"]] == ["B", "Jobs"] and listed["total"] == 2
    assert (await client.get("/api/feeds", params={"page": 2, "page_size": 1})).json()["items"][0][
        "name"
    ] == "Jobs"

    assert (await client.delete(f"/api/feeds/{feed['id']}")).status_code == 204
    assert (await client.get(f"/api/feeds/{feed['id']}")).status_code == 404
    assert (await client.delete(f"/api/feeds/{feed['id']}")).status_code == 404
    assert (await client.patch(f"/api/feeds/{feed['id']}", json={"enabled": True})).status_code == 404


BAD_FEEDS = [
    ({"name": "x", "url": "ftp://jobs.example/feed"}, "body.url"),
    ({"name": "x", "url": "http://"}, "body.url"),
    ({"name": "x", "url": "jobs.example/feed"}, "body.url"),
    ({"name": "", "url": "https://jobs.example/"}, "body.name"),
    ({"name": "x", "url": "https://jobs.example/", "format": "csv"}, "body.format"),
    ({"name": "x", "url": "https://jobs.example/", "colour": "red"}, "body.colour"),
    ({"url": "https://jobs.example/"}, "body.name"),
]


async def test_a_bad_feed_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    for body, field in BAD_FEEDS:
        answer = await client.post("/api/feeds", json=body)
        assert answer.status_code == 422, body
        assert field in answer.json()["detail"], answer.json()
    assert "http:// or https://" in (await client.post("/api/feeds", json=BAD_FEEDS[0][0])).json()["detail"]
    assert (await client.get("/api/feeds")).json()["total"] == 0
    feed = (await client.post("/api/feeds", json={"name": "x", "url": "HTTPS://x.example/Feed"})).json()
    assert feed["url"] == "https://x.example/Feed"
    answer = await client.patch(f"/api/feeds/{feed['id']}", json={"url": "file:///etc/passwd"})
    assert answer.status_code == 422 and "body.url" in answer.json()["detail"]
    assert (await client.patch(f"/api/feeds/{feed['id']}", json={"priority": "urgent"})).status_code == 422
    answer = await client.patch(f"/api/feeds/{feed['id']}", json={"cron": "every hour"})
    assert answer.status_code == 422 and "not a cron expression" in answer.json()["detail"]
    bad = await client.post(
        "/api/feeds", json={"name": "y", "url": "https://y.example/", "cron": "61 * * * *"}
    )
    assert bad.status_code == 422 and "body.cron" in bad.json()["detail"]
    mapped = {"name": "z", "url": "https://z.example/", "format": "mapped"}
    bad = await client.post("/api/feeds", json=mapped)  # a mapped feed needs its mapping
    assert bad.status_code == 422 and "needs a field mapping" in bad.json()["detail"], bad.json()
    answer = await client.patch(f"/api/feeds/{feed['id']}", json={"format": "mapped"})
    assert answer.status_code == 422 and "needs a field mapping" in answer.json()["detail"], answer.json()
    mapping = {"items": "//job", "fields": {"title": "title"}}
    answer = await client.patch(f"/api/feeds/{feed['id']}", json={"format": "mapped", "mapping": mapping})
    assert answer.status_code == 200 and answer.json()["format"] == "mapped", answer.json()
    answer = await client.patch(f"/api/feeds/{feed['id']}", json={"mapping": ""})  # would leave it bare
    assert answer.status_code == 422 and "needs a field mapping" in answer.json()["detail"], answer.json()
    assert (await client.get(f"/api/feeds/{feed['id']}")).json()["mapping"] is not None


async def test_a_feed_gets_its_own_cron_and_gives_it_back(client: httpx.AsyncClient) -> None:
    feed = (
        await client.post(
            "/api/feeds", json={"name": "x", "url": "https://x.example/", "cron": " 0  6 * * *"}
        )
    ).json()
    assert feed["cron"] == "0 6 * * *"  # spacing normalized
    kept = await client.patch(f"/api/feeds/{feed['id']}", json={"name": "x2", "cron": None})
    assert kept.json()["cron"] == "0 6 * * *"  # null leaves it as it is
    changed = await client.patch(f"/api/feeds/{feed['id']}", json={"cron": "*/10 * * * * *"})
    assert changed.json()["cron"] == "*/10 * * * * *"
    cleared = await client.patch(f"/api/feeds/{feed['id']}", json={"cron": ""})
    assert cleared.status_code == 200 and cleared.json()["cron"] is None
    assert (await client.get(f"/api/feeds/{feed['id']}")).json()["cron"] is None


@WORKERS
async def test_feed_health_after_imports_and_history_after_delete(
    client: httpx.AsyncClient,
    feeds: Any,
    runtime: Runtime,
    import_feeds: ImportFeeds,
    real_jobs: list[dict[str, Any]],
) -> None:
    flaky = serve_jobs(feeds, "/flaky", real_jobs[:5])
    first = await import_feeds([flaky])
    feeds.route("/flaky", status=404)
    second = await import_feeds([flaky])
    assert [first["status"], second["status"]] == ["completed", "failed"]

    (feed,) = (await client.get("/api/feeds")).json()["items"]
    health = feed["health"]
    assert (health["last_status"], health["success_rate"]) == ("failed", 0.5)
    assert health["last_success_at"] == first["feeds"][0]["finished_at"]
    assert health["last_run_at"] == second["started_at"]
    assert "404" in health["last_error"]
    # The failed fetch recorded no download time: the median is the successful one's.
    assert 0 < health["median_fetch_s"] < 5

    assert (await client.delete(f"/api/feeds/{feed['id']}")).status_code == 204
    runs = (await client.get("/api/runs", params={"feed_id": feed["id"]})).json()
    assert runs["total"] == 2


async def test_preview_a_feed_before_saving_it(client: httpx.AsyncClient, feeds: Any) -> None:
    from fixtures.captures import CAPTURES

    feeds.route("/gh.json", body=(CAPTURES / "greenhouse-TRIMMED-2026-omoji-personal.json").read_bytes())
    answer = await client.post(
        "/api/feeds/preview?limit=1", json={"name": "GH", "url": feeds.url("/gh.json")}
    )
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert (shown["format"], shown["items_read"], len(shown["records"]), shown["error"]) == (
        "greenhouse",
        2,
        1,
        None,
    )
    assert shown["records"][0]["title"] == "Customer Data Scientist - Experimentation"
    assert "apply_url" in shown["empty_fields"][0] and "requisition_id" in shown["unmapped"]
    assert (await client.get("/api/feeds")).json()["total"] == 0  # nothing saved

    missing = await client.post("/api/feeds/preview", json={"name": "x", "url": feeds.url("/missing")})
    assert missing.status_code == 200 and missing.json()["error"].startswith("fetch: HTTP 404")
    bad = await client.post(
        "/api/feeds/preview",
        json={
            "name": "x",
            "url": feeds.url("/gh.json"),
            "mapping": {"items": "//job", "fields": {"title": "t["}},
        },
    )
    assert bad.status_code == 422 and "fields.title: path 't[': not a valid XPath" in bad.json()["detail"]
    unknown = await client.post(
        "/api/feeds/preview", json={"name": "x", "url": feeds.url("/gh.json"), "profile": "nope"}
    )
    assert unknown.status_code == 422 and "unknown profile" in unknown.json()["detail"]
