"""Serving the API with uvicorn as a task beside others (the workers of ``jobimporter run``).

The socket is bound here first, so a busy port is a clear ``ConfigError`` instead of uvicorn exiting
the process; signals stay with the caller (uvicorn's own handlers are not installed). Stopping ends
the SSE streams first, then lets requests in flight finish for a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from jobimporter.api.app import begin_shutdown
from jobimporter.errors import ConfigError

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 3


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the caller handles SIGINT/SIGTERM and calls ApiServer.stop()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one); ``ConfigError`` if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"api: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


class ApiServer:
    """``app`` served on ``sock`` until ``stop()``."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        self.app = app
        self.sock = sock
        config = uvicorn.Config(
            app,
            log_config=None,  # keep the process's logging as it is
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            lifespan="on",
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self) -> None:
        """Start serving; returns once the app is up (its lifespan started), raises if it failed."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]), name="api-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # lifespan failure: raise it here
                raise ConfigError("api: the server stopped during start-up")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._task is None:
            return
        begin_shutdown(self.app)
        self._server.should_exit = True
        try:
            await self._task
        finally:
            self._task = None
            self.sock.close()
