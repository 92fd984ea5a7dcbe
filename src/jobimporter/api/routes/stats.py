"""``/api/stats``: series for the dashboard's charts, per run and per feed over the newest runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from jobimporter.api.deps import StoreDep
from jobimporter.api.schemas import StatsOut

router = APIRouter(prefix="/api/stats", tags=["stats"])


@router.get("", response_model=StatsOut)
async def stats(store: StoreDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> StatsOut:
    """The newest ``limit`` runs, oldest first, and each feed's points over them."""
    return StatsOut.model_validate(await store.stats(limit=limit))
