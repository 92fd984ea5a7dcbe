"""One router per resource; ``ROUTERS`` is the list ``create_app`` includes."""

from __future__ import annotations

from fastapi import APIRouter

from jobimporter.api.routes import events, failed, feeds, health, imports, jobs, queue, runs, stats

ROUTERS: tuple[APIRouter, ...] = (
    runs.router,
    imports.router,
    feeds.router,
    jobs.router,
    queue.router,
    failed.router,
    stats.router,
    events.router,
    health.router,
)
