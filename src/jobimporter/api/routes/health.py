"""``/healthz`` (the process is up), ``/readyz`` (Redis and the database answer) and ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from jobimporter.api.deps import StateDep
from jobimporter.api.schemas import Status
from jobimporter.errors import ImporterError

router = APIRouter(tags=["health"])

READY_TIMEOUT_S = 5.0


@router.get("/healthz", response_model=Status)
async def healthz() -> Status:
    return Status(status="ok")


@router.get("/readyz", responses={503: {"description": "Redis or the database does not answer"}})
async def readyz(state: StateDep) -> JSONResponse:
    """``{"redis": "ok", "database": "ok"}``, or 503 with the failing part's reason."""
    ctx = state.runtime.ctx
    checks = {"redis": await _check(ctx.events.ping()), "database": await _check(ctx.store.ping())}
    ready = all(answer == "ok" for answer in checks.values())
    return JSONResponse(
        checks, status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE
    )


async def _check(probe: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT_S:g} s"
    except ImporterError as exc:
        return str(exc)
    return "ok"


@router.get("/metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    """Prometheus text format, collected from the store and the queues at scrape time."""
    ctx = state.runtime.ctx
    body = await state.metrics.render(ctx.store, ctx.queues)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
