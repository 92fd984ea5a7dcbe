"""Every page renders real data on a laptop and at phone width; hostile feed content stays text;
feeds are added, paused and prioritised from the UI with the admin token."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from browser.harness import Dashboard, login, needs_chromium, screenshot
from fixtures.wpjm import load_real_jobs, nine_feeds, render_feed
from plugins.feedserver import FeedServer

pytestmark = [needs_chromium, pytest.mark.external_service, pytest.mark.e2e]

PAYLOAD = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


def test_script_and_onerror_from_a_feed_stay_inert_text(
    dashboard: Dashboard, feeds: FeedServer, page: Page
) -> None:
    job = load_real_jobs()[0]
    job["jobTitle"] = f"{PAYLOAD} Evil designer"
    job["companyName"] = f"{PAYLOAD} Corp"
    job["jobDescription"] = (
        f'<p>Hello from the feed.</p>{PAYLOAD}<p><a href="javascript:window.__xss=1">x</a></p>'
    )
    feeds.route("/evil", body=render_feed([job], title="Evil", link="https://jobicy.com"))
    feed = dashboard.add_feed(f"{PAYLOAD} feed", feeds.url("/evil"))
    run = dashboard.wait_run(dashboard.start_run([feed["id"]]))
    assert run["feeds"][0]["new"] == 1, run
    stored = dashboard.api("GET", "/api/jobs")["items"][0]

    page.goto(f"{dashboard.url}/#/jobs")
    link = page.locator("table.jobs tbody a").first
    expect(link).to_have_text(stored["title"])  # shown as text, tags and all
    assert "Evil designer" in stored["title"]
    link.click()
    expect(page.locator("h1.job-title")).to_have_text(stored["title"])
    frame = page.frame_locator("iframe.description")
    expect(frame.locator("body")).to_contain_text("Hello from the feed.")
    assert frame.locator("script, img, iframe, [onerror]").count() == 0
    assert frame.locator('a[href^="javascript"]').count() == 0
    sandbox = page.locator("iframe.description").get_attribute("sandbox") or ""
    assert "allow-scripts" not in sandbox

    for route in ("#/feeds", "#/history", "#/jobs"):
        page.goto(f"{dashboard.url}/{route}")
        expect(page.locator("main table")).to_be_visible()
    expect(page.locator("main")).to_contain_text("<script>")  # the feed name, as text
    page.wait_for_timeout(300)  # give any handler that slipped through its chance to run
    assert page.evaluate("typeof window.__xss") == "undefined"
    screenshot(page, "xss-inert")


def test_feeds_are_added_paused_and_prioritised_with_the_admin_token(
    dashboard: Dashboard, feeds: FeedServer, page: Page
) -> None:
    page.goto(f"{dashboard.url}/#/feeds")
    expect(page.locator("table.feeds")).to_contain_text("No feeds yet")
    page.get_by_label("Name", exact=True).fill("Jobicy: design")
    page.get_by_label("URL", exact=True).fill(feeds.url("/?feed=job_feed&job_categories=design-multimedia"))
    page.get_by_role("button", name="Add feed").click()
    expect(page.locator("#notice")).to_contain_text("admin token")  # no token yet: 401, said plainly

    login(page)
    page.get_by_role("button", name="Add feed").click()
    expect(page.locator("#notice")).to_contain_text("Added Jobicy: design")
    row = page.locator("table.feeds tbody tr", has_text="Jobicy: design")
    expect(row).to_have_attribute("data-enabled", "true")

    row.get_by_role("button", name="Pause").click()
    expect(row).to_have_attribute("data-enabled", "false")
    expect(row).to_contain_text("paused")
    row.get_by_role("button", name="Prioritise").click()
    expect(row).to_have_attribute("data-priority", "high")
    (stored,) = dashboard.api("GET", "/api/feeds")["items"]
    assert (stored["enabled"], stored["priority"], stored["cron"]) == (False, "high", None)
    expect(row).to_contain_text("scheduler's schedule")

    row.get_by_role("button", name="Edit").click()
    page.get_by_label("Schedule (cron, UTC)").fill("every six hours")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#notice")).to_contain_text("not a cron expression")  # refused, said plainly
    page.get_by_label("Schedule (cron, UTC)").fill("0 */6 * * *")
    page.get_by_role("button", name="Save changes").click()
    expect(row.locator("[data-cron]")).to_have_attribute("data-cron", "0 */6 * * *")
    assert dashboard.api("GET", "/api/feeds")["items"][0]["cron"] == "0 */6 * * *"
    row.get_by_role("button", name="Edit").click()
    expect(page.get_by_label("Schedule (cron, UTC)")).to_have_value("0 */6 * * *")
    page.get_by_label("Schedule (cron, UTC)").fill("")
    page.get_by_role("button", name="Save changes").click()
    expect(row).to_contain_text("scheduler's schedule")
    assert dashboard.api("GET", "/api/feeds")["items"][0]["cron"] is None

    page.get_by_label("URL", exact=True).fill("ftp://example.com/feed")
    page.get_by_label("Name", exact=True).fill("Not http")
    page.get_by_role("button", name="Add feed").click()
    expect(page.locator("#notice")).to_have_attribute("data-kind", "error")
    screenshot(page, "feeds-edit")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("table.feeds")).to_contain_text("No feeds yet")


PAGES = {
    "history": "table.entries tbody tr[data-id]",
    "queue": "table.queue tbody tr[data-queue]",
    "failed": "table.failed tbody tr[data-id]",
    "feeds": "table.feeds tbody tr[data-id]",
    "jobs": "table.jobs tbody a",
    "charts": "svg.chart",
    "webhooks": "table.webhooks",
}


def feed_name(path: str) -> str:
    """``Jobicy: data-science`` for ``/?feed=job_feed&job_categories=data-science``."""
    category = re.search(r"job_categories=([\w-]+)", path)
    return f"Jobicy: {category.group(1) if category else 'all jobs'}"


def test_every_page_renders_on_a_laptop_and_at_phone_width(
    dashboard: Dashboard, feeds: FeedServer, page: Page
) -> None:
    ids = []
    for path, body in list(nine_feeds().items())[:5]:
        feeds.route(path, body=body)
        ids.append(dashboard.add_feed(feed_name(path), feeds.url(path))["id"])
    feeds.route("/gone", status=404, body=b"gone", content_type="text/plain")
    ids.append(dashboard.add_feed("Gone feed", feeds.url("/gone"))["id"])
    first = dashboard.wait_run(dashboard.start_run(ids))
    dashboard.wait_run(dashboard.start_run(ids))
    job_key = dashboard.api("GET", "/api/jobs")["items"][0]["key"]
    entry_id = next(e["id"] for e in first["feeds"] if e["status"] == "failed")
    pages = dict(PAGES)
    pages[f"runs/{first['run_id']}"] = "table.entries tbody tr[data-id]"
    pages[f"imports/{entry_id}"] = "section.feed-error"
    pages[f"jobs/{job_key}"] = "iframe.description"

    page.goto(f"{dashboard.url}/#/history")
    rows = page.locator("table.entries tbody tr[data-id]")
    expect(rows).to_have_count(12)
    page.get_by_label("Status").select_option("failed")
    expect(rows).to_have_count(2)
    expect(rows.locator("td.status .badge")).to_have_text(["failed", "failed"])
    page.get_by_role("button", name="Clear filters").click()
    expect(rows).to_have_count(12)

    title = dashboard.api("GET", "/api/jobs?sort=title")["items"][0]["title"]
    page.goto(f"{dashboard.url}/#/jobs")
    page.get_by_role("searchbox", name="Search").fill(title)
    expect(page.locator("table.jobs tbody a").first).to_have_text(title)

    # The run closes inside the feed job, a moment before BullMQ files the failed job as a dead letter.
    deadline = time.monotonic() + 20
    while dashboard.api("GET", "/api/failed")["total"] < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dashboard.api("GET", "/api/failed")["total"] == 2

    for width, label in ((1280, "laptop"), (390, "phone")):
        page.set_viewport_size({"width": width, "height": 900 if width > 400 else 844})
        for route, ready in pages.items():
            page.goto(f"{dashboard.url}/#/{route}")
            expect(page.locator(ready).first).to_be_visible(timeout=15_000)
            expect(page.locator("main h1")).to_be_visible()
            name = route.split("/")[0] + ("-detail" if "/" in route else "")
            screenshot(page, f"{label}-{name}")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{route} is {overflow}px wider than a {width}px window"


def test_history_rows_show_the_failure_reason_and_a_run_keeps_its_order(
    dashboard: Dashboard, feeds: FeedServer, page: Page
) -> None:
    body = render_feed(load_real_jobs()[:2], title="t", link="https://jobicy.com")
    feeds.route("/zeta", body=body)
    feeds.route("/alpha-gone", status=404)
    feeds.route("/mid", body=body)
    # Added (and so run) in this order: by name it would be alpha, mid, zeta.
    ids = [dashboard.add_feed(name, feeds.url(path))["id"] for name, path in
           (("zeta", "/zeta"), ("alpha", "/alpha-gone"), ("mid", "/mid"))]  # fmt: skip
    run = dashboard.wait_run(dashboard.start_run(ids))
    reason = next(e["error"] for e in run["feeds"] if e["name"] == "alpha")
    assert "404" in reason

    page.goto(f"{dashboard.url}/#/history")
    rows = page.locator("table.entries tbody tr[data-id]")
    expect(rows).to_have_count(3)
    names = [rows.nth(i).locator("td.url .muted").inner_text() for i in range(3)]
    assert names == [e["name"] for e in run["feeds"]] == ["zeta", "alpha", "mid"]
    shown = rows.nth(1).locator("td.status .reason")
    expect(shown).to_be_visible()
    assert shown.get_attribute("title") == reason  # the whole reason on hover
    assert reason.startswith(shown.inner_text().rstrip("…"))
    assert rows.nth(0).locator(".reason").count() == 0  # a completed feed has none
    screenshot(page, "history-reasons")


def test_a_feed_is_previewed_in_the_form_before_it_is_saved(
    dashboard: Dashboard, feeds: FeedServer, page: Page
) -> None:
    from fixtures.captures import CAPTURES

    feeds.route(
        "/jobs.xml", body=(CAPTURES / "indeed-2026-colen63.xml").read_bytes(), content_type="application/xml"
    )
    page.goto(f"{dashboard.url}/#/feeds")
    login(page)
    page.get_by_label("Name", exact=True).fill("4 Corner Resources")
    page.get_by_label("URL", exact=True).fill(feeds.url("/jobs.xml"))
    page.get_by_role("button", name="Preview").click()

    panel = page.locator(".feed-preview")
    expect(panel.locator("[data-fact='Format']")).to_have_text("job-xml")
    expect(panel.locator("[data-fact='Items read']")).to_have_text("27")
    first = panel.locator("table.preview-record").first
    expect(first.locator("tr[data-field='title'] td")).to_have_text("Senior Staff Accountant")
    expect(first.locator("tr[data-field='salary_max'] td")).to_have_text("75000")
    expect(first.locator("tr[data-field='apply_url']")).to_have_class("empty-field")
    assert dashboard.api("GET", "/api/feeds")["total"] == 0  # previewed, not saved
    screenshot(page, "feeds-preview")

    page.get_by_label("Field mapping (JSON, optional)").fill(
        '{"items": "//job", "fields": {"title": "title["}}'
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#notice")).to_contain_text("fields.title: path 'title[': not a valid XPath")
    page.get_by_label("Field mapping (JSON, optional)").fill(
        '{"items": "//job", "fields": {"title": "city", "link": "url"}}'
    )
    page.get_by_role("button", name="Preview").click()
    expect(panel.locator("[data-fact='Format']")).to_have_text("mapped")
    expect(first.locator("tr[data-field='title'] td")).to_have_text("Maitland")

    page.get_by_role("button", name="Add feed").click()
    expect(page.locator("#notice")).to_contain_text("Added 4 Corner Resources")
    (stored,) = dashboard.api("GET", "/api/feeds")["items"]
    assert stored["mapping"]["items"] == "//job" and stored["profile"] == "auto"
