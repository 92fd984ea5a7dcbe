"""Fetch stage: response classification against ``httpx.MockTransport`` (tables of cases), then the
behaviour that needs a real socket (timeouts, streaming, redirects, gzip, spooling) against the
local feed server."""

from __future__ import annotations

import dataclasses
import email.utils
import gzip
import itertools
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from jobimporter.errors import FeedTooLarge, FetchError, FetchHTTPError, FetchNetworkError, FetchTimeout
from jobimporter.fetch import (
    ACCEPT,
    MAX_RETRY_AFTER_S,
    SPOOL_MEMORY_BYTES,
    FetchLimits,
    FetchResult,
    fetch_feed,
    make_client,
    parse_retry_after,
)
from plugins.feedserver import FeedServer, Reply

LIMITS = FetchLimits(
    connect_timeout_s=2.0,
    read_timeout_s=2.0,
    total_timeout_s=5.0,
    max_bytes=8 * 1024 * 1024,
    user_agent="jobimporter/test (+https://example.test/bot)",
)
FEED_URL = "https://feeds.example.test/?feed=job_feed&job_categories=smm&job_types=full-time"
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Jobs</title></channel></rss>'
Handler = Callable[[httpx.Request], httpx.Response]


def limits(**overrides: float | str) -> FetchLimits:
    return dataclasses.replace(LIMITS, **overrides)  # type: ignore[arg-type]


def mock_client(handler: Handler, **overrides: float | str) -> httpx.AsyncClient:
    return make_client(limits(**overrides), transport=httpx.MockTransport(handler))


async def fetch_mock(
    handler: Handler, url: str = FEED_URL, *, etag: str | None = None, last_modified: str | None = None
) -> FetchResult:
    async with mock_client(handler) as client:
        return await fetch_feed(client, url, limits=LIMITS, etag=etag, last_modified=last_modified)


def http_date(delta_s: float) -> str:
    return email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=delta_s), usegmt=True)


# ---------------------------------------------------------------- classification (MockTransport)

STATUS_CASES = [
    pytest.param(400, False, "Bad Request", id="400"),
    pytest.param(401, False, "Unauthorized", id="401"),
    pytest.param(403, False, "Forbidden", id="403"),
    pytest.param(404, False, "Not Found", id="404-permanent"),
    pytest.param(410, False, "Gone", id="410-permanent"),
    pytest.param(408, True, "Request Timeout", id="408"),
    pytest.param(425, True, "Too Early", id="425"),
    pytest.param(429, True, "Too Many Requests", id="429"),
    pytest.param(500, True, "Internal Server Error", id="500"),
    pytest.param(502, True, "Bad Gateway", id="502"),
    pytest.param(503, True, "Service Unavailable", id="503"),
    pytest.param(300, False, "Multiple Choices", id="300-without-location"),
]


@pytest.mark.parametrize(("status", "transient", "reason"), STATUS_CASES)
async def test_status_is_classified(status: int, transient: bool, reason: str) -> None:
    with pytest.raises(FetchHTTPError) as caught:
        await fetch_mock(lambda request: httpx.Response(status, content=b"nope"))
    error = caught.value
    assert (error.status, error.transient, error.retry_after, error.kind) == (status, transient, None, "http")
    assert str(error) == f"fetch: HTTP {status} {reason} from {FEED_URL}"


RETRY_AFTER_CASES = [
    pytest.param("120", 120.0, id="seconds"),
    pytest.param(" 30 ", 30.0, id="padded"),
    pytest.param("0", 0.0, id="zero"),
    pytest.param("86400", MAX_RETRY_AFTER_S, id="capped"),
    pytest.param("Wed, 01 Jan 2025 12:01:30 GMT", 90.0, id="http-date"),
    pytest.param("Wed, 01 Jan 2025 11:00:00 GMT", 0.0, id="date-in-past"),
    pytest.param("Wednesday, 01-Jan-25 12:02:00 GMT", 120.0, id="rfc850-date"),
    pytest.param("soon", None, id="garbage"),
    pytest.param("-5", None, id="negative"),
    pytest.param("", None, id="empty"),
    pytest.param(None, None, id="missing"),
]


@pytest.mark.parametrize(("header", "expected"), RETRY_AFTER_CASES)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


async def test_429_message_names_the_retry_delay() -> None:
    headers = {"Retry-After": "120"}
    with pytest.raises(FetchHTTPError) as caught:
        await fetch_mock(lambda request: httpx.Response(429, headers=headers))
    assert caught.value.retry_after == 120.0
    assert str(caught.value) == f"fetch: HTTP 429 Too Many Requests from {FEED_URL}; retry after 120 s"


