"""Feed queries of the SQL store: syncing configured sources by URL, the HTTP validators, and the
admin API's add / edit / delete (a feed URL is unique: a clash is ``Conflict``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from jobimporter.errors import Conflict, NotFound
from jobimporter.mapping import FieldMapping
from jobimporter.models import Feed, FeedSource, new_id
from jobimporter.store.base import FeedChanges
from jobimporter.store.schema import feeds
from jobimporter.store.sql_engine import Capabilities

_SYNCED = (
    "name",
    "format",
    "enabled",
    "priority",
    "cron",
    "profile",
    "mapping",
    "max_pages",
)  # what the sources file decides; id and validators stay


_NOT_IN_FEED = frozenset({"created_at", "resumed_at"})  # the store's own bookkeeping


def _feed(row: Row[Any]) -> Feed:
    return Feed.model_validate({k: v for k, v in row._mapping.items() if k not in _NOT_IN_FEED})


def _source_row(source: FeedSource, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("feed"),
        "name": source.name,
        "url": source.url,
        "format": source.format.value,
        "enabled": source.enabled,
        "priority": source.priority.value,
        "cron": source.cron,
        "profile": source.profile,
        "mapping": source.mapping.model_dump(mode="json", exclude_defaults=True) if source.mapping else None,
        "max_pages": source.max_pages,
        "created_at": now,
    }


async def sync_feeds(
    conn: AsyncConnection, caps: Capabilities, sources: Sequence[FeedSource], now: datetime
) -> list[Feed]:
    if not sources:
        return []
    # One row per URL (the last definition wins), in URL order so concurrent syncs lock alike.
    by_url = {source.url: source for source in sources}
    rows = [_source_row(by_url[url], now) for url in sorted(by_url)]
    stmt = caps.insert(feeds)
    synced: dict[str, Any] = {name: stmt.excluded[name] for name in _SYNCED}
    # A feed its health paused stays paused until someone resumes it, whatever the file says.
    synced["enabled"] = sa.case((feeds.c.paused_at.isnot(None), feeds.c.enabled), else_=stmt.excluded.enabled)
    stmt = stmt.on_conflict_do_update(index_elements=[feeds.c.url], set_=synced)
    await conn.execute(stmt, rows)
    stored = await conn.execute(sa.select(feeds).where(feeds.c.url.in_(list(by_url))))
    by_stored_url = {row.url: _feed(row) for row in stored}
    return [by_stored_url[source.url] for source in sources]


async def list_feeds(conn: AsyncConnection, *, enabled_only: bool) -> list[Feed]:
    query = sa.select(feeds).order_by(feeds.c.name, feeds.c.url)
    if enabled_only:
        query = query.where(feeds.c.enabled.is_(True))
    return [_feed(row) for row in await conn.execute(query)]


async def get_feed(conn: AsyncConnection, feed_id: str) -> Feed:
    row = (await conn.execute(sa.select(feeds).where(feeds.c.id == feed_id))).first()
    if row is None:
        raise NotFound("feed", feed_id)
    return _feed(row)


async def save_feed_validators(
    conn: AsyncConnection, feed_id: str, etag: str | None, last_modified: str | None
) -> None:
    stmt = (
        sa.update(feeds)
        .where(feeds.c.id == feed_id)
        .values(etag=etag, last_modified=last_modified)
        .returning(feeds.c.id)
    )
    if (await conn.execute(stmt)).first() is None:
        raise NotFound("feed", feed_id)


def _url_taken(url: str) -> Conflict:
    return Conflict(f"store: a feed with the URL {url!r} already exists")


async def add_feed(conn: AsyncConnection, caps: Capabilities, source: FeedSource, now: datetime) -> Feed:
    stmt = (
        caps.insert(feeds)
        .values(**_source_row(source, now))
        .on_conflict_do_nothing(index_elements=[feeds.c.url])
        .returning(feeds.c.id)
    )
    feed_id = (await conn.execute(stmt)).scalar_one_or_none()
    if feed_id is None:
        raise _url_taken(source.url)
    return await get_feed(conn, feed_id)


async def update_feed(conn: AsyncConnection, feed_id: str, changes: FeedChanges, now: datetime) -> Feed:
    current = await get_feed(conn, feed_id)
    values: dict[str, Any] = {k: getattr(v, "value", v) for k, v in changes.items()}
    if values.get("enabled") is True and not current.enabled:
        # Resumed: no longer paused, and its permanent failures count afresh.
        values.update(paused_at=None, paused_reason=None, resumed_at=now)
    if isinstance(values.get("mapping"), FieldMapping):
        values["mapping"] = values["mapping"].model_dump(mode="json", exclude_defaults=True)
    if "url" in values and values["url"] != current.url:
        await _refuse_taken_url(conn, values["url"], feed_id)
        values.update(etag=None, last_modified=None)  # they belonged to the old URL
    if not values:
        return current
    try:
        await conn.execute(sa.update(feeds).where(feeds.c.id == feed_id).values(**values))
    except sa_exc.IntegrityError as exc:  # another writer took the URL since we looked
        raise _url_taken(str(values.get("url"))) from exc
    return await get_feed(conn, feed_id)


async def _refuse_taken_url(conn: AsyncConnection, url: str, feed_id: str) -> None:
    stmt = sa.select(feeds.c.id).where(feeds.c.url == url, feeds.c.id != feed_id)
    if (await conn.execute(stmt)).first() is not None:
        raise _url_taken(url)


async def delete_feed(conn: AsyncConnection, feed_id: str) -> None:
    stmt = sa.delete(feeds).where(feeds.c.id == feed_id).returning(feeds.c.id)
    if (await conn.execute(stmt)).first() is None:
        raise NotFound("feed", feed_id)
