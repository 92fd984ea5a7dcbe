"""``/api/feeds``: feeds with their health; add, edit (enable, priority, URL…), remove; preview one
before it is saved."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import ValidationError

from jobimporter.api.deps import AdminDep, CtxDep, PagingDep, StoreDep
from jobimporter.api.schemas import FeedCreate, FeedOut, FeedUpdate, ListPage
from jobimporter.errors import ConfigError
from jobimporter.models import Feed, FeedSource
from jobimporter.preview import Preview, preview_feed
from jobimporter.store.base import JobStore

router = APIRouter(prefix="/api/feeds", tags=["feeds"])


async def _with_health(store: JobStore, feed: Feed) -> FeedOut:
    health = await store.feed_health([feed.id])
    return FeedOut.of(feed, health.get(feed.id))


@router.get("", response_model=ListPage[FeedOut])
async def list_feeds(store: StoreDep, paging: PagingDep) -> ListPage[FeedOut]:
    """Every feed, by name, with its health over its newest 20 finished imports."""
    feeds = await store.list_feeds()
    page = feeds[paging.offset : paging.offset + paging.page_size]
    health = await store.feed_health([feed.id for feed in page])
    return ListPage[FeedOut](
        items=[FeedOut.of(feed, health.get(feed.id)) for feed in page],
        total=len(feeds),
        page=paging.page,
        page_size=paging.page_size,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=FeedOut)
async def add_feed(body: FeedCreate, store: StoreDep, _: AdminDep) -> FeedOut:
    """Add a feed; 409 if a feed has that URL."""
    feed = await store.add_feed(FeedSource(**body.model_dump()))
    return await _with_health(store, feed)


@router.post("/preview", response_model=Preview)
async def preview(
    body: FeedCreate, ctx: CtxDep, _: AdminDep, limit: Annotated[int, Query(ge=1, le=50)] = 5
) -> Preview:
    """Fetch the feed ``body`` describes and show what importing it would store; nothing is saved.
    A feed that cannot be read is still a 200, with the reason in ``error``."""
    return await preview_feed(FeedSource(**body.model_dump()), ctx.http, ctx.limits, limit=limit)


@router.get("/{feed_id}", response_model=FeedOut)
async def get_feed(feed_id: str, store: StoreDep) -> FeedOut:
    return await _with_health(store, await store.get_feed(feed_id))


@router.patch("/{feed_id}", response_model=FeedOut)
async def update_feed(feed_id: str, body: FeedUpdate, store: StoreDep, _: AdminDep) -> FeedOut:
    """Change any of name, url, format, enabled, priority, cron, profile, mapping, max_pages; 409 if
    another feed has the new URL, 422 if the feed would not be valid (format 'mapped', no mapping)."""
    changes = body.changes()
    current = await store.get_feed(feed_id)
    try:  # the fields are valid one by one (FeedUpdate); check them together before anything is written
        FeedSource.model_validate(current.model_dump(include=set(FeedSource.model_fields)) | dict(changes))
    except ValidationError as exc:
        raise ConfigError(f"feed: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    return await _with_health(store, await store.update_feed(feed_id, changes))


@router.delete("/{feed_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_feed(feed_id: str, store: StoreDep, _: AdminDep) -> Response:
    """Remove a feed; its import history stays."""
    await store.delete_feed(feed_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