async def test_503_with_http_date_retry_after() -> None:
    headers = {"Retry-After": http_date(300)}
    with pytest.raises(FetchHTTPError) as caught:
        await fetch_mock(lambda request: httpx.Response(503, headers=headers))
    assert caught.value.transient
    assert caught.value.retry_after is not None and 295 <= caught.value.retry_after <= 300


def _raise(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def _tls_failure(request: httpx.Request) -> httpx.Response:
    try:
        raise ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
    except ssl.SSLError as exc:
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed") from exc


TRANSPORT_CASES = [
    pytest.param(
        _raise(httpx.ConnectTimeout("t")), FetchTimeout, True, "could not connect to", id="connect-timeout"
    ),
    pytest.param(
        _raise(httpx.ReadTimeout("t")), FetchTimeout, True, "sent nothing for 2 s", id="read-timeout"
    ),
    pytest.param(_raise(httpx.PoolTimeout("t")), FetchTimeout, True, "PoolTimeout", id="pool-timeout"),
    pytest.param(
        _raise(httpx.ConnectError("[Errno 111] refused")), FetchNetworkError, True, "refused", id="connect"
    ),
    pytest.param(_tls_failure, FetchNetworkError, True, "TLS handshake with", id="tls"),
    pytest.param(
        _raise(httpx.ReadError("reset by peer")), FetchNetworkError, True, "reset by peer", id="read"
    ),
    pytest.param(
        _raise(httpx.RemoteProtocolError("peer closed\nconnection")),
        FetchNetworkError,
        True,
        "broken HTTP answer from",
        id="protocol",
    ),
    pytest.param(_raise(httpx.ProxyError("407")), FetchNetworkError, True, "ProxyError", id="proxy"),
    pytest.param(
        _raise(httpx.DecodingError("bad gzip")), FetchError, False, "could not decode", id="decoding"
    ),
]


@pytest.mark.parametrize(("handler", "error_type", "transient", "fragment"), TRANSPORT_CASES)
async def test_transport_errors_are_translated(
    handler: Handler, error_type: type[FetchError], transient: bool, fragment: str
) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch_mock(handler)
    error = caught.value
    assert type(error) is error_type
    assert error.transient is transient
    assert isinstance(error.__cause__, httpx.HTTPError)
    message = str(error)
    assert message.startswith("fetch: ") and FEED_URL in message and fragment in message
    assert "\n" not in message


async def test_redirect_loop_is_a_permanent_error() -> None:
    def loop(request: httpx.Request) -> httpx.Response:
        hop = int(request.url.params.get("hop", "0"))
        return httpx.Response(302, headers={"Location": f"/loop?hop={hop + 1}"})

    with pytest.raises(FetchError) as caught:
        await fetch_mock(loop, url="https://feeds.example.test/loop")
    assert type(caught.value) is FetchError and not caught.value.transient
    assert str(caught.value) == "fetch: more than 5 redirects from https://feeds.example.test/loop"


async def test_declared_length_over_the_cap_is_refused_before_reading() -> None:
    pulled = []

    async def body() -> AsyncIterator[bytes]:
        for n in range(1000):
            pulled.append(n)
            yield b"x" * 1024

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(1000 * 1024)}, content=body())

    async with mock_client(handler) as client:
        with pytest.raises(FeedTooLarge, match=r"declares 1,024,000 bytes \(Content-Length\)") as caught:
            await fetch_feed(client, FEED_URL, limits=limits(max_bytes=64 * 1024))
    assert not caught.value.transient and caught.value.kind == "too_large"
    assert pulled == []


async def test_client_sends_honest_identity_and_conditional_headers() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(304, headers={"ETag": '"v2"'})

    result = await fetch_mock(handler, etag='"v1"', last_modified="Wed, 01 Jan 2025 12:00:00 GMT")
    headers = seen[0]
    assert headers["User-Agent"] == LIMITS.user_agent
    assert headers["Accept"] == ACCEPT
    assert headers["Accept-Encoding"] == "gzip"
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == "Wed, 01 Jan 2025 12:00:00 GMT"
    assert (result.not_modified, result.is_modified(), result.body, result.etag) == (
        True,
        False,
        None,
        '"v2"',
    )


async def test_no_conditional_headers_without_validators() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, content=RSS)

    with await fetch_mock(handler) as result:
        assert result.body is not None and result.body.read() == RSS
    assert "If-None-Match" not in seen[0] and "If-Modified-Since" not in seen[0]


