"""Feed queries of the MongoDB store: syncing configured sources by URL, the HTTP validators, and the
admin API's add / edit / delete (``feeds.url`` has a unique index: a clash is ``Conflict``). A feed its
health paused (``paused_at``) stays disabled until someone resumes it (``update_feed``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from jobimporter.errors import Conflict, NotFound
from jobimporter.mapping import FieldMapping
from jobimporter.models import Feed, FeedSource, new_id
from jobimporter.store.base import FeedChanges
from jobimporter.store.mongo_errors import DUPLICATE_KEY
from jobimporter.store.mongo_schema import FEEDS, Document

# What the sources file decides.
_SYNCED = ("name", "format", "enabled", "priority", "cron", "profile", "mapping", "max_pages")
_FEED_FIELDS = frozenset(Feed.model_fields) - {"id"}
_BY_NAME = [("name", ASCENDING), ("url", ASCENDING)]


def plain(value: Any) -> Any:
    """Enum members as their values (what the documents hold)."""
    return getattr(value, "value", value)


def feed_of(doc: Document) -> Feed:
    return Feed.model_validate({"id": doc["_id"], **{k: v for k, v in doc.items() if k in _FEED_FIELDS}})


def _synced_fields(source: FeedSource) -> Document:
    return {name: _stored(getattr(source, name)) for name in _SYNCED}


def _stored(value: Any) -> Any:
    """A field as the feed document holds it: enums as values, a field mapping as its JSON."""
    if isinstance(value, FieldMapping):
        return value.model_dump(mode="json", exclude_defaults=True)
    return plain(value)


def _new_feed(source: FeedSource, now: datetime) -> Document:
    return {
        "_id": new_id("feed"),
        "url": source.url,
        **_synced_fields(source),
        "etag": None,
        "last_modified": None,
        "created_at": now,
    }


async def sync_feeds(db: AsyncDatabase[Document], sources: Sequence[FeedSource], now: datetime) -> list[Feed]:
    if not sources:
        return []
    by_url = {source.url: source for source in sources}  # the last definition of a URL wins
    upserts = [op for url in sorted(by_url) for op in _sync_ops(by_url[url], now)]
    try:
        await db[FEEDS].bulk_write(upserts, ordered=True)
    except BulkWriteError as exc:
        if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
            raise
        # Two processes inserted the same new URL at once (a server may not retry such an upsert
        # itself); now the URL is stored, so the same upserts only update.
        await db[FEEDS].bulk_write(upserts, ordered=True)
    stored = {doc["url"]: feed_of(doc) async for doc in db[FEEDS].find({"url": {"$in": list(by_url)}})}
    return [stored[source.url] for source in sources]


def _sync_ops(source: FeedSource, now: datetime) -> list[UpdateOne]:
    """Upsert the feed of ``source`` (``enabled`` only when new), then set ``enabled`` unless its
    health paused it: a paused feed stays paused whatever the file says."""
    fields = _synced_fields(source)
    enabled = fields.pop("enabled")
    inserted = {k: v for k, v in _new_feed(source, now).items() if k not in fields}
    return [
        UpdateOne({"url": source.url}, {"$set": fields, "$setOnInsert": inserted}, upsert=True),
        UpdateOne({"url": source.url, "paused_at": None}, {"$set": {"enabled": enabled}}),
    ]


async def list_feeds(db: AsyncDatabase[Document], *, enabled_only: bool) -> list[Feed]:
    query = {"enabled": True} if enabled_only else {}
    return [feed_of(doc) async for doc in db[FEEDS].find(query).sort(_BY_NAME)]


async def get_feed(db: AsyncDatabase[Document], feed_id: str) -> Feed:
    doc = await db[FEEDS].find_one({"_id": feed_id})
    if doc is None:
        raise NotFound("feed", feed_id)
    return feed_of(doc)


async def save_feed_validators(
    db: AsyncDatabase[Document], feed_id: str, etag: str | None, last_modified: str | None
) -> None:
    done = await db[FEEDS].update_one(
        {"_id": feed_id}, {"$set": {"etag": etag, "last_modified": last_modified}}
    )
    if done.matched_count == 0:
        raise NotFound("feed", feed_id)


def _url_taken(url: str) -> Conflict:
    return Conflict(f"store: a feed with the URL {url!r} already exists")


async def add_feed(db: AsyncDatabase[Document], source: FeedSource, now: datetime) -> Feed:
    doc = _new_feed(source, now)
    try:
        await db[FEEDS].insert_one(doc)
    except DuplicateKeyError as exc:
        raise _url_taken(source.url) from exc
    return feed_of(doc)


async def update_feed(db: AsyncDatabase[Document], feed_id: str, changes: FeedChanges, now: datetime) -> Feed:
    current = await get_feed(db, feed_id)
    values: Document = {name: _stored(value) for name, value in changes.items()}
    if values.get("enabled") is True and not current.enabled:
        # Resumed: no longer paused, and its permanent failures count afresh.
        values.update(paused_at=None, paused_reason=None, resumed_at=now)
    if "url" in values and values["url"] != current.url:
        if await db[FEEDS].find_one({"url": values["url"], "_id": {"$ne": feed_id}}, {"_id": 1}):
            raise _url_taken(values["url"])
        values.update(etag=None, last_modified=None)  # they belonged to the old URL
    if not values:
        return current
    try:
        done = await db[FEEDS].update_one({"_id": feed_id}, {"$set": values})
    except DuplicateKeyError as exc:  # another writer took the URL since we looked
        raise _url_taken(str(values.get("url"))) from exc
    if done.matched_count == 0:
        raise NotFound("feed", feed_id)
    return await get_feed(db, feed_id)


async def delete_feed(db: AsyncDatabase[Document], feed_id: str) -> None:
    if (await db[FEEDS].delete_one({"_id": feed_id})).deleted_count == 0:
        raise NotFound("feed", feed_id)
