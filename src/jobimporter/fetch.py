"""Fetch stage: download one feed over HTTP into a spooled file and describe it as a ``FetchResult``.

This module owns:

- the configuration of the shared ``httpx.AsyncClient`` (``make_client``; built once per process
  by a composition root and handed in, never per fetch);
- the conditional GET (``If-None-Match`` / ``If-Modified-Since``) and the validators we keep for
  the next one;
- the limits on one download: the size cap (counted on *decoded* bytes, while streaming) and the
  total-time bound on top of httpx's connect/read timeouts;
- the translation of every httpx failure and every unusable status into the ``FetchError`` tree of
  ``jobimporter.errors``, in one place (``_translate_errors``), so callers never catch httpx.

It takes plain values (``FetchLimits``), never ``Settings``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from jobimporter.errors import FeedTooLarge, FetchError, FetchHTTPError, FetchNetworkError, FetchTimeout

__all__ = [
    "ACCEPT",
    "MAX_RETRY_AFTER_S",
    "SPOOL_MEMORY_BYTES",
    "FetchLimits",
    "FetchResult",
    "fetch_feed",
    "make_client",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

# Feeds first; text/xml is what many old servers send for RSS; anything else only as a last resort
# (we still want the body, e.g. to recognise a firewall's HTML page and say so).
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml, application/json, text/xml;q=0.9, */*;q=0.1"
)
# Most feeds are far below this and never touch the disk; big ones roll over into spool_dir.
SPOOL_MEMORY_BYTES = 1024 * 1024
# A server asking us to come back tomorrow is not obeyed blindly: the scheduler's own backoff rules.
MAX_RETRY_AFTER_S = 3600.0

SpooledBody = tempfile.SpooledTemporaryFile[bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchLimits:
    """How long and how much one download may take; the composition root fills it from settings."""

    connect_timeout_s: float
    read_timeout_s: float
    total_timeout_s: float
    max_bytes: int
    max_redirects: int = 5
    user_agent: str

    def __post_init__(self) -> None:
        if min(self.connect_timeout_s, self.read_timeout_s, self.total_timeout_s) <= 0:
            raise ValueError("fetch: timeouts must be positive")
        if self.max_bytes <= 0 or self.max_redirects < 0:
            raise ValueError("fetch: max_bytes must be positive and max_redirects not negative")


@dataclass(frozen=True, slots=True, eq=False)
class FetchResult:
    """A usable answer (2xx or 304). Owns ``body``: close it (or use ``with``) to discard the spool."""

    url: str
    effective_url: str
    status: int
    not_modified: bool
    etag: str | None
    last_modified: str | None
    content_type: str | None
    bytes: int
    duration_s: float
    body: SpooledBody | None
    retry_after_s: float | None = None

    def is_modified(self) -> bool:
        """False when the server answered 304: the feed is as it was at the last complete import."""
        return not self.not_modified

    def retry_delay(self) -> float | None:
        """Seconds the server asked us to wait before the next request (``Retry-After``), if any."""
        return self.retry_after_s

    @property
    def on_disk(self) -> bool:
        """Whether the body rolled over from memory into a temporary file in ``spool_dir``."""
        # SpooledTemporaryFile rolls over once a write takes it past its max_size.
        return self.body is not None and self.bytes > SPOOL_MEMORY_BYTES

    def close(self) -> None:
        """Discard the spooled body (the temporary file is already unlinked; this frees it)."""
        if self.body is not None:
            self.body.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def make_client(
    limits: FetchLimits, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The process-wide client for feed downloads; the caller owns it and closes it on shutdown."""
    timeout = httpx.Timeout(
        connect=limits.connect_timeout_s,
        read=limits.read_timeout_s,
        write=limits.read_timeout_s,
        pool=limits.connect_timeout_s,
    )
    headers = {"User-Agent": limits.user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip"}
    return httpx.AsyncClient(
        headers=headers,
        timeout=timeout,
        follow_redirects=True,
        max_redirects=limits.max_redirects,
        transport=transport,
    )


async def fetch_feed(
    client: httpx.AsyncClient,
    url: str,
    *,
    limits: FetchLimits,
    etag: str | None = None,
    last_modified: str | None = None,
    spool_dir: Path | None = None,
) -> FetchResult:
    """GET ``url`` (conditionally, when validators are given) and spool the decoded body.

    :returns: a ``FetchResult`` for a 2xx answer (``body`` at offset 0) or a 304 (``body`` None).
    :raises FetchTimeout: connect/read timeout, or the whole download took over ``total_timeout_s``.
    :raises FetchNetworkError: DNS, refused/reset connection, TLS or protocol failure.
    :raises FetchHTTPError: any other status, with ``status``, ``retry_after`` and ``transient``.
    :raises FeedTooLarge: the body (declared or counted) passed ``max_bytes``.
    :raises FetchError: too many redirects, an unsupported or invalid URL, an undecodable body.
    """
    started = time.monotonic()
    try:
        result = await _fetch(client, url, limits, _conditional_headers(etag, last_modified), spool_dir)
    except FetchError as exc:
        logger.info(
            "fetch %s failed after %.2fs: %s", url, time.monotonic() - started, exc, extra={"feed_url": url}
        )
        raise
    logger.info(
        "fetch %s -> %d, %d bytes in %.2fs",
        url,
        result.status,
        result.bytes,
        result.duration_s,
        extra={"feed_url": url},
    )
    return result


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """Validators from the last complete import; a non-ASCII one (a sloppy server's) is left out,
    since httpx cannot encode it and an unconditional GET is merely slower."""
    candidates = {"If-None-Match": etag, "If-Modified-Since": last_modified}
    return {name: value for name, value in candidates.items() if value and value.isascii()}


async def _fetch(
    client: httpx.AsyncClient, url: str, limits: FetchLimits, headers: dict[str, str], spool_dir: Path | None
) -> FetchResult:
    started = time.monotonic()
    async with _translate_errors(url, limits), client.stream("GET", url, headers=headers) as response:
        if response.status_code == httpx.codes.NOT_MODIFIED:
            return _result(url, response, started, None, 0)
        if not response.is_success:
            raise _http_error(url, response)
        _check_declared_length(url, response, limits.max_bytes)
        body, size = await _spool(url, response, limits.max_bytes, spool_dir)
        return _result(url, response, started, body, size)


def _result(
    url: str, response: httpx.Response, started: float, body: SpooledBody | None, size: int
) -> FetchResult:
    headers = response.headers
    return FetchResult(
        url=url,
        effective_url=str(response.url),
        status=response.status_code,
        not_modified=response.status_code == httpx.codes.NOT_MODIFIED,
        etag=headers.get("ETag"),
        last_modified=headers.get("Last-Modified"),
        content_type=headers.get("Content-Type"),
        bytes=size,
        duration_s=time.monotonic() - started,
        body=body,
        retry_after_s=parse_retry_after(headers.get("Retry-After")),
    )


async def _spool(
    url: str, response: httpx.Response, max_bytes: int, spool_dir: Path | None
) -> tuple[SpooledBody, int]:
    """Copy the decoded body into a spool, counting as we go so a huge feed is cut off early."""
    size = 0
    with contextlib.ExitStack() as on_error:
        spool = on_error.enter_context(
            tempfile.SpooledTemporaryFile(
                max_size=SPOOL_MEMORY_BYTES, dir=str(spool_dir) if spool_dir else None, prefix="feed-"
            )
        )
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FeedTooLarge(f"fetch: {url} sent more than the {max_bytes:,}-byte cap; stopped reading")
            # A blocking write, but of one network chunk into memory or the page cache: not worth a thread.
            spool.write(chunk)
        on_error.pop_all()  # success: the FetchResult owns the spool from here
    spool.seek(0)
    return spool, size


def _check_declared_length(url: str, response: httpx.Response, max_bytes: int) -> None:
    """Refuse before reading when Content-Length already says the body is over the cap."""
    # With a Content-Encoding the length is of the compressed body; the decoded count decides then.
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return
    try:
        declared = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return
    if declared > max_bytes:
        raise FeedTooLarge(
            f"fetch: {url} declares {declared:,} bytes (Content-Length), over the {max_bytes:,}-byte cap"
        )


def _http_error(url: str, response: httpx.Response) -> FetchHTTPError:
    status = response.status_code
    reason = httpx.codes.get_reason_phrase(status) or response.reason_phrase or "unknown status"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    message = f"fetch: HTTP {status} {reason} from {_describe_url(url, response)}"
    if retry_after is not None:
        message += f"; retry after {retry_after:g} s"
    return FetchHTTPError(message, status=status, retry_after=retry_after)


def _describe_url(url: str, response: httpx.Response) -> str:
    effective = str(response.url)
    return url if effective == url else f"{effective} (redirected from {url})"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` (delay-seconds or HTTP-date) as seconds from ``now``, within 0..MAX_RETRY_AFTER_S.

    None when the header is missing or unreadable: a garbled hint is no hint.
    """
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        when = _parse_http_date(value)
        if when is None:
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _parse_http_date(value: str) -> datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # RFC 9110 dates are GMT; a zone-less one is read the same way.
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# ---------------------------------------------------------------- the one translation point


@contextlib.asynccontextmanager
async def _translate_errors(url: str, limits: FetchLimits) -> AsyncIterator[None]:
    """Bound the block by ``total_timeout_s`` and turn httpx exceptions into ``FetchError``s.

    Like httpx's own ``map_httpcore_exceptions``: the single place where a third-party exception
    becomes one of ours, picking the most specific mapping in ``_mapped``.
    """
    deadline = asyncio.timeout(limits.total_timeout_s)
    try:
        async with deadline:
            yield
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        message = f"fetch: {url} took longer than the {limits.total_timeout_s:g} s allowed for a download"
        raise FetchTimeout(message) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _mapped(exc, url, limits) from exc


def _mapped(exc: httpx.HTTPError | httpx.InvalidURL, url: str, limits: FetchLimits) -> FetchError:
    detail = _one_line(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return FetchTimeout(f"fetch: could not connect to {url} within {limits.connect_timeout_s:g} s")
    if isinstance(exc, httpx.ReadTimeout):
        return FetchTimeout(f"fetch: {url} sent nothing for {limits.read_timeout_s:g} s (read timeout)")
    if isinstance(exc, httpx.TimeoutException):
        return FetchTimeout(f"fetch: {type(exc).__name__} talking to {url}")
    if isinstance(exc, httpx.TooManyRedirects):
        # A redirect loop or an endless chain is the feed's configuration: retrying will not help.
        return FetchError(f"fetch: more than {limits.max_redirects} redirects from {url}")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return FetchError(f"fetch: cannot request {url}: {detail}")
    if isinstance(exc, httpx.DecodingError):
        return FetchError(f"fetch: could not decode the body of {url}: {detail}")
    if isinstance(exc, httpx.ConnectError) and _caused_by(exc, ssl.SSLError):
        return FetchNetworkError(f"fetch: TLS handshake with {url} failed: {detail}")
    if isinstance(exc, httpx.ConnectError):
        return FetchNetworkError(f"fetch: could not connect to {url}: {detail}")
    if isinstance(exc, httpx.ProtocolError):
        return FetchNetworkError(f"fetch: broken HTTP answer from {url}: {detail}")
    return FetchNetworkError(f"fetch: {type(exc).__name__} talking to {url}: {detail}")


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is anywhere in the chain (httpx wraps httpcore, which wraps ssl)."""
    link: BaseException | None = exc
    for _ in range(16):  # chains are short; the bound only guards against a cycle
        if link is None:
            return False
        if isinstance(link, kind):
            return True
        link = link.__cause__ or link.__context__
    return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
