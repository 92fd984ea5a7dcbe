"""``/api/webhooks``: endpoints told what happens (add, edit, remove) and every delivery to them with
each attempt's answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from jobimporter.api.deps import UNPROCESSABLE, AdminDep, PagingDep, StoreDep
from jobimporter.api.schemas import ListPage, WebhookCreate, WebhookCreated, WebhookOut, WebhookUpdate
from jobimporter.models import Delivery, DeliveryStatus, WebhookEvent, WebhookFormat
from jobimporter.store.base import DeliveryQuery

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


@router.get("", response_model=ListPage[WebhookOut])
async def list_webhooks(store: StoreDep, paging: PagingDep) -> ListPage[WebhookOut]:
    hooks = await store.list_webhooks()
    page = hooks[paging.offset : paging.offset + paging.page_size]
    return ListPage[WebhookOut](
        items=[WebhookOut.of(hook) for hook in page],
        total=len(hooks),
        page=paging.page,
        page_size=paging.page_size,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
async def add_webhook(body: WebhookCreate, store: StoreDep, _: AdminDep) -> WebhookCreated:
    """Add an endpoint; the answer carries its secret (the only time it is shown). 409 for a URL
    already stored; 422 for a Slack endpoint asked for jobs.changed."""
    try:
        source = body.source()
    except ValueError as exc:
        raise HTTPException(UNPROCESSABLE, f"body: {exc}") from exc
    return WebhookCreated.created(await store.add_webhook(source))


@router.get("/deliveries", response_model=ListPage[Delivery])
async def list_deliveries(
    store: StoreDep,
    paging: PagingDep,
    webhook_id: str | None = None,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> ListPage[Delivery]:
    """Deliveries newest first, each with its body and every attempt's answer."""
    query = DeliveryQuery(webhook_id=webhook_id, status=status)
    return ListPage[Delivery](
        items=await store.list_deliveries(limit=paging.page_size, offset=paging.offset, query=query),
        total=await store.count_deliveries(query),
        page=paging.page,
        page_size=paging.page_size,
    )


@router.get("/deliveries/{delivery_id}", response_model=Delivery)
async def get_delivery(delivery_id: str, store: StoreDep) -> Delivery:
    return await store.get_delivery(delivery_id)


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: str, store: StoreDep) -> WebhookOut:
    return WebhookOut.of(await store.get_webhook(webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut)
async def update_webhook(webhook_id: str, body: WebhookUpdate, store: StoreDep, _: AdminDep) -> WebhookOut:
    changes = body.changes()
    current = await store.get_webhook(webhook_id)
    events = changes.get("events", current.events)
    if changes.get("format", current.format) is WebhookFormat.SLACK and WebhookEvent.JOBS_CHANGED in events:
        raise HTTPException(
            UNPROCESSABLE, "body: format 'slack' carries run and feed events only, not jobs.changed"
        )
    return WebhookOut.of(await store.update_webhook(webhook_id, changes))


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_webhook(webhook_id: str, store: StoreDep, _: AdminDep) -> Response:
    """Remove an endpoint; its deliveries stay."""
    await store.delete_webhook(webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
