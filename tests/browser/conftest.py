"""Fixtures of the browser tests (the harness is in ``harness.py``).

- ``dashboard``: the real app on a free port, with in-process workers, the private Redis (flushed),
  SQLite in a temp dir, an admin token, and no feeds until the test adds some;
- ``page``: a fresh Chromium page (1280×900, Paris time) that fails the test on any page error.

Playwright cannot download its own browser on this network: the tests drive Debian's chromium, and
are skipped when it is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from pydantic import SecretStr

from browser.harness import ADMIN_TOKEN, CHROMIUM, CHROMIUM_ARGS, Dashboard, console_error
from jobimporter.config import Settings


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
        admin_token=SecretStr(ADMIN_TOKEN),
        batch_size=5,  # many small batches: counts rise step by step
        concurrency=2,
        attempts=1,  # a failing feed is a dead letter at once
        backoff_ms=100,
        fetch_timeout_s=5.0,
        read_timeout_s=2.0,
        host_interval_s=0,  # every feed is on 127.0.0.1: no politeness delay between them
    )


@pytest.fixture
def dashboard(settings: Settings) -> Iterator[Dashboard]:
    app = Dashboard(settings)
    app.start()
    yield app
    app.stop()
    assert not app.errors, app.errors


# Package scope, not session: the sync driver keeps an event loop running in the main thread while it
# is open, and pytest-asyncio cannot run the async tests of the other packages until it is stopped.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Playwright gives each launch a fresh temporary profile (it refuses a --user-data-dir argument).
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: console_error(message, errors))
    yield page
    context.close()
    assert not errors, errors
