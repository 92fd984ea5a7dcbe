"""Job search over imported real records: text, feed, type, category, location, date, sort, paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fixtures import hostile_html

from .conftest import WORKERS, ImportFeeds, serve_jobs

pytestmark = [pytest.mark.external_service, WORKERS]

JOB_KEYS = {
    "key", "source", "external_id", "title", "company", "locations", "job_types", "categories", "url",
    "published_at", "salary_min", "salary_max", "salary_currency", "salary_period", "logo_url",
    "apply_url", "workplace", "employment_types", "expires_at", "first_seen", "last_seen", "last_changed", "feed_ids",
    "status", "expired_at", "expiry_reason", "unlisted_at",
}  # fmt: skip


async def every_job(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/api/jobs", params={"page_size": 200, **params})
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["total"] == len(page["items"])
    items: list[dict[str, Any]] = page["items"]
    return items


async def test_job_search_filters_match_the_records(
    client: httpx.AsyncClient, feeds: Any, import_feeds: ImportFeeds, real_jobs: list[dict[str, Any]]
) -> None:
    run = await import_feeds(
        [serve_jobs(feeds, "/a", real_jobs[:30]), serve_jobs(feeds, "/b", real_jobs[25:40])]
    )
    assert run["status"] == "completed"
    everything = await every_job(client)
    assert len(everything) == 40 and all(set(j) == JOB_KEYS for j in everything)

    def keys(jobs: list[dict[str, Any]]) -> set[str]:
        return {j["key"] for j in jobs}

    sample = next(
        j for j in everything if j["company"] and j["job_types"] and j["categories"] and j["locations"]
    )
    word = sample["company"].split()[0]
    found = await every_job(client, q=word.upper())
    assert keys(found) == keys(await every_job(client, q=word.lower()))  # case does not matter
    in_title = keys([j for j in everything if word.lower() in f"{j['title']} {j['company']}".lower()])
    assert sample["key"] in in_title and in_title <= keys(found)
    for key in keys(found) - in_title:  # the others match in their description
        detail = (await client.get(f"/api/jobs/{key}")).json()
        assert word.lower() in detail["description_text"].lower()
    for param, field in (("job_type", "job_types"), ("category", "categories"), ("location", "locations")):
        value = sample[field][0]
        assert keys(await every_job(client, **{param: value})) == keys(
            [j for j in everything if value in j[field]]
        ), param
    feed_b = run["feeds"][1]["feed_id"]
    assert keys(await every_job(client, feed_id=feed_b)) == keys(
        [j for j in everything if feed_b in j["feed_ids"]]
    )
    assert len(await every_job(client, feed_id=feed_b)) == 15

    dated = sorted(everything, key=lambda j: j["published_at"])
    middle = dated[20]["published_at"]
    assert keys(await every_job(client, since=middle)) == keys(dated[20:])
    assert keys(await every_job(client, until=middle)) == keys(dated[:20])


async def test_job_sort_paging_and_one_job(
    client: httpx.AsyncClient, feeds: Any, import_feeds: ImportFeeds, real_jobs: list[dict[str, Any]]
) -> None:
    # Every description carries a script: the one job read below must come back without it.
    scripted = [
        dict(j, jobDescription=f"{j['jobDescription']}<script>alert('x')</script>") for j in real_jobs[:12]
    ]
    await import_feeds([serve_jobs(feeds, "/a", scripted)])
    by_title = await every_job(client, sort="title")
    assert [j["title"] for j in by_title] == sorted(j["title"] for j in by_title)
    newest = await every_job(client, sort="-published_at")
    assert [j["published_at"] for j in newest] == sorted((j["published_at"] for j in newest), reverse=True)
    page = (await client.get("/api/jobs", params={"sort": "title", "page": 2, "page_size": 5})).json()
    assert (page["total"], [j["key"] for j in page["items"]]) == (12, [j["key"] for j in by_title[5:10]])

    detail = (await client.get(f"/api/jobs/{by_title[0]['key']}")).json()
    assert set(detail) == JOB_KEYS | {"description_html", "description_text", "extra"}
    assert detail["description_html"].startswith("<") and detail["description_text"]
    assert "<script" not in detail["description_html"] and "alert(" not in detail["description_text"]
    assert (await client.get("/api/jobs/nope0000")).status_code == 404


async def test_the_api_returns_hostile_descriptions_inert(
    client: httpx.AsyncClient, feeds: Any, import_feeds: ImportFeeds, real_jobs: list[dict[str, Any]]
) -> None:
    """A feed whose descriptions and excerpts carry XSS vectors (one per job), imported through the
    queue: the HTML that GET /api/jobs/{key} returns can run, load and submit nothing, and keeps the
    text around each attack. (The page sanitizes again; this is the server's own guarantee.)"""
    cases = hostile_html.CASES
    jobs = [
        dict(
            job, jobDescription=f"{job['jobDescription']}{case.html}", jobExcerpt=f"<p>Excerpt</p>{case.html}"
        )
        for job, case in zip(real_jobs[: len(cases)], cases, strict=True)
    ]
    run = await import_feeds([serve_jobs(feeds, "/hostile", jobs)])
    assert (run["status"], run["totals"]["new"]) == ("completed", len(cases))
    key_of = {job["url"]: job["key"] for job in await every_job(client)}
    leaks: dict[str, list[str]] = {}
    for job, case in zip(jobs, cases, strict=True):
        answer = await client.get(f"/api/jobs/{key_of[job['url']]}")
        assert answer.status_code == 200, answer.text
        detail = answer.json()
        found = hostile_html.active_content(detail["description_html"])
        found += hostile_html.active_content(detail["extra"]["summary_html"])
        if "alert(" in detail["description_text"] or case.kept not in detail["description_text"]:
            found.append(f"text: {detail['description_text'][-200:]!r}")
        if found:
            leaks[case.name] = found
    assert leaks == {}, "\n".join(f"{name}: {found}" for name, found in leaks.items())