async def test_non_ascii_validator_is_left_out() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, content=RSS)

    with await fetch_mock(handler, etag='"caf\u00e9"', last_modified="Wed, 01 Jan 2025 12:00:00 GMT"):
        pass
    assert "If-None-Match" not in seen[0] and seen[0]["If-Modified-Since"].startswith("Wed")


async def test_one_info_line_per_fetch(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jobimporter.fetch")
    with await fetch_mock(lambda request: httpx.Response(200, content=RSS)):
        pass
    with pytest.raises(FetchHTTPError):
        await fetch_mock(lambda request: httpx.Response(404))
    ok, failed = [r for r in caplog.records if r.name == "jobimporter.fetch"]
    assert ok.levelno == failed.levelno == logging.INFO
    assert ok.getMessage().startswith(f"fetch {FEED_URL} -> 200, {len(RSS)} bytes in ")
    assert "HTTP 404 Not Found" in failed.getMessage()
    assert ok.feed_url == FEED_URL  # type: ignore[attr-defined]


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="timeouts must be positive"):
        limits(total_timeout_s=0)
    with pytest.raises(ValueError, match="max_bytes"):
        limits(max_bytes=0)


# ---------------------------------------------------------------- against the local feed server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(LIMITS) as client:
        yield client


async def test_body_round_trip(feeds: FeedServer, client: httpx.AsyncClient) -> None:
    path = "/?feed=job_feed&job_categories=smm&job_types=full-time"
    feeds.route(path, body=RSS, etag='"v1"', last_modified="Wed, 01 Jan 2025 12:00:00 GMT")
    with await fetch_feed(client, feeds.url(path), limits=LIMITS) as result:
        assert result.body is not None and result.body.read() == RSS
        assert (result.status, result.bytes, result.is_modified()) == (200, len(RSS), True)
        assert result.url == result.effective_url == feeds.url(path)
        assert result.content_type == "application/rss+xml; charset=UTF-8"
        assert (result.etag, result.last_modified) == ('"v1"', "Wed, 01 Jan 2025 12:00:00 GMT")
        assert result.retry_delay() is None and not result.on_disk
    assert result.body.closed


async def test_gzip_body_is_decoded(feeds: FeedServer, client: httpx.AsyncClient) -> None:
    big = RSS * 500
    feeds.route("/gz", body=big, gzip=True)
    with await fetch_feed(client, feeds.url("/gz"), limits=LIMITS) as result:
        assert result.body is not None and result.body.read() == big
        assert result.bytes == len(big)
    assert feeds.requests_for("/gz")[0].headers["accept-encoding"] == "gzip"


async def test_headers_reach_the_server(feeds: FeedServer, client: httpx.AsyncClient) -> None:
    feeds.route("/feed", body=RSS)
    lm = "Wed, 01 Jan 2025 12:00:00 GMT"
    (await fetch_feed(client, feeds.url("/feed"), limits=LIMITS, etag='"old"', last_modified=lm)).close()
    [(at, path, headers)] = feeds.requests
    assert path == "/feed" and at <= time.monotonic()
    assert headers["user-agent"] == LIMITS.user_agent and headers["accept"] == ACCEPT
    assert (headers["if-none-match"], headers["if-modified-since"]) == ('"old"', lm)


LAST_MODIFIED = "Wed, 01 Jan 2025 12:00:00 GMT"


@pytest.mark.parametrize(
    ("etag", "last_modified"),
    [
        pytest.param('"v1"', None, id="etag"),
        pytest.param('W/"v1"', None, id="weak-etag"),
        pytest.param(None, LAST_MODIFIED, id="last-modified"),
        pytest.param('"v0", "v1"', "Tue, 01 Jan 2019 00:00:00 GMT", id="etag-wins-over-date"),
    ],
)
async def test_304_when_unchanged(
    feeds: FeedServer, client: httpx.AsyncClient, etag: str | None, last_modified: str | None
) -> None:
    feeds.route("/feed", body=RSS, etag='"v1"', last_modified=LAST_MODIFIED)
    url = feeds.url("/feed")
    result = await fetch_feed(client, url, limits=LIMITS, etag=etag, last_modified=last_modified)
    assert (result.status, result.not_modified, result.is_modified()) == (304, True, False)
    assert (result.body, result.bytes, result.etag) == (None, 0, '"v1"')
    result.close()  # harmless without a body


