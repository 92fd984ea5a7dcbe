"""PageFetcher: each further page waits for its host's turn, then is fetched on the event loop for
the parser thread; passing failures are retried with backoff (at least Retry-After), lasting ones
raise. The fetches go to the real local feed server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jobimporter.errors import FetchHTTPError
from jobimporter.fetch import FetchLimits, make_client
from jobimporter.paging import PageFetcher, page_fetch

LIMITS = FetchLimits(
    connect_timeout_s=2, read_timeout_s=2, total_timeout_s=5, max_bytes=100_000, user_agent="t"
)


async def in_thread(fetcher: PageFetcher, *urls: str) -> list[bytes]:
    """Call the fetcher the way the parser does: from another thread, while the loop runs."""
    return await asyncio.to_thread(lambda: [fetcher(url) for url in urls])


async def test_every_page_waits_for_its_hosts_turn_before_its_request(feeds: Any) -> None:
    feeds.route("/p2", body=b'{"page": 2}')
    feeds.route("/p3", body=b'{"page": 3}')
    events: list[str] = []

    async def pace(host: str) -> None:
        events.append(f"turn {host} ({len(feeds.requests)} requests so far)")

    async with make_client(LIMITS) as client:
        fetcher = PageFetcher(asyncio.get_running_loop(), page_fetch(client, LIMITS, None), pace)
        bodies = await in_thread(fetcher, feeds.url("/p2"), feeds.url("/p3"))
    assert bodies == [b'{"page": 2}', b'{"page": 3}']
    assert events == ["turn 127.0.0.1 (0 requests so far)", "turn 127.0.0.1 (1 requests so far)"]
    assert fetcher.pages == 2


async def test_a_passing_failure_is_retried_no_sooner_than_retry_after(feeds: Any) -> None:
    feeds.sequence("/busy", [{"status": 429, "headers": {"Retry-After": "1"}}, {"body": b"ok"}])
    turns: list[float] = []

    async def pace(host: str) -> None:
        turns.append(asyncio.get_running_loop().time())

    async with make_client(LIMITS) as client:
        fetcher = PageFetcher(
            asyncio.get_running_loop(), page_fetch(client, LIMITS, None), pace, backoff_s=0.01
        )
        assert await in_thread(fetcher, feeds.url("/busy")) == [b"ok"]
    assert len(turns) == 2 and turns[1] - turns[0] >= 1.0  # the server asked for a second


async def test_a_lasting_failure_raises_after_the_attempts(feeds: Any) -> None:
    feeds.route("/down", status=503, body=b"")
    feeds.route("/gone", status=404, body=b"")

    async def pace(host: str) -> None:
        return None

    async with make_client(LIMITS) as client:
        fetcher = PageFetcher(
            asyncio.get_running_loop(), page_fetch(client, LIMITS, None), pace, attempts=3, backoff_s=0.01
        )
        with pytest.raises(FetchHTTPError, match="HTTP 503"):
            await in_thread(fetcher, feeds.url("/down"))
        with pytest.raises(FetchHTTPError, match="HTTP 404"):
            await in_thread(fetcher, feeds.url("/gone"))
    assert (len(feeds.requests_for("/down")), len(feeds.requests_for("/gone"))) == (3, 1)
