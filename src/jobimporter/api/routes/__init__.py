"""One router per resource; ``ROUTERS`` is the list ``create_app`` includes."""

from __future__ import annotations

from fastapi import APIRouter

from jobimporter.api.routes import (
    changes,
    events,
    failed,
    feeds,
    health,
    imports,
    jobs,
    queue,
    runs,
    stats,
    webhooks,
)

ROUTERS: tuple[APIRouter, ...] = (
    runs.router,
    imports.router,
    feeds.router,
    jobs.router,
    changes.router,
    webhooks.router,
    queue.router,
    failed.router,
    stats.router,
    events.router,
    health.router,
)