async def test_changed_etag_gets_the_new_body(feeds: FeedServer, client: httpx.AsyncClient) -> None:
    feeds.route("/feed", body=RSS, etag='"v2"')
    with await fetch_feed(client, feeds.url("/feed"), limits=LIMITS, etag='"v1"') as result:
        assert result.is_modified() and result.etag == '"v2"' and result.bytes == len(RSS)


@pytest.mark.parametrize(("status", "transient"), [(404, False), (410, False), (500, True)])
async def test_error_statuses(
    feeds: FeedServer, client: httpx.AsyncClient, status: int, transient: bool
) -> None:
    feeds.route("/feed", status=status, body=b"<html>error</html>", content_type="text/html")
    with pytest.raises(FetchHTTPError) as caught:
        await fetch_feed(client, feeds.url("/feed"), limits=LIMITS)
    assert (caught.value.status, caught.value.transient) == (status, transient)
    assert feeds.url("/feed") in str(caught.value)


async def test_429_then_success(feeds: FeedServer, client: httpx.AsyncClient) -> None:
    feeds.sequence("/feed", [Reply(status=429, headers={"Retry-After": "120"}), {"body": RSS}])
    with pytest.raises(FetchHTTPError) as caught:
        await fetch_feed(client, feeds.url("/feed"), limits=LIMITS)
    assert (caught.value.retry_after, caught.value.transient) == (120.0, True)
    assert str(caught.value).endswith("; retry after 120 s")
    with await fetch_feed(client, feeds.url("/feed"), limits=LIMITS) as result:
        assert result.status == 200
    assert len(feeds.requests_for("/feed")) == 2


async def test_redirect_chain_is_followed(feeds: FeedServer, client: httpx.AsyncClient) -> None:
    for hop in range(5):  # exactly max_redirects hops
        feeds.redirect(f"/r{hop}", f"/r{hop + 1}" if hop < 4 else "/final", status=301 if hop % 2 else 302)
    feeds.route("/final", body=RSS)
    with await fetch_feed(client, feeds.url("/r0"), limits=LIMITS) as result:
        assert (result.url, result.effective_url) == (feeds.url("/r0"), feeds.url("/final"))
        assert result.bytes == len(RSS)


async def test_too_many_redirects(feeds: FeedServer, client: httpx.AsyncClient) -> None:
    for hop in range(6):
        feeds.redirect(f"/r{hop}", f"/r{hop + 1}")
    feeds.route("/r6", body=RSS)
    with pytest.raises(FetchError, match=r"^fetch: more than 5 redirects from http://127\.0\.0\.1:\d+/r0$"):
        await fetch_feed(client, feeds.url("/r0"), limits=LIMITS)
    assert not feeds.requests_for("/r6")


async def test_http_error_after_redirect_names_both_urls(
    feeds: FeedServer, client: httpx.AsyncClient
) -> None:
    feeds.redirect("/old", "/gone", status=301)
    feeds.route("/gone", status=410)
    with pytest.raises(FetchHTTPError) as caught:
        await fetch_feed(client, feeds.url("/old"), limits=LIMITS)
    assert (
        str(caught.value)
        == f"fetch: HTTP 410 Gone from {feeds.url('/gone')} (redirected from {feeds.url('/old')})"
    )


async def test_slow_server_hits_the_total_timeout(feeds: FeedServer, client: httpx.AsyncClient) -> None:
    # The server sends its status line only once the test lets it, after fetch_feed has returned:
    # the client gave up on its own. Only the total timeout (0.5 s) can end it first; the read
    # timeout (2 s) would give another reason.
    answer = threading.Event()
    feeds.route("/slow", body=lambda: RSS if answer.wait(60) else b"")
    try:
        with pytest.raises(FetchTimeout, match=r"took longer than the 0\.5 s allowed") as caught:
            await fetch_feed(client, feeds.url("/slow"), limits=limits(total_timeout_s=0.5))
    finally:
        answer.set()
    assert caught.value.transient and caught.value.kind == "timeout"


async def test_trickling_body_hits_the_total_timeout(feeds: FeedServer, client: httpx.AsyncClient) -> None:
    # Each chunk arrives well within the read timeout, but the download never ends. Without the total
    # timeout the size cap would end it instead, with another reason: the 8 MiB take the server's
    # pauses alone ~25 s, so the 0.6 s limit comes first however loaded the machine is.
    chunk = b"<item/>" * 2400
    assert LIMITS.max_bytes / len(chunk) * 0.05 > 20
    feeds.route("/drip", stream_chunks=lambda: itertools.repeat(chunk), chunk_delay_s=0.05)
    with pytest.raises(FetchTimeout, match=r"took longer than the 0\.6 s allowed"):
        await fetch_feed(client, feeds.url("/drip"), limits=limits(total_timeout_s=0.6))


