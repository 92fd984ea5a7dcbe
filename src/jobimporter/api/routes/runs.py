"""``/api/runs``: import runs with their entries, filtered and paged; starting a run."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, status

from jobimporter.api.deps import UNPROCESSABLE, AdminDep, CtxDep, PagingDep, StoreDep
from jobimporter.api.schemas import ListPage, RunAccepted, RunCreate, RunOut
from jobimporter.errors import NotFound
from jobimporter.models import Feed, RunStatus, Trigger
from jobimporter.runs import start_run
from jobimporter.store.base import JobStore, RunQuery

router = APIRouter(prefix="/api/runs", tags=["runs"])

RunSort = Literal["started_at", "-started_at"]


@router.get("", response_model=ListPage[RunOut])
async def list_runs(
    store: StoreDep,
    paging: PagingDep,
    trigger: Trigger | None = None,
    status: RunStatus | None = None,
    feed_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sort: RunSort = "-started_at",
) -> ListPage[RunOut]:
    """Runs, newest first by default; ``since <= started_at < until``; ``feed_id``: runs of that feed."""
    query = RunQuery(trigger, status, feed_id, since, until, newest_first=sort.startswith("-"))
    runs = await store.list_runs(limit=paging.page_size, offset=paging.offset, query=query)
    return ListPage[RunOut](
        items=[RunOut.of(run) for run in runs],
        total=await store.count_runs(query),
        page=paging.page,
        page_size=paging.page_size,
    )


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted)
async def create_run(
    ctx: CtxDep, _: AdminDep, body: Annotated[RunCreate | None, Body()] = None
) -> RunAccepted:
    """Start a manual run of the chosen feeds (default: every enabled one); it proceeds through the queue."""
    feeds = await _chosen_feeds(ctx.store, body.feed_ids if body else None)
    run = await start_run(ctx, feeds, Trigger.MANUAL)
    return RunAccepted(run_id=run.run_id)


async def _chosen_feeds(store: JobStore, feed_ids: list[str] | None) -> list[Feed]:
    if feed_ids is None:
        feeds = await store.list_feeds(enabled_only=True)
        if not feeds:
            raise HTTPException(UNPROCESSABLE, "no enabled feeds to import")
        return feeds
    chosen, unknown = [], []
    for feed_id in dict.fromkeys(feed_ids):  # each once, in the order given
        try:
            chosen.append(await store.get_feed(feed_id))
        except NotFound:
            unknown.append(feed_id)
    if unknown:
        raise HTTPException(UNPROCESSABLE, f"unknown feed ids: {', '.join(unknown)}")
    return chosen


@router.get("/{run_id}", response_model=RunOut)
async def get_run(run_id: str, store: StoreDep) -> RunOut:
    return RunOut.of(await store.get_run(run_id))
