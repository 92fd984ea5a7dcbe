"""A real local HTTP feed server for the tests: one per session, on 127.0.0.1 (and a second one on
127.0.0.2, another host as far as politeness goes), in a background thread.

Tests register routes (exact path including the query string) and read back what the server
received. It is a plain ``http.server.ThreadingHTTPServer`` on a real socket, so sync tests, async
tests and worker subprocesses can all fetch from it; only the test process registers routes.

Fixtures:

- ``feed_server`` (session): the running ``FeedServer``.
- ``feeds`` (function): the same server with routes and request log reset first.
- ``other_feed_server`` / ``other_host_feeds``: the same pair on 127.0.0.2.

Example::

    def test_rss(feeds: FeedServer) -> None:
        feeds.route("/?feed=job_feed", body=RSS, etag='"v1"')
        feeds.sequence("/flaky", [Reply(status=500), Reply(body=RSS)])
        feeds.redirect("/old", "/?feed=job_feed")
        ... fetch feeds.url("/old") ...
        assert feeds.requests_for("/?feed=job_feed")[0].headers["user-agent"].startswith("jobimporter")
"""

from __future__ import annotations

import email.utils
import gzip as gzip_codec
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import pytest

RSS_CONTENT_TYPE = "application/rss+xml; charset=UTF-8"

ChunkFactory = Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class Reply:
    """One canned answer. ``stream_chunks`` (a factory, called per request) wins over ``body``."""

    body: bytes | Callable[[], bytes] = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = RSS_CONTENT_TYPE
    delay_s: float = 0.0  # before the status line: a slow server
    etag: str | None = None  # sent with 2xx; a matching If-None-Match gets 304
    last_modified: str | None = None  # sent with 2xx; If-Modified-Since at or after it gets 304
    gzip: bool = False  # Content-Encoding: gzip
    stream_chunks: ChunkFactory | None = None  # body generated on the fly, chunk by chunk
    chunk_delay_s: float = 0.0  # pause before each streamed chunk
    content_length: int | None = None  # declared for a streamed body; None means chunked encoding


class RecordedRequest(NamedTuple):
    """What the server received; ``headers`` has lower-case names."""

    at: float  # time.monotonic()
    path: str
    headers: dict[str, str]


_NOT_FOUND = Reply(status=404, body=b"no route\n", content_type="text/plain")


class _Route:
    """Successive replies for one path; the last one repeats."""

    def __init__(self, replies: Sequence[Reply]) -> None:
        self._replies = list(replies)
        self._served = 0

    def next(self) -> Reply:
        reply = self._replies[min(self._served, len(self._replies) - 1)]
        self._served += 1
        return reply


