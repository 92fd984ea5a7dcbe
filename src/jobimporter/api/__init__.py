"""The admin API (FastAPI): import history, manual runs, feeds, jobs, queue, dead letters, stats, live
events (SSE), health and metrics, plus the dashboard's static files. ``create_app`` builds it."""

from __future__ import annotations

from jobimporter.api.app import create_app

__all__ = ["create_app"]
