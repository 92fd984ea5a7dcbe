"""``/api/events``: Server-Sent Events from the events stream in Redis; never the store.

Each stream event goes out as ``id: <stream id>``, ``event: <type>``, ``data: <json>``. A client that
reconnects with ``Last-Event-ID`` (or ``?last_event_id=``) resumes right after that id, so it misses
nothing still in the (bounded) stream; without one it starts with the next event. Besides: a
``QueueCounts`` event (no id, so it never moves the resume point) every few seconds, and a
``: heartbeat`` comment every 15 s so proxies keep the connection open. Redis is read with a short
blocking timeout, which is what wakes the loop for both when nothing happens.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent
from redis.exceptions import RedisError

from jobimporter.api.deps import UNPROCESSABLE, StateDep
from jobimporter.api.state import ApiState
from jobimporter.errors import QueueError
from jobimporter.events import Event, QueueCounts

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/events", tags=["events"])

_STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")


def resume_point(
    last_event_id: Annotated[str | None, Header(description="The id of the last event received.")] = None,
    query_id: Annotated[
        str | None, Query(alias="last_event_id", description="Same as the Last-Event-ID header.")
    ] = None,
) -> str:
    """Where to start reading: after the given stream id, else at the end (``$``)."""
    wanted = (last_event_id or query_id or "").strip()
    if not wanted:
        return "$"
    if not _STREAM_ID.match(wanted):
        raise HTTPException(UNPROCESSABLE, "Last-Event-ID must be a stream id like 1700000000000-0")
    return wanted


@router.get("", response_class=EventSourceResponse)
async def events(
    state: StateDep, after: Annotated[str, Depends(resume_point)]
) -> AsyncIterator[ServerSentEvent]:
    """The live stream: RunStarted, RunFinished, EntryChanged, BatchProcessed, QueueCounts."""
    try:
        # Fixed before the first byte goes out: whatever happens after the client sees the
        # response start is in its stream.
        cursor = await state.runtime.ctx.events.last_id() if after == "$" else after
        yield ServerSentEvent(comment="connected", retry=state.live.retry_ms)
        async for item in _stream(state, cursor):
            yield item
    except (RedisError, QueueError) as exc:  # only before it started: the stream rides out outages
        log.warning("events: stream not started, Redis failed: %s", exc)


async def _stream(state: ApiState, after: str) -> AsyncIterator[ServerSentEvent]:
    live = state.live
    next_counts = 0.0
    next_beat = time.monotonic() + live.heartbeat_s
    async for stream_id, event in state.runtime.ctx.events.subscribe(after, block_ms=live.block_ms):
        if event is not None:
            yield _sse(stream_id, event)
        now = time.monotonic()
        if now >= next_counts:
            counts = await _queue_counts(state)
            if counts is not None:
                payload = json.dumps(QueueCounts(queues=counts).marshal())
                yield ServerSentEvent(event="QueueCounts", raw_data=payload)
            next_counts = now + live.queue_counts_s
        if now >= next_beat:
            yield ServerSentEvent(comment="heartbeat")
            next_beat = now + live.heartbeat_s
        if state.stopping.is_set():
            return


async def _queue_counts(state: ApiState) -> dict[str, dict[str, int]] | None:
    """The counts, or None while Redis is away (the stream itself waits for it and goes on)."""
    try:
        return await state.queue_counts.get()
    except (RedisError, QueueError) as exc:
        log.debug("events: no queue counts this time: %s", exc)
        return None


def _sse(stream_id: str, event: Event) -> ServerSentEvent:
    return ServerSentEvent(
        id=stream_id, event=type(event).__name__, raw_data=json.dumps(event.marshal(), default=str)
    )
