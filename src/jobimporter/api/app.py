"""``create_app``: the FastAPI application, its lifespan, the error mapping and the dashboard files.

The lifespan builds a ``Runtime(settings, workers=False)`` unless one is handed in (``jobimporter run``
hands in its own, with workers and the schedule, and closes it itself). Errors are mapped in one
place: ``NotFound`` → 404, ``Conflict`` → 409, ``ConfigError`` and invalid input → 422, ``StoreError``,
``QueueError`` and Redis failures → 503; the answer is ``{"detail": "<message>"}``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from redis.exceptions import RedisError

from jobimporter import __version__
from jobimporter.api.deps import UNPROCESSABLE
from jobimporter.api.routes import ROUTERS
from jobimporter.api.state import ApiState, LiveSettings
from jobimporter.config import Settings
from jobimporter.errors import ConfigError, Conflict, ImporterError, NotFound, QueueError, StoreError
from jobimporter.runtime import Runtime
from jobimporter.web import INDEX_HTML, STATIC_DIR

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, runtime: Runtime | None = None, *, live: LiveSettings | None = None
) -> FastAPI:
    """The admin API over ``runtime`` (built and closed by the app when not given)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            rt = runtime
            if rt is None:
                rt = await stack.enter_async_context(Runtime(settings, workers=False))
            app.state.api = ApiState.build(settings, rt, live or LiveSettings())
            yield

    app = FastAPI(
        title="jobimporter admin API",
        version=__version__,
        summary="Import history, manual runs, feeds, jobs, queue, dead letters, stats and live events.",
        lifespan=lifespan,
    )
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(ImporterError, _importer_error)
    app.add_exception_handler(RedisError, _importer_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    _mount_dashboard(app)
    return app


def begin_shutdown(app: FastAPI) -> None:
    """Tell long-lived responses (the SSE streams) to end, before the server stops."""
    state = getattr(app.state, "api", None)
    if isinstance(state, ApiState):
        state.stopping.set()


def _status_of(exc: Exception) -> int:
    if isinstance(exc, NotFound):
        return status.HTTP_404_NOT_FOUND
    if isinstance(exc, Conflict):
        return status.HTTP_409_CONFLICT
    if isinstance(exc, ConfigError):
        return UNPROCESSABLE
    if isinstance(exc, (StoreError, QueueError, RedisError)):
        return status.HTTP_503_SERVICE_UNAVAILABLE
    return status.HTTP_500_INTERNAL_SERVER_ERROR


async def _importer_error(request: Request, exc: Exception) -> JSONResponse:
    code = _status_of(exc)
    message = str(exc) if isinstance(exc, ImporterError) else f"queue: redis failed: {exc}"
    if code >= 500:
        log.warning("api: %s %s → %d: %s", request.method, request.url.path, code, message)
    return JSONResponse({"detail": message}, status_code=code)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with one readable line in ``detail`` (``query.page_size: …; body.url: …``) and the list."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    message = "; ".join(f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg')}" for e in errors)
    return JSONResponse(
        {"detail": message or "invalid request", "errors": _plain(errors)},
        status_code=UNPROCESSABLE,
    )


def _plain(errors: list[dict[str, object]]) -> list[dict[str, object]]:
    """The errors without pydantic's ``ctx``/``input``, which may hold values JSON cannot encode."""
    return [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]


def _mount_dashboard(app: FastAPI) -> None:
    """``/`` and ``/static``: the dashboard's own files (no CDN), when they are installed."""
    if not INDEX_HTML.is_file():
        return
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(INDEX_HTML)
