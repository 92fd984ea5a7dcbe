"""``/api/changes``: the change log, read by cursor (what a job board syncs from)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from jobimporter.api.deps import StoreDep
from jobimporter.api.schemas import ChangesPage

router = APIRouter(prefix="/api/changes", tags=["changes"])


@router.get("", response_model=ChangesPage)
async def list_changes(
    store: StoreDep,
    after: Annotated[int, Query(ge=0, description="The last cursor you handled (0: from the start).")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Changes at most.")] = 100,
) -> ChangesPage:
    """The changes after ``after``, oldest first. Keep ``next`` and pass it as ``after`` next time: a
    reader that does so misses nothing and gets nothing twice, whatever runs meanwhile."""
    items = await store.list_changes(after=after, limit=limit)
    return ChangesPage(items=items, next=items[-1].cursor if items else after, more=len(items) == limit)
