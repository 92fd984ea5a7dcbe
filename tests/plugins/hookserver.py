"""A real local HTTP server that receives webhook deliveries, for the tests: one per session on
127.0.0.1 in a background thread, like ``plugins.feedserver``.

It records every POST (path, headers, body, time) and answers each path from a list of statuses
(the last one repeats). ``hold()`` makes it keep every request waiting without an answer until
``release()``: an endpoint that is up but dead, as far as the sender can tell.

Fixture ``hooks`` (function): the server with its answers and its log reset.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import pytest


class ReceivedHook(NamedTuple):
    at: float  # time.monotonic()
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class HookServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._lock = threading.Lock()
        self._answers: dict[str, list[int]] = {}
        self._served: dict[str, int] = {}
        self._received: list[ReceivedHook] = []
        self._released = threading.Event()
        self._released.set()
        self.arrived = threading.Condition(self._lock)
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.hooks = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self._httpd.server_address[1]}{path}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()

    def answer(self, path: str, statuses: Sequence[int]) -> None:
        """Answer successive POSTs to ``path`` with ``statuses``, repeating the last (default 200)."""
        with self._lock:
            self._answers[path] = list(statuses)
            self._served[path] = 0

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def reset(self) -> None:
        self.release()
        with self._lock:
            self._answers.clear()
            self._served.clear()
            self._received.clear()

    def received(self, path: str | None = None) -> list[ReceivedHook]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 60.0) -> list[ReceivedHook]:
        """Block until ``count`` requests (to ``path``) have arrived; they are returned."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len([r for r in self._received if path is None or r.path == path]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"hook server: {count} requests to {path} did not arrive")
                self.arrived.wait(left)
            return [r for r in self._received if path is None or r.path == path]

    def _receive(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.arrived:
            self._received.append(ReceivedHook(time.monotonic(), path, headers, body))
            self.arrived.notify_all()
            statuses = self._answers.get(path, [200])
            served = self._served.get(path, 0)
            self._served[path] = served + 1
            status = statuses[min(served, len(statuses) - 1)]
        self._released.wait()
        return status


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hooks: HookServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        status = self.server.hooks._receive(self.path, headers, body)
        reply = b"ok" if status < 300 else b"not today"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        except ConnectionError:  # the sender gave up waiting (its timeout)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the log of received requests is the record."""


@pytest.fixture(scope="session")
def hook_server() -> Iterator[HookServer]:
    server = HookServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hooks(hook_server: HookServer) -> Iterator[HookServer]:
    hook_server.reset()
    yield hook_server
    hook_server.release()
