"""Further pages of a paged feed (Lever, Workable, SmartRecruiters, Arbeitnow, Himalayas, USAJOBS,
Adzuna): fetched for the parser thread, on the event loop, politely.

The parse stage reads a paged API's pages in order from its own thread and asks for each next page
through a plain callable (:data:`jobimporter.parse.PageLoader`). :class:`PageFetcher` is that
callable: it runs the fetch on the event loop (``run_coroutine_threadsafe``) and blocks only the
parser thread. Before each request it waits for the host's turn (``pace``: the per-host politeness
limit, shared with feed fetches), and it retries a transient failure (timeout, connection, 429,
5xx) with exponential backoff, never sooner than a Retry-After. A page that still fails raises its
``FetchError``; the parse stage turns it into the entry's reason, keeping the items read before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from jobimporter.errors import FetchError, FetchHTTPError
from jobimporter.fetch import FetchLimits, fetch_feed
from jobimporter.parse.profiles import host_of

log = logging.getLogger(__name__)

Pace = Callable[[str], Awaitable[None]]  # host → returns once a request to it may go
Fetch = Callable[[str], Awaitable[bytes]]  # URL → the page's body


class PageFetcher:
    """A page loader for the parser thread (module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fetch: Fetch,
        pace: Pace,
        *,
        attempts: int = 3,
        backoff_s: float = 1.0,
    ) -> None:
        self._loop, self._fetch, self._pace = loop, fetch, pace
        self._attempts, self._backoff_s = max(1, attempts), backoff_s
        self.pages = 0  # pages fetched so far (the first page is the feed's own fetch)

    def __call__(self, url: str) -> bytes:
        """Fetch ``url``; called from the parser thread, never from the event loop's.

        :raises FetchError: the page failed (after its retries, when transient).
        """
        return asyncio.run_coroutine_threadsafe(self.get(url), self._loop).result()

    async def get(self, url: str) -> bytes:
        for attempt in range(1, self._attempts + 1):
            await self._pace(host_of(url))
            try:
                body = await self._fetch(url)
            except FetchError as exc:
                if not exc.transient or attempt == self._attempts:
                    raise
                delay = self._delay(attempt, exc)
                log.warning("paging: %s: attempt %d of %d failed: %s; retrying in %.1f s",
                            url, attempt, self._attempts, exc, delay)  # fmt: skip
                await asyncio.sleep(delay)
            else:
                self.pages += 1
                return body
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _delay(self, attempt: int, exc: FetchError) -> float:
        exponential: float = self._backoff_s * 2.0 ** (attempt - 1)
        retry_after = exc.retry_after if isinstance(exc, FetchHTTPError) else None
        return max(exponential, float(retry_after or 0.0))


def page_fetch(client: httpx.AsyncClient, limits: FetchLimits, spool_dir: Path | None) -> Fetch:
    """The ``fetch`` of a :class:`PageFetcher`: an unconditional GET within the feed's limits."""

    async def fetch(url: str) -> bytes:
        result = await fetch_feed(client, url, limits=limits, spool_dir=spool_dir)
        with result:
            return result.body.read() if result.body is not None else b""

    return fetch
