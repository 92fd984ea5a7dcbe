"""The lifecycle on the dashboard, in Chromium (issue 11): the Jobs page's status filter, a job's list
of changes, a feed that paused itself shown with its reason and resumed with one click, and the
Webhooks page with its deliveries."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from browser.harness import Dashboard, fact, login, needs_chromium, screenshot, wait_until
from fixtures.wpjm import changed_copy, load_real_jobs, render_feed
from jobimporter.config import Settings
from plugins.feedserver import FeedServer
from plugins.hookserver import HookServer

pytestmark = [needs_chromium, pytest.mark.external_service, pytest.mark.e2e]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No grace period, and a feed paused after one failure for good: what the pages show comes at
    once. The defaults (a day, five failures) are covered in e2e/test_lifecycle.py."""
    return settings.model_copy(update={"expire_after_s": 0, "pause_after_failures": 1})


def test_the_jobs_page_filters_by_status_and_a_job_lists_its_changes(
    dashboard: Dashboard, feeds: FeedServer, page: Page
) -> None:
    jobs = load_real_jobs()[:5]
    feeds.route("/f", body=render_feed(jobs, title="t", link="https://jobicy.com"))
    feed = dashboard.add_feed("Jobicy", feeds.url("/f"))
    dashboard.wait_run(dashboard.start_run([feed["id"]]))
    kept = [changed_copy(jobs[0]), *jobs[1:3]]
    feeds.route("/f", body=render_feed(kept, title="t", link="https://jobicy.com"))
    second = dashboard.wait_run(dashboard.start_run([feed["id"]]))
    assert (second["feeds"][0]["expired"], second["feeds"][0]["updated"]) == (2, 1)

    page.goto(f"{dashboard.url}/#/jobs")
    rows = page.locator("table.jobs tbody tr[data-status]")
    expect(rows).to_have_count(3)
    expect(rows.locator("td.status .badge")).to_have_text(["active"] * 3)
    page.get_by_label("Status").select_option("expired")
    expect(rows).to_have_count(2)
    expect(rows.locator("td.status .badge")).to_have_text(["expired"] * 2)
    expect(page).to_have_url(f"{dashboard.url}/#/jobs?page=1&page_size=20&status=expired&sort=-last_changed")
    screenshot(page, "jobs-expired")
    page.get_by_label("Status").select_option("all")
    expect(rows).to_have_count(5)

    page.get_by_label("Status").select_option("expired")
    expect(rows).to_have_count(2)
    rows.first.locator("a").click()
    expect(fact(page, "Status")).to_contain_text("expired left its feeds")
    changes = page.locator("table.changes tbody tr[data-kind]")
    expect(changes).to_have_count(2)
    expect(changes.locator(".badge")).to_have_text(["new", "expired"])
    expect(changes.nth(1).locator("td.fields")).to_have_text("left its feeds")

    edited = next(j for j in dashboard.api("GET", "/api/jobs")["items"] if j["title"] == jobs[0]["jobTitle"])
    page.goto(f"{dashboard.url}/#/jobs/{edited['key']}")
    expect(changes.locator(".badge")).to_have_text(["new", "updated"])
    expect(changes.nth(1).locator("td.fields")).to_have_text("description_html, description_text")
    expect(fact(page, "Status")).to_contain_text("active")
    screenshot(page, "job-changes")


def test_a_feed_that_paused_itself_says_why_and_resumes_with_one_click(
    dashboard: Dashboard, feeds: FeedServer, page: Page
) -> None:
    feeds.route("/gone", status=404, body=b"gone", content_type="text/plain")
    feed = dashboard.add_feed("Gone feed", feeds.url("/gone"))
    dashboard.wait_run(dashboard.start_run([feed["id"]]))

    page.goto(f"{dashboard.url}/#/feeds")
    login(page)
    row = page.locator("table.feeds tbody tr", has_text="Gone feed")
    expect(row).to_have_attribute("data-paused", "health")
    expect(row).to_have_attribute("data-enabled", "false")
    expect(row.locator(".paused-reason")).to_contain_text("paused after import failed for good")
    expect(row.locator(".paused-reason")).to_contain_text("404")
    expect(row.locator("[data-failures]")).to_have_text("1 permanent failure in a row")
    screenshot(page, "feeds-paused")

    row.get_by_role("button", name="Resume").click()
    expect(row).to_have_attribute("data-enabled", "true")
    expect(row).to_have_attribute("data-paused", "")
    expect(row.locator("[data-failures]")).to_have_count(0)
    stored = dashboard.api("GET", f"/api/feeds/{feed['id']}")
    assert (stored["enabled"], stored["paused_at"], stored["health"]["permanent_failures"]) == (True, None, 0)


def test_a_webhook_is_added_and_its_deliveries_shown_with_their_answers(
    dashboard: Dashboard, feeds: FeedServer, hooks: HookServer, page: Page
) -> None:
    page.goto(f"{dashboard.url}/#/webhooks")
    login(page)
    expect(page.locator("table.webhooks")).to_contain_text("No webhooks yet")
    page.get_by_label("Name", exact=True).fill("Job board")
    page.get_by_label("URL", exact=True).fill(hooks.url("/board"))
    page.get_by_label("run.finished").check()
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#notice")).to_contain_text("Added webhook Job board")
    secret = page.locator("p.secret code").inner_text()
    assert len(secret) >= 32
    expect(page.locator("table.webhooks tbody tr[data-id]")).to_contain_text("run.finished, jobs.changed")

    feeds.route("/f", body=render_feed(load_real_jobs()[:3], title="t", link="https://jobicy.com"))
    feed = dashboard.add_feed("Jobicy", feeds.url("/f"))
    dashboard.wait_run(dashboard.start_run([feed["id"]]))
    delivered = page.locator("table.deliveries tbody tr[data-status='delivered']")
    wait_until(lambda: len(hooks.received("/board")) >= 2, what="the run and the changes at the endpoint")
    expect(delivered.filter(has_text="run.finished")).to_have_count(1, timeout=30_000)
    expect(delivered.filter(has_text="jobs.changed").first).to_contain_text("HTTP 200")
    expect(delivered.first.locator("td.answer")).to_contain_text("ok")
    screenshot(page, "webhooks")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("table.webhooks tbody tr[data-id]").get_by_role("button", name="Delete").click()
    expect(page.locator("table.webhooks")).to_contain_text("No webhooks yet")
    expect(page.locator("table.deliveries tbody tr[data-id]").first).to_be_visible()  # deliveries stay