async def test_silent_server_hits_the_read_timeout(feeds: FeedServer) -> None:
    feeds.route("/stall", stream_chunks=lambda: [b"<rss>", b"</rss>"], chunk_delay_s=1.0)
    async with make_client(limits(read_timeout_s=0.3)) as client:
        with pytest.raises(FetchTimeout, match=r"sent nothing for 0\.3 s \(read timeout\)"):
            await fetch_feed(client, feeds.url("/stall"), limits=limits(read_timeout_s=0.3))


def _counting(chunk: bytes, produced: list[int]) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        while True:  # endless: the test only ends if the client stops reading
            produced[0] += len(chunk)
            yield chunk

    return chunks


@pytest.mark.parametrize(
    "declared", [pytest.param(10**10, id="content-length"), pytest.param(None, id="chunked")]
)
async def test_oversized_body_is_cut_off(
    feeds: FeedServer, client: httpx.AsyncClient, declared: int | None
) -> None:
    produced = [0]
    feeds.route("/huge", stream_chunks=_counting(b"x" * 65536, produced), content_length=declared)
    with pytest.raises(FeedTooLarge, match=r"1,048,576-byte cap") as caught:
        await fetch_feed(client, feeds.url("/huge"), limits=limits(max_bytes=1024 * 1024))
    assert not caught.value.transient
    assert produced[0] < 64 * 1024 * 1024  # socket buffers hold some, but nowhere near everything


async def test_gzip_bomb_is_cut_off_on_decoded_bytes(feeds: FeedServer, client: httpx.AsyncClient) -> None:
    produced = [0]
    feeds.route("/bomb", stream_chunks=_counting(bytes(1024 * 1024), produced), gzip=True)
    with pytest.raises(FeedTooLarge, match="sent more than the 4,194,304-byte cap"):
        await fetch_feed(client, feeds.url("/bomb"), limits=limits(max_bytes=4 * 1024 * 1024))
    assert 4 * 1024 * 1024 < produced[0] < 512 * 1024 * 1024


def _fd_target(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


async def test_big_body_spools_to_disk_and_is_discarded(
    feeds: FeedServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    big = b"<item>job</item>" * (SPOOL_MEMORY_BYTES // 8)  # 2 MB
    feeds.route("/big", body=big)
    result = await fetch_feed(client, feeds.url("/big"), limits=LIMITS, spool_dir=tmp_path)
    assert result.on_disk and result.bytes == len(big) and result.body is not None
    fd = result.body.fileno()
    target = _fd_target(fd)
    if target is not None:  # Linux: the unlinked file lives in spool_dir
        assert target.startswith(str(tmp_path))
    assert result.body.read() == big
    with result:
        pass
    assert result.body.closed and _fd_target(fd) != target
    assert _entries(tmp_path) == []


async def test_small_body_stays_in_memory(
    feeds: FeedServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    feeds.route("/small", body=RSS)
    with await fetch_feed(client, feeds.url("/small"), limits=LIMITS, spool_dir=tmp_path) as result:
        assert not result.on_disk
    assert _entries(tmp_path) == []


def _entries(directory: Path) -> list[str]:
    return os.listdir(directory)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/feed"
    with pytest.raises(FetchNetworkError, match=rf"^fetch: could not connect to {url}: ") as caught:
        await fetch_feed(client, url, limits=LIMITS)
    assert caught.value.transient and caught.value.kind == "connection"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/feed.xml", "http://[::1/feed", "feeds.example.test/rss"])
async def test_unusable_url_is_permanent(client: httpx.AsyncClient, url: str) -> None:
    with pytest.raises(FetchError, match=r"^fetch: cannot request ") as caught:
        await fetch_feed(client, url, limits=LIMITS)
    assert not caught.value.transient


def test_server_is_usable_from_another_process(feeds: FeedServer) -> None:
    feeds.route("/proc", body=RSS)
    script = "import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())"
    done = subprocess.run([sys.executable, "-c", script, feeds.url("/proc")], capture_output=True, check=True)
    assert done.stdout == RSS
    assert feeds.requests_for("/proc")[0].headers["user-agent"].startswith("Python-urllib")


def test_server_is_usable_from_sync_code(feeds: FeedServer) -> None:
    feeds.route("/sync", body=gzip.compress(RSS), headers={"Content-Encoding": "gzip"})
    response = httpx.get(feeds.url("/sync"))
    assert response.content == RSS
    assert httpx.get(feeds.url("/nowhere")).status_code == 404
