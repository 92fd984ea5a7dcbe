"""SSE against a real uvicorn: the run's lifecycle in order, queue counts, heartbeats, and resuming
from Last-Event-ID without gaps or repeats."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from jobimporter.runtime import Runtime

from .conftest import WORKERS, serve_jobs
from .sse import Message, messages

pytestmark = [pytest.mark.external_service, WORKERS]

LIFECYCLE = {"RunStarted", "RunFinished", "EntryChanged", "BatchProcessed"}


async def read_until_run_finished(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    started: asyncio.Event | None = None,
    params: dict[str, str] | None = None,
) -> list[Message]:
    """Every message of one stream until (and with) RunFinished."""
    seen: list[Message] = []
    async with http.stream("GET", "/api/events", headers=headers, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for message in messages(response):
            seen.append(message)
            if started is not None and "connected" in message.comments:
                started.set()
            if message.event == "RunFinished":
                return seen
    raise AssertionError("the stream ended before RunFinished")


async def test_a_run_streams_in_order_and_a_resumed_stream_misses_nothing(
    server: str, feeds: Any, runtime: Runtime, real_jobs: list[dict[str, Any]]
) -> None:
    sources = [serve_jobs(feeds, "/a", real_jobs[:20]), serve_jobs(feeds, "/b", real_jobs[15:30])]
    stored = await runtime.ctx.store.sync_feeds(sources)
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        connected = asyncio.Event()
        reader = asyncio.create_task(read_until_run_finished(http, {}, connected))
        await asyncio.wait_for(connected.wait(), 10)
        answer = await http.post("/api/runs", json={"feed_ids": [f.id for f in stored]})
        run_id = answer.json()["run_id"]
        seen = await asyncio.wait_for(reader, 30)

        first = seen[0]
        assert first.comments == ["connected"] and first.retry == 500
        lifecycle = [m for m in seen if m.event in LIFECYCLE]
        assert lifecycle[0].event == "RunStarted"
        assert lifecycle[0].json() == {"run_id": run_id, "trigger": "manual", "feeds": 2}
        done = lifecycle[-1].json()
        assert (done["run_id"], done["status"], done["new"], done["unchanged"]) == (
            run_id,
            "completed",
            30,
            5,
        )
        assert all(m.id for m in lifecycle) and [m.id for m in lifecycle] == sorted(
            (m.id for m in lifecycle if m.id), key=lambda i: tuple(map(int, i.split("-")))
        )
        batches = [m.json() for m in lifecycle if m.event == "BatchProcessed"]
        assert sum(b["new"] + b["unchanged"] for b in batches) == 35  # every item, counted once
        # RunFinished is the last event of its run: every feed's closing EntryChanged came before it,
        # though the two feeds close concurrently.
        closing = [
            m.json() for m in lifecycle if m.event == "EntryChanged" and m.json()["status"] == "completed"
        ]
        assert sorted(e["total_fetched"] for e in closing) == [15, 20]
        counts = [m for m in seen if m.event == "QueueCounts"]
        assert counts and counts[0].id is None and set(counts[0].json()) == {"queues"}
        assert "jobimporter-batches" in counts[0].json()["queues"]

        # Reconnect after the third lifecycle event: exactly the rest comes, in order.
        resume_at = lifecycle[2].id
        assert resume_at is not None
        again = await asyncio.wait_for(read_until_run_finished(http, {"Last-Event-ID": resume_at}), 30)
        assert [m.id for m in again if m.event in LIFECYCLE] == [m.id for m in lifecycle[3:]]
        assert [m.data for m in again if m.event in LIFECYCLE] == [m.data for m in lifecycle[3:]]
        last = lifecycle[-2].id
        assert last is not None
        tail = await asyncio.wait_for(read_until_run_finished(http, {}, params={"last_event_id": last}), 30)
        assert [m.id for m in tail if m.event in LIFECYCLE] == [lifecycle[-1].id]


async def test_query_resume_heartbeat_and_a_bad_id(server: str) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        bad = await http.get("/api/events", headers={"Last-Event-ID": "yesterday"})
        assert bad.status_code == 422 and "stream id" in bad.json()["detail"]
        seen: list[Message] = []
        async with http.stream("GET", "/api/events", params={"last_event_id": "0-0"}) as response:
            async for message in messages(response):
                seen.append(message)
                if "heartbeat" in message.comments:
                    break
        assert [m for m in seen if m.event == "QueueCounts"]  # every 0.5 s here, every 3 s by default
        assert seen[-1].event is None and seen[-1].comments == [
            "heartbeat"
        ]  # after 1 s here, 15 s by default
