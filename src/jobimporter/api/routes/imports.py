"""``/api/imports``: per-feed import entries across runs, filtered and paged, and one with its failures."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter

from jobimporter.api.deps import PagingDep, StoreDep
from jobimporter.api.schemas import EntryOut, ListPage
from jobimporter.models import EntryStatus, Trigger
from jobimporter.store.base import EntryQuery

router = APIRouter(prefix="/api/imports", tags=["imports"])


@router.get("", response_model=ListPage[EntryOut])
async def list_imports(
    store: StoreDep,
    paging: PagingDep,
    run_id: str | None = None,
    feed_id: str | None = None,
    status: EntryStatus | None = None,
    trigger: Trigger | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sort: Literal["started_at", "-started_at"] = "-started_at",
) -> ListPage[EntryOut]:
    """Entries, by their run's start (newest first by default); ``since``/``until`` on the run's start."""
    query = EntryQuery(run_id, feed_id, status, trigger, since, until, newest_first=sort.startswith("-"))
    found = await store.list_entries(limit=paging.page_size, offset=paging.offset, query=query)
    return ListPage[EntryOut](
        items=[EntryOut(**dict(h["entry"]), trigger=h["trigger"]) for h in found],
        total=await store.count_entries(query),
        page=paging.page,
        page_size=paging.page_size,
    )


@router.get("/{entry_id}", response_model=EntryOut)
async def get_import(entry_id: str, store: StoreDep) -> EntryOut:
    entry = await store.get_entry(entry_id)
    run = await store.get_run(entry.run_id)
    return EntryOut(**dict(entry), trigger=run.trigger)
