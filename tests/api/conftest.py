"""Fixtures of the API tests: a Runtime with in-process workers over the private Redis and SQLite or
PostgreSQL, the app over it, an httpx client (ASGI transport) and a real uvicorn server for SSE.

``import_feeds`` serves real jobicy records from the local feed server and imports them through
``POST /api/runs``, waiting for the run to finish by polling ``GET /api/runs/{id}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.wpjm import load_real_jobs, render_feed
from jobimporter.api import create_app
from jobimporter.api.server import ApiServer, bind
from jobimporter.api.state import LiveSettings
from jobimporter.config import Settings
from jobimporter.models import FeedSource
from jobimporter.runtime import Runtime

pytestmark = [pytest.mark.external_service]

LIVE = LiveSettings(queue_counts_s=0.5, heartbeat_s=1.0, block_ms=200, retry_ms=500)
TOKEN = "s3cret-admin-token"


@pytest.fixture
def admin_token() -> str | None:
    """Overridden to TOKEN by the tests of the bearer check."""
    return None


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, database_url: str, admin_token: str | None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        database_url=database_url,
        batch_size=7,
        concurrency=4,
        backoff_ms=100,
        fetch_timeout_s=2.0,
        read_timeout_s=1.0,
        host_interval_s=0,
        admin_token=admin_token,
    )


@pytest.fixture
def with_workers() -> bool:
    """Whether the runtime consumes the queues in this process; tests that import use ``WORKERS``.
    (Workers closed within a moment of starting can hang bullmq's close for 30 s, so quick tests
    run without them.)"""
    return False


WORKERS = pytest.mark.parametrize("with_workers", [True], ids=["workers"])


@pytest.fixture
async def runtime(settings: Settings, with_workers: bool) -> AsyncIterator[Runtime]:
    async with Runtime(settings, workers=with_workers) as rt:
        yield rt


@pytest.fixture
async def app(settings: Settings, runtime: Runtime) -> AsyncIterator[Any]:
    application = create_app(settings, runtime, live=LIVE)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        yield http


@pytest.fixture
async def server(settings: Settings, runtime: Runtime) -> AsyncIterator[str]:
    """A real uvicorn on a free port (SSE needs a real streaming server); yields its base URL."""
    api = ApiServer(create_app(settings, runtime, live=LIVE), bind("127.0.0.1", 0))
    await api.start()
    try:
        yield api.url
    finally:
        await api.stop()


async def wait_for_run(client: httpx.AsyncClient, run_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """The run object once it is no longer running."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await client.get(f"/api/runs/{run_id}")
        assert answer.status_code == 200, answer.text
        run: dict[str, Any] = answer.json()
        if run["status"] != "running":
            return run
        assert time.monotonic() < deadline, f"run {run_id} still running: {run}"
        await asyncio.sleep(0.1)


def serve_jobs(feeds: Any, path: str, jobs: list[dict[str, Any]], **reply: Any) -> FeedSource:
    feeds.route(path, body=render_feed(jobs, title=path, link="https://jobicy.com"), **reply)
    return FeedSource(name=f"Feed {path}", url=feeds.url(path))


ImportFeeds = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def import_feeds(client: httpx.AsyncClient, runtime: Runtime) -> ImportFeeds:
    """Sync ``sources`` into the store, POST /api/runs for them, return the finished run object."""

    async def run(sources: list[FeedSource], headers: dict[str, str] | None = None) -> dict[str, Any]:
        stored = await runtime.ctx.store.sync_feeds(sources)
        body = {"feed_ids": [feed.id for feed in stored]}
        answer = await client.post("/api/runs", json=body, headers=headers or {})
        assert answer.status_code == 202, answer.text
        return await wait_for_run(client, answer.json()["run_id"])

    return run


@pytest.fixture
def real_jobs() -> list[dict[str, Any]]:
    return load_real_jobs()
