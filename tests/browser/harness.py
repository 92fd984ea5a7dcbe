"""The browser tests' harness: the app under test in a background thread, and page helpers.

``Dashboard`` serves the real app (``jobimporter.api.app.create_app``) with uvicorn on a free port
in its own thread and event loop, so the test process can drive Chromium with Playwright's sync
API. ``cut_events()`` / ``restore_events()`` break and mend the SSE stream server-side.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import ConsoleMessage, Locator, Page
from starlette.types import ASGIApp, Receive, Scope, Send

from jobimporter.api.app import begin_shutdown, create_app
from jobimporter.api.server import bind
from jobimporter.api.state import LiveSettings
from jobimporter.config import Settings
from jobimporter.runtime import Runtime

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium phones home at start, and this closed network refuses its connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ADMIN_TOKEN = "browser-test-token"
# Queue counts every second; a browser whose stream dropped is told to come back after 1 s.
LIVE = LiveSettings(queue_counts_s=1.0, heartbeat_s=5.0, block_ms=200, retry_ms=1000)

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)",
)


class EventStreamCutter:
    """ASGI wrapper that can break ``/api/events``: ``cut()`` ends open streams and refuses new ones
    with 503 (so the browser's EventSource errors and the page must fall back to polling);
    ``restore()`` lets them through again."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cut = threading.Event()

    def cut(self) -> None:
        self._cut.set()

    def restore(self) -> None:
        self._cut.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/events":
            await self.app(scope, receive, send)
        elif self._cut.is_set():
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"cut by the test"})
        else:
            await self._until_cut(self.app(scope, receive, send))

    async def _until_cut(self, stream: Awaitable[None]) -> None:
        task = asyncio.ensure_future(stream)
        while not task.done():
            if self._cut.is_set():
                task.cancel()  # the response never completes: the server drops the connection
                break
            await asyncio.wait({task}, timeout=0.1)
        try:
            await task
        except asyncio.CancelledError:
            pass


@dataclass
class Dashboard:
    """The app under test, served on ``url`` from a background thread with its own event loop.

    The thread runs a ``Runtime`` with in-process workers, ``create_app`` over it (wrapped in an
    ``EventStreamCutter``) and uvicorn on a socket bound beforehand, so the URL is known at once.
    """

    settings: Settings
    url: str = ""
    cutter: EventStreamCutter | None = None
    errors: list[BaseException] = field(default_factory=list)
    _app: FastAPI | None = None
    _server: uvicorn.Server | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._run, args=(sock,), name="dashboard", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not (self._server and self._server.started):
            if self.errors or not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"dashboard app did not start: {self.errors}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._shutdown)
            self._thread.join(timeout=30)

    def _shutdown(self) -> None:
        assert self._app is not None and self._server is not None
        begin_shutdown(self._app)  # ends the SSE streams, so uvicorn need not wait for them
        self._server.should_exit = True

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._serve(sock))
        except Exception as exc:  # noqa: BLE001 - a thread cannot raise: start() and the fixture report it
            self.errors.append(exc)
        finally:
            sock.close()

    async def _serve(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        async with Runtime(self.settings, workers=True) as runtime:
            self._app = create_app(self.settings, runtime, live=LIVE)
            self.cutter = EventStreamCutter(self._app)
            config = uvicorn.Config(
                self.cutter, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=2
            )
            self._server = uvicorn.Server(config)
            await self._server.serve(sockets=[sock])

    # ------------------------------------------------------------ helpers for set-up and checks

    def api(self, method: str, path: str, body: Any = None, *, expect: int | None = None) -> Any:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if method != "GET" else {}
        answer = httpx.request(method, self.url + path, json=body, headers=headers, timeout=10)
        if expect is not None:
            assert answer.status_code == expect, (method, path, answer.status_code, answer.text)
        else:
            answer.raise_for_status()
        return answer.json() if answer.content else None

    def add_feed(self, name: str, url: str, **extra: Any) -> dict[str, Any]:
        feed: dict[str, Any] = self.api("POST", "/api/feeds", {"name": name, "url": url, **extra}, expect=201)
        return feed

    def start_run(self, feed_ids: list[str]) -> str:
        return str(self.api("POST", "/api/runs", {"feed_ids": feed_ids}, expect=202)["run_id"])

    def wait_run(self, run_id: str, timeout: float = 30) -> dict[str, Any]:
        """The run once it has finished (status no longer ``running``)."""
        deadline = time.monotonic() + timeout
        while True:
            run: dict[str, Any] = self.api("GET", f"/api/runs/{run_id}")
            if run["status"] != "running":
                return run
            assert time.monotonic() < deadline, f"run {run_id} still running: {run}"
            time.sleep(0.1)

    def cut_events(self) -> None:
        assert self.cutter is not None
        self.cutter.cut()

    def restore_events(self) -> None:
        assert self.cutter is not None
        self.cutter.restore()


def console_error(message: ConsoleMessage, errors: list[str]) -> None:
    """Record a console error that means a page bug."""
    # Chromium reports the CSP refusing the inline handler of a hostile description while the
    # sanitizer parses it (it is removed before anything could run), and failed requests are
    # what the fallback tests provoke.
    benign = ("Executing inline event handler violates", "Failed to load resource", "net::ERR_")
    if message.type == "error" and not any(text in message.text for text in benign):
        errors.append(message.text)


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot under test-artifacts/ (git-ignored), for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Page) -> None:
    """Store the admin token the way a user does: the header's token field."""
    page.locator("details.token summary").click()
    page.get_by_label("Bearer token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Save").click()


def fact(page: Page, name: str) -> Locator:
    """The value of one fact on a detail page (``<dt>name</dt><dd>value</dd>``)."""
    term = page.locator("dt").get_by_text(name, exact=True)
    return page.locator("dl.facts > div").filter(has=term).locator("dd")


def wait_until(check: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
