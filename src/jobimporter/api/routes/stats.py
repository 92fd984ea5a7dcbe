"""``/api/stats``: series for the dashboard's charts, per run and per feed over the newest runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from jobimporter.api.deps import StoreDep
from jobimporter.store.base import StatsSeries

router = APIRouter(prefix="/api/stats", tags=["stats"])


@router.get("", response_model=StatsSeries)
async def stats(store: StoreDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> StatsSeries:
    """The newest ``limit`` runs, oldest first, and each feed's points over them (the store's series
    as it is: ``runs`` oldest to newest, ``feeds`` by name with a point per run each was in)."""
    return await store.stats(limit=limit)
