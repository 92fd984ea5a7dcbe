"""The dashboard stays current by itself: live over SSE, by polling when the stream breaks, and the
failed-jobs page retries a dead letter that then completes."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from browser.harness import Dashboard, fact, login, needs_chromium, screenshot, wait_until
from fixtures.wpjm import many_jobs, render_feed
from plugins.feedserver import FeedServer

pytestmark = [needs_chromium, pytest.mark.external_service, pytest.mark.e2e]

# Records every value the "new" cell of the first history row shows, as the DOM changes.
RECORD_NEW_COUNTS = """() => {
  window.__newCounts = [];
  const body = document.querySelector("table.entries tbody");
  new MutationObserver(() => {
    const cell = body.querySelector("tr[data-id] td.new");
    const value = cell ? Number(cell.textContent.replace(/\\D/g, "")) : null;
    if (value !== null && window.__newCounts.at(-1) !== value) window.__newCounts.push(value);
  }).observe(body, { childList: true, subtree: true, characterData: true });
}"""


def jobicy_feed(count: int, *, start_id: int = 1_000_000) -> bytes:
    return render_feed(many_jobs(count, start_id=start_id), title="Jobicy", link="https://jobicy.com")


def test_manual_run_appears_and_its_counts_rise_without_reload(
    dashboard: Dashboard, feeds: FeedServer, page: Page
) -> None:
    feeds.route("/big", body=jobicy_feed(300))  # 60 batches of 5: counts rise batch by batch
    dashboard.add_feed("Big jobicy feed", feeds.url("/big"))
    page.goto(f"{dashboard.url}/#/history")
    login(page)
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("table.entries tbody")).to_contain_text("No imports match")
    page.evaluate("window.__sameDocument = true")
    page.evaluate(RECORD_NEW_COUNTS)

    page.get_by_role("button", name="Run import now").click()
    expect(page.locator("#notice")).to_contain_text("started for all enabled feeds")
    run_id = page.locator("#notice a").text_content()
    row = page.locator("table.entries tbody tr[data-id]")
    expect(row).to_have_count(1)
    expect(row.locator("td.url")).to_contain_text(feeds.url("/big"))
    expect(row.locator("td.status .badge")).to_have_text("completed", timeout=30_000)
    expect(row.locator("td.new")).to_have_text("300")
    expect(row.locator("td.total")).to_have_text("300")

    seen = page.evaluate("window.__newCounts")
    assert seen == sorted(seen) and seen[-1] == 300, seen
    assert any(0 < value < 300 for value in seen), f"the count jumped straight to its end: {seen}"
    assert page.evaluate("window.__sameDocument") is True  # never reloaded
    assert dashboard.wait_run(str(run_id))["status"] == "completed"
    screenshot(page, "history-live")


def test_polling_keeps_the_table_current_while_the_stream_is_down(
    dashboard: Dashboard, feeds: FeedServer, page: Page
) -> None:
    feeds.route("/small", body=jobicy_feed(12))
    feed = dashboard.add_feed("Small feed", feeds.url("/small"))
    page.goto(f"{dashboard.url}/#/history")
    expect(page.locator("#live")).to_have_text("live")
    dashboard.wait_run(dashboard.start_run([feed["id"]]))
    rows = page.locator("table.entries tbody tr[data-id]")
    expect(rows).to_have_count(1)

    dashboard.cut_events()  # the open stream ends and reconnects are refused
    expect(page.locator("#live")).to_have_text("polling", timeout=10_000)
    second = dashboard.wait_run(dashboard.start_run([feed["id"]]))
    expect(rows).to_have_count(2, timeout=10_000)
    newest = page.locator(f'table.entries tr[data-id="{second["feeds"][0]["id"]}"]')
    expect(newest.locator("td.status .badge")).to_have_text("completed")
    expect(newest.locator("td.unchanged")).to_have_text("12")
    screenshot(page, "history-polling")

    dashboard.restore_events()
    expect(page.locator("#live")).to_have_text("live", timeout=20_000)


def test_failed_feed_job_is_retried_from_the_failed_page_and_completes(
    dashboard: Dashboard, feeds: FeedServer, page: Page
) -> None:
    feeds.route("/moving", status=404, body=b"not here yet", content_type="text/plain")
    feed = dashboard.add_feed("Moving feed", feeds.url("/moving"))
    run = dashboard.wait_run(dashboard.start_run([feed["id"]]))
    entry = run["feeds"][0]
    assert entry["status"] == "failed", entry

    page.goto(f"{dashboard.url}/#/failed")
    login(page)
    dead = page.locator("table.failed tbody tr", has_text=entry["id"])
    expect(dead).to_contain_text("404")
    screenshot(page, "failed")

    feeds.route("/moving", body=jobicy_feed(6))
    dead.get_by_role("button", name="Retry").click()
    expect(page.locator("#notice")).to_contain_text("Retried")
    wait_until(
        lambda: dashboard.api("GET", f"/api/imports/{entry['id']}")["status"] == "completed",
        timeout=20,
        what="the retried entry to complete",
    )
    expect(page.locator("table.failed tbody tr", has_text=entry["id"])).to_have_count(0)

    page.goto(f"{dashboard.url}/#/imports/{entry['id']}")
    expect(fact(page, "Status")).to_have_text("completed")
    expect(fact(page, "New")).to_have_text("6")
