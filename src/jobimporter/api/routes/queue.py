"""``/api/queue``: BullMQ jobs by state for each queue."""

from __future__ import annotations

from fastapi import APIRouter

from jobimporter.api.deps import CtxDep
from jobimporter.api.schemas import QueueOut

router = APIRouter(prefix="/api/queue", tags=["queue"])


@router.get("", response_model=QueueOut)
async def queue_counts(ctx: CtxDep) -> QueueOut:
    return QueueOut(queues=await ctx.queues.counts())
