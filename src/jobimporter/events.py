"""Import lifecycle events, kept in a bounded Redis stream so a reader can resume where it left off.

Events are published only after the write they describe has committed. Each is a frozen class that
marshals to a flat JSON object; the stream entry holds ``type`` (the class name) and ``data``. A
subscriber passes the last stream id it saw (SSE's ``Last-Event-ID``) and misses nothing that is
still in the stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from jobimporter.errors import QueueError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event; ``run_id`` is on all of them so a client can filter cheaply."""

    run_id: str

    def marshal(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def unmarshal(cls, type_name: str, data: dict[str, Any]) -> Event:
        event_class = _EVENT_TYPES.get(type_name)
        if event_class is None:
            raise ValueError(f"events: unknown event type {type_name!r}")
        fields = {f.name for f in dataclasses.fields(event_class)}
        return event_class(**{k: v for k, v in data.items() if k in fields})


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    trigger: str
    feeds: int


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    status: str
    new: int
    updated: int
    unchanged: int
    failed: int


@dataclass(frozen=True, slots=True)
class EntryChanged(Event):
    """A feed's import entry moved: status, counts, error."""

    entry_id: str
    feed_id: str
    url: str
    status: str
    total_fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    expired: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class BatchProcessed(Event):
    """One batch was written; counts are that batch's."""

    entry_id: str
    batch_no: int
    new: int
    updated: int
    unchanged: int
    failed: int


@dataclass(frozen=True, slots=True)
class QueueCounts(Event):
    """Jobs by state per queue (as ``Queues.counts()``). Not kept in the stream: the SSE endpoint sends
    one every few seconds to each connected client, without an id (so it never moves a client's
    resume point). ``run_id`` is empty: it belongs to no run, and is left out of the payload."""

    run_id: str = ""
    queues: dict[str, dict[str, int]] = field(default_factory=dict)

    def marshal(self) -> dict[str, Any]:
        return {"queues": self.queues}


_EVENT_TYPES: dict[str, type[Event]] = {
    c.__name__: c for c in (RunStarted, RunFinished, EntryChanged, BatchProcessed, QueueCounts)
}


class EventBus:
    """Publish to and read from the events stream (``<prefix>:events``, capped at ``max_len``)."""

    def __init__(self, redis_url: str, *, prefix: str = "jobimporter", max_len: int = 10_000) -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        self.stream = f"{prefix}:events"
        self.max_len = max_len

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def publish(self, event: Event) -> str | None:
        """Append the event; a Redis hiccup is logged, never raised: history in the store is the truth."""
        fields = {"type": type(event).__name__, "data": json.dumps(event.marshal(), default=str)}
        try:
            return str(await self._redis.xadd(self.stream, fields, maxlen=self.max_len, approximate=True))  # type: ignore[arg-type]
        except RedisError as exc:
            log.warning(
                "events: could not publish %s for run_id=%s: %s", type(event).__name__, event.run_id, exc
            )
            return None

    async def ping(self) -> None:
        """Round-trip to Redis; raises ``QueueError`` when it is unreachable."""
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise QueueError(f"queue: redis unreachable: {exc}") from exc

    async def last_id(self) -> str:
        """The id of the newest event, or ``0-0``: subscribe from here to see only what comes next."""
        newest = await self._redis.xrevrange(self.stream, count=1)
        return str(newest[0][0]) if newest else "0-0"

    async def subscribe(
        self, after: str = "$", *, block_ms: int = 5000
    ) -> AsyncIterator[tuple[str, Event | None]]:
        """Yield ``(stream_id, event)`` after ``after``; yields ``(after, None)`` on each idle timeout so
        callers can send heartbeats or re-check state. While Redis is unreachable it keeps retrying
        (yielding ``(cursor, None)`` each second) and resumes from the same cursor: nothing is skipped."""
        cursor = await self.last_id() if after == "$" else after
        while True:
            try:
                answer: Any = await self._redis.xread({self.stream: cursor}, block=block_ms, count=500)
            except RedisError as exc:
                if _cancelled():  # redis-py turned our cancellation into a timeout: honour it
                    raise asyncio.CancelledError from exc
                log.warning("events: reading the stream failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
                yield cursor, None
                continue
            if not answer:
                yield cursor, None
                continue
            for stream_id, fields in answer[0][1]:
                cursor = str(stream_id)
                try:
                    yield cursor, Event.unmarshal(str(fields["type"]), json.loads(fields["data"]))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("events: skipping unreadable event %s: %s", stream_id, exc)


def _cancelled() -> bool:
    """Whether this task was asked to stop. redis-py reads under a timeout of its own, and a
    cancellation that lands as that timeout expires comes out as its ``TimeoutError``: the request
    would be lost, and the task would never stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
