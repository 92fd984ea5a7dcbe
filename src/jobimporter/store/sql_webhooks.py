"""Webhook queries of the SQL store: the endpoints (synced by URL like feeds) and their deliveries,
each with every attempt and its answer."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from jobimporter.errors import Conflict, NotFound
from jobimporter.models import Delivery, DeliveryAttempt, DeliveryStatus, Webhook, WebhookSource, new_id
from jobimporter.store.base import DeliveryQuery, WebhookChanges
from jobimporter.store.schema import deliveries, webhooks
from jobimporter.store.sql_changes import last_change_cursor
from jobimporter.store.sql_engine import Capabilities

_SYNCED = ("name", "events", "format", "enabled")


def _webhook(row: Row[Any]) -> Webhook:
    return Webhook.model_validate(dict(row._mapping))


def _new_row(source: WebhookSource, cursor: int, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("hook"),
        "name": source.name,
        "url": source.url,
        "secret": source.secret or secrets.token_hex(32),
        "events": [event.value for event in source.events],
        "format": source.format.value,
        "enabled": source.enabled,
        "changes_cursor": cursor,
        "created_at": now,
    }


def _url_taken(url: str) -> Conflict:
    return Conflict(f"store: a webhook with the URL {url!r} already exists")


async def add_webhook(
    conn: AsyncConnection, caps: Capabilities, source: WebhookSource, now: datetime
) -> Webhook:
    row = _new_row(source, await last_change_cursor(conn), now)
    stmt = caps.insert(webhooks).values(**row).on_conflict_do_nothing(index_elements=[webhooks.c.url])
    if (await conn.execute(stmt.returning(webhooks.c.id))).first() is None:
        raise _url_taken(source.url)
    return await get_webhook(conn, row["id"])


async def sync_webhooks(
    conn: AsyncConnection, caps: Capabilities, sources: Sequence[WebhookSource], now: datetime
) -> list[Webhook]:
    if not sources:
        return []
    cursor = await last_change_cursor(conn)
    by_url = {source.url: source for source in sources}
    for url in sorted(by_url):  # one at a time: only the ones that give a secret replace it
        source = by_url[url]
        stmt = caps.insert(webhooks).values(**_new_row(source, cursor, now))
        synced = {name: stmt.excluded[name] for name in _SYNCED}
        if source.secret:
            synced["secret"] = stmt.excluded.secret
        await conn.execute(stmt.on_conflict_do_update(index_elements=[webhooks.c.url], set_=synced))
    stored = await conn.execute(sa.select(webhooks).where(webhooks.c.url.in_(list(by_url))))
    found = {row.url: _webhook(row) for row in stored}
    return [found[source.url] for source in sources]


async def list_webhooks(conn: AsyncConnection, *, enabled_only: bool) -> list[Webhook]:
    query = sa.select(webhooks).order_by(webhooks.c.name, webhooks.c.url)
    if enabled_only:
        query = query.where(webhooks.c.enabled.is_(True))
    return [_webhook(row) for row in await conn.execute(query)]


async def get_webhook(conn: AsyncConnection, webhook_id: str) -> Webhook:
    row = (await conn.execute(sa.select(webhooks).where(webhooks.c.id == webhook_id))).first()
    if row is None:
        raise NotFound("webhook", webhook_id)
    return _webhook(row)


async def update_webhook(conn: AsyncConnection, webhook_id: str, changes: WebhookChanges) -> Webhook:
    await get_webhook(conn, webhook_id)
    values: dict[str, Any] = {k: getattr(v, "value", v) for k, v in changes.items()}
    if "events" in values:
        values["events"] = [getattr(event, "value", event) for event in values["events"]]
    if values:
        try:
            await conn.execute(sa.update(webhooks).where(webhooks.c.id == webhook_id).values(**values))
        except sa_exc.IntegrityError as exc:
            raise _url_taken(str(values.get("url"))) from exc
    return await get_webhook(conn, webhook_id)


async def delete_webhook(conn: AsyncConnection, webhook_id: str) -> None:
    stmt = sa.delete(webhooks).where(webhooks.c.id == webhook_id).returning(webhooks.c.id)
    if (await conn.execute(stmt)).first() is None:
        raise NotFound("webhook", webhook_id)


# ---------------------------------------------------------------- deliveries


def _delivery_row(delivery: Delivery) -> dict[str, Any]:
    return delivery.model_dump(mode="json") | {
        "created_at": delivery.created_at,
        "finished_at": delivery.finished_at,
    }


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery.model_validate(dict(row._mapping))


async def add_deliveries(
    conn: AsyncConnection, caps: Capabilities, wanted: Sequence[Delivery]
) -> list[Delivery]:
    added: list[Delivery] = []
    for delivery in wanted:
        stmt = (
            caps.insert(deliveries)
            .values(**_delivery_row(delivery))
            .on_conflict_do_nothing(index_elements=[deliveries.c.id])
            .returning(deliveries.c.id)
        )
        if (await conn.execute(stmt)).first() is not None:
            added.append(delivery)
    return added


async def add_changes_delivery(conn: AsyncConnection, delivery: Delivery, *, after: int, until: int) -> bool:
    moved = await conn.execute(
        sa.update(webhooks)
        .where(webhooks.c.id == delivery.webhook_id, webhooks.c.changes_cursor == after)
        .values(changes_cursor=until)
    )
    if not moved.rowcount:
        return False
    await conn.execute(sa.insert(deliveries).values(**_delivery_row(delivery)))
    return True


async def record_attempt(
    conn: AsyncConnection, delivery_id: str, attempt: DeliveryAttempt, status: DeliveryStatus
) -> Delivery:
    current = await get_delivery(conn, delivery_id, lock=True)
    attempts = [a.model_dump(mode="json") for a in current.attempts] + [attempt.model_dump(mode="json")]
    finished = None if status is DeliveryStatus.PENDING else attempt.at
    await conn.execute(
        sa.update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(attempts=attempts, status=status.value, finished_at=finished)
    )
    return await get_delivery(conn, delivery_id)


async def get_delivery(conn: AsyncConnection, delivery_id: str, *, lock: bool = False) -> Delivery:
    query = sa.select(deliveries).where(deliveries.c.id == delivery_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise NotFound("delivery", delivery_id)
    return _delivery(row)


def _filters(query: DeliveryQuery) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if query.webhook_id is not None:
        conditions.append(deliveries.c.webhook_id == query.webhook_id)
    if query.status is not None:
        conditions.append(deliveries.c.status == query.status.value)
    if query.created_before is not None:
        conditions.append(deliveries.c.created_at < query.created_before)
    return conditions


async def list_deliveries(
    conn: AsyncConnection, *, limit: int, offset: int, query: DeliveryQuery
) -> list[Delivery]:
    stmt = (
        sa.select(deliveries)
        .where(*_filters(query))
        .order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_delivery(row) for row in await conn.execute(stmt)]


async def count_deliveries(conn: AsyncConnection, query: DeliveryQuery) -> int:
    stmt = sa.select(sa.func.count()).select_from(deliveries).where(*_filters(query))
    return int((await conn.execute(stmt)).scalar_one())