class FeedServer:
    """The server and its routing table; thread-safe, as handlers run in their own threads."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._lock = threading.Lock()
        self._routes: dict[str, _Route] = {}
        self._first: Reply | None = None
        self._requests: list[RecordedRequest] = []
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.feeds = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """Absolute URL of ``path`` (which starts with ``/`` and may carry a query string)."""
        return self.base_url + path

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # ------------------------------------------------------------ routes

    def route(self, path: str, **reply: Any) -> None:
        """Register or replace ``path`` with one reply; keywords are ``Reply`` fields."""
        self.sequence(path, [Reply(**reply)])

    def sequence(self, path: str, responses: Sequence[Reply | Mapping[str, Any]]) -> None:
        """Answer successive requests with ``responses`` in order, repeating the last one."""
        if not responses:
            raise ValueError("sequence needs at least one response")
        replies = [r if isinstance(r, Reply) else Reply(**r) for r in responses]
        with self._lock:
            self._routes[path] = _Route(replies)

    def first(self, reply: Reply | Mapping[str, Any]) -> None:
        """Answer the next request, whatever its path, with ``reply``; routes answer the rest."""
        with self._lock:
            self._first = reply if isinstance(reply, Reply) else Reply(**reply)

    def redirect(self, path: str, to: str, *, status: int = 302) -> None:
        """Answer ``path`` with a redirect to ``to`` (a path on this server or an absolute URL)."""
        location = to if "://" in to else self.url(to)
        self.route(path, status=status, headers={"Location": location}, content_type=None)

    # ------------------------------------------------------------ request log

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received since the last ``clear()``/``reset()``."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def clear(self) -> None:
        """Forget the request log, keep the routes."""
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        """Forget routes and the request log."""
        with self._lock:
            self._routes.clear()
            self._first = None
            self._requests.clear()

    def _receive(self, path: str, headers: dict[str, str]) -> Reply:
        with self._lock:
            self._requests.append(RecordedRequest(time.monotonic(), path, headers))
            if self._first is not None:
                first, self._first = self._first, None
                return first
            route = self._routes.get(path)
            return route.next() if route else _NOT_FOUND


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping in a slow reply must not hold up shutdown
    request_queue_size = 128
    feeds: FeedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up between requests (timeouts, size caps) is expected, not news."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like real feed servers
    server: _Server
    timeout = 30  # idle keep-alive connections eventually free their thread

    def do_GET(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.feeds._receive(self.path, headers)
        try:
            _answer(self, reply, headers)
        except ConnectionError:
            # The client gave up (timeout or size cap): exactly what many tests provoke.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""


def _answer(handler: _Handler, reply: Reply, headers: Mapping[str, str]) -> None:
    if reply.delay_s:
        time.sleep(reply.delay_s)
    if 200 <= reply.status < 300 and _not_modified(reply, headers):
        _send_head(handler, 304, _validators(reply))
    elif reply.stream_chunks is not None:
        _send_stream(handler, reply)
    else:
        _send_body(handler, reply)


def _send_head(handler: _Handler, status: int, headers: Mapping[str, str]) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()


def _base_headers(reply: Reply) -> dict[str, str]:
    headers = _validators(reply)
    if reply.content_type and reply.status not in (204, 304):
        headers["Content-Type"] = reply.content_type
    if reply.gzip:
        headers["Content-Encoding"] = "gzip"
    headers.update(reply.headers)
    return headers


def _validators(reply: Reply) -> dict[str, str]:
    headers: dict[str, str] = {}
    if reply.etag:
        headers["ETag"] = reply.etag
    if reply.last_modified:
        headers["Last-Modified"] = reply.last_modified
    return headers


def _send_body(handler: _Handler, reply: Reply) -> None:
    body = reply.body() if callable(reply.body) else reply.body
    if reply.gzip:
        body = gzip_codec.compress(body)
    headers = _base_headers(reply)
    headers.setdefault("Content-Length", str(len(body)))
    _send_head(handler, reply.status, headers)
    handler.wfile.write(body)


def _send_stream(handler: _Handler, reply: Reply) -> None:
    """Write chunks as they are produced, so a huge body never sits in memory."""
    assert reply.stream_chunks is not None
    headers = _base_headers(reply)
    chunked = reply.content_length is None
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(reply.content_length)
        headers["Connection"] = "close"  # the declared length may be a lie
    _send_head(handler, reply.status, headers)
    for data in _encoded(reply.stream_chunks(), reply.gzip):
        if reply.chunk_delay_s:
            time.sleep(reply.chunk_delay_s)
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
    if chunked:
        handler.wfile.write(b"0\r\n\r\n")


def _encoded(chunks: Iterable[bytes], gzip: bool) -> Iterator[bytes]:
    """The chunks, gzip-compressed on the fly when asked; empty pieces dropped (0 ends chunking)."""
    compressor = zlib.compressobj(wbits=31) if gzip else None
    for chunk in chunks:
        data = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH) if compressor else chunk
        if data:
            yield data
    if compressor:
        yield compressor.flush()


def _not_modified(reply: Reply, headers: Mapping[str, str]) -> bool:
    if_none_match = headers.get("if-none-match")
    # RFC 9110 13.1.3: when If-None-Match is present, If-Modified-Since is ignored.
    if if_none_match is not None:
        return bool(reply.etag) and _etag_matches(if_none_match, reply.etag or "")
    since = _http_date(headers.get("if-modified-since"))
    modified = _http_date(reply.last_modified)
    return since is not None and modified is not None and modified <= since


def _etag_matches(header: str, etag: str) -> bool:
    def weak(tag: str) -> str:
        return tag.strip().removeprefix("W/")

    tags = {weak(tag) for tag in header.split(",")}
    return "*" in tags or weak(etag) in tags


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


@pytest.fixture(scope="session")
def feed_server() -> Iterator[FeedServer]:
    """The session's feed server, started once."""
    server = FeedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def feeds(feed_server: FeedServer) -> FeedServer:
    """The feed server with no routes and an empty request log."""
    feed_server.reset()
    return feed_server


@pytest.fixture(scope="session")
def other_feed_server() -> Iterator[FeedServer]:
    """A second feed server on another host name (127.0.0.2), so politeness sees two hosts."""
    server = FeedServer(host="127.0.0.2")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def other_host_feeds(other_feed_server: FeedServer) -> FeedServer:
    other_feed_server.reset()
    return other_feed_server
