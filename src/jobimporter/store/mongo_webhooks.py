"""Webhook queries of the MongoDB store: the endpoints (``webhooks``, synced by URL like feeds; the URL
has a unique index, so a clash is ``Conflict``) and their ``deliveries``, each with every attempt and
its answer (appended with ``$push``, so concurrent attempts never lose one)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from pymongo import DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from jobimporter.errors import Conflict, NotFound
from jobimporter.models import Delivery, DeliveryAttempt, DeliveryStatus, Webhook, WebhookSource, new_id
from jobimporter.store.base import DeliveryQuery, WebhookChanges
from jobimporter.store.mongo_changes import last_change_cursor
from jobimporter.store.mongo_errors import DUPLICATE_KEY
from jobimporter.store.mongo_feeds import plain
from jobimporter.store.mongo_schema import DELIVERIES, WEBHOOKS, Document

_SYNCED = ("name", "events", "format", "enabled")
_BY_NAME = [("name", 1), ("url", 1)]
_NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]


def _webhook(doc: Document) -> Webhook:
    return Webhook.model_validate({"id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}})


def _synced(source: WebhookSource) -> Document:
    return {
        "name": source.name,
        "events": [event.value for event in source.events],
        "format": source.format.value,
        "enabled": source.enabled,
    }


def _new_doc(source: WebhookSource, cursor: int, now: datetime) -> Document:
    return {
        "_id": new_id("hook"),
        "url": source.url,
        **_synced(source),
        "secret": source.secret or secrets.token_hex(32),
        "changes_cursor": cursor,
        "created_at": now,
    }


def _url_taken(url: str) -> Conflict:
    return Conflict(f"store: a webhook with the URL {url!r} already exists")


async def add_webhook(db: AsyncDatabase[Document], source: WebhookSource, now: datetime) -> Webhook:
    doc = _new_doc(source, await last_change_cursor(db), now)
    try:
        await db[WEBHOOKS].insert_one(doc)
    except DuplicateKeyError as exc:
        raise _url_taken(source.url) from exc
    return _webhook(doc)


async def sync_webhooks(
    db: AsyncDatabase[Document], sources: Sequence[WebhookSource], now: datetime
) -> list[Webhook]:
    if not sources:
        return []
    cursor = await last_change_cursor(db)
    by_url = {source.url: source for source in sources}
    upserts = [_sync_op(by_url[url], cursor, now) for url in sorted(by_url)]
    try:
        await db[WEBHOOKS].bulk_write(upserts, ordered=True)
    except BulkWriteError as exc:
        if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
            raise
        await db[WEBHOOKS].bulk_write(upserts, ordered=True)  # another process inserted one: update it
    found = {doc["url"]: _webhook(doc) async for doc in db[WEBHOOKS].find({"url": {"$in": list(by_url)}})}
    return [found[source.url] for source in sources]


def _sync_op(source: WebhookSource, cursor: int, now: datetime) -> UpdateOne:
    """Upsert by URL: the synced fields (and the secret, when given) set; id and cursor only when new."""
    synced = _synced(source) | ({"secret": source.secret} if source.secret else {})
    inserted = {k: v for k, v in _new_doc(source, cursor, now).items() if k not in synced}
    return UpdateOne({"url": source.url}, {"$set": synced, "$setOnInsert": inserted}, upsert=True)


async def list_webhooks(db: AsyncDatabase[Document], *, enabled_only: bool) -> list[Webhook]:
    query = {"enabled": True} if enabled_only else {}
    return [_webhook(doc) async for doc in db[WEBHOOKS].find(query).sort(_BY_NAME)]


async def get_webhook(db: AsyncDatabase[Document], webhook_id: str) -> Webhook:
    doc = await db[WEBHOOKS].find_one({"_id": webhook_id})
    if doc is None:
        raise NotFound("webhook", webhook_id)
    return _webhook(doc)


async def update_webhook(db: AsyncDatabase[Document], webhook_id: str, changes: WebhookChanges) -> Webhook:
    values: Document = {name: plain(value) for name, value in changes.items()}
    if "events" in values:
        values["events"] = [plain(event) for event in values["events"]]
    if not values:
        return await get_webhook(db, webhook_id)
    try:
        doc = await db[WEBHOOKS].find_one_and_update(
            {"_id": webhook_id}, {"$set": values}, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError as exc:
        raise _url_taken(str(values.get("url"))) from exc
    if doc is None:
        raise NotFound("webhook", webhook_id)
    return _webhook(doc)


async def delete_webhook(db: AsyncDatabase[Document], webhook_id: str) -> None:
    if (await db[WEBHOOKS].delete_one({"_id": webhook_id})).deleted_count == 0:
        raise NotFound("webhook", webhook_id)


# ---------------------------------------------------------------- deliveries


def _delivery_doc(delivery: Delivery) -> Document:
    doc = delivery.model_dump(mode="json", exclude={"id", "attempts", "created_at", "finished_at"})
    return {
        "_id": delivery.id,
        **doc,
        "attempts": [_attempt_doc(attempt) for attempt in delivery.attempts],
        "created_at": delivery.created_at,
        "finished_at": delivery.finished_at,
    }


def _attempt_doc(attempt: DeliveryAttempt) -> Document:
    return attempt.model_dump()  # ``at`` stays a datetime (a BSON date)


def _delivery(doc: Document) -> Delivery:
    return Delivery.model_validate({"id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}})


async def add_deliveries(db: AsyncDatabase[Document], wanted: Sequence[Delivery]) -> list[Delivery]:
    """Insert them all, unordered: the ids stored already come back as duplicate-key errors."""
    if not wanted:
        return []
    refused: set[int] = set()
    try:
        await db[DELIVERIES].insert_many([_delivery_doc(d) for d in wanted], ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        refused = {int(error["index"]) for error in errors}
    return [delivery for i, delivery in enumerate(wanted) if i not in refused]


async def add_changes_delivery(
    db: AsyncDatabase[Document], session: AsyncClientSession, delivery: Delivery, *, after: int, until: int
) -> bool:
    """Run it in a transaction: the cursor moves and the delivery is stored together, or neither."""
    moved = await db[WEBHOOKS].update_one(
        {"_id": delivery.webhook_id, "changes_cursor": after},
        {"$set": {"changes_cursor": until}},
        session=session,
    )
    if moved.modified_count == 0:
        return False
    await db[DELIVERIES].insert_one(_delivery_doc(delivery), session=session)
    return True


async def record_attempt(
    db: AsyncDatabase[Document], delivery_id: str, attempt: DeliveryAttempt, status: DeliveryStatus
) -> Delivery:
    finished = None if status is DeliveryStatus.PENDING else attempt.at
    doc = await db[DELIVERIES].find_one_and_update(
        {"_id": delivery_id},
        {
            "$push": {"attempts": _attempt_doc(attempt)},
            "$set": {"status": status.value, "finished_at": finished},
        },
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        raise NotFound("delivery", delivery_id)
    return _delivery(doc)


async def get_delivery(db: AsyncDatabase[Document], delivery_id: str) -> Delivery:
    doc = await db[DELIVERIES].find_one({"_id": delivery_id})
    if doc is None:
        raise NotFound("delivery", delivery_id)
    return _delivery(doc)


def _filter(query: DeliveryQuery) -> Document:
    conditions: Document = {}
    if query.webhook_id is not None:
        conditions["webhook_id"] = query.webhook_id
    if query.status is not None:
        conditions["status"] = query.status.value
    if query.created_before is not None:
        conditions["created_at"] = {"$lt": query.created_before}
    return conditions


async def list_deliveries(
    db: AsyncDatabase[Document], *, limit: int, offset: int, query: DeliveryQuery
) -> list[Delivery]:
    if limit <= 0:  # pymongo's limit(0) means no limit
        return []
    cursor = db[DELIVERIES].find(_filter(query)).sort(_NEWEST_FIRST).skip(offset).limit(limit)
    return [_delivery(doc) async for doc in cursor]


async def count_deliveries(db: AsyncDatabase[Document], query: DeliveryQuery) -> int:
    return await db[DELIVERIES].count_documents(_filter(query))
