"""Cross-process locks on Redis: a second holder waits, gives up with a clear error, and a lock that
lapsed under its holder does not undo the holder's work."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as aioredis

from jobimporter.errors import QueueError
from jobimporter.locks import Locks

pytestmark = pytest.mark.external_service


async def test_a_held_lock_makes_the_next_holder_wait_then_give_up(redis_url: str) -> None:
    one, two = Locks(redis_url, prefix="t"), Locks(redis_url, prefix="t")
    order: list[str] = []
    try:
        async with one.held("x", ttl_s=5, wait_s=1):
            with pytest.raises(QueueError, match="held by another process"):
                async with two.held("x", ttl_s=5, wait_s=0.2):
                    order.append("never")

            async def second() -> None:
                async with two.held("x", ttl_s=5, wait_s=5):
                    order.append("second")

            waiting = asyncio.create_task(second())
            await asyncio.sleep(0.3)
            order.append("first")
        await asyncio.wait_for(waiting, 5)
    finally:
        await one.aclose()
        await two.aclose()
    assert order == ["first", "second"]


async def test_a_holder_keeps_its_lock_past_the_time_to_live(redis_url: str) -> None:
    """A slow critical section (closing a very big feed's entry) keeps its lock to the end: the
    time-to-live only bounds a holder that died."""
    first, second = Locks(redis_url, prefix="t"), Locks(redis_url, prefix="t")
    try:
        async with first.held("slow", ttl_s=0.6, wait_s=1):
            await asyncio.sleep(2.0)  # the body outlasts the time-to-live three times over
            with pytest.raises(QueueError, match="held by another process"):
                async with second.held("slow", ttl_s=5, wait_s=0.1):
                    pass
        async with second.held("slow", ttl_s=5, wait_s=0.1):  # released at the end of the body
            pass
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_lapsed_lock_lets_its_body_finish_and_leaves_the_next_holder_alone(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The lock lapses under its holder (here: its key is deleted from outside, as when the holder
    could not renew it in time) and another process takes it: the holder's body still finishes (its
    failed renewal or release is logged, not raised) and the release does not free the lock the
    other process now holds."""
    first, second = Locks(redis_url, prefix="t"), Locks(redis_url, prefix="t")
    taken, let_go = asyncio.Event(), asyncio.Event()
    outside = aioredis.Redis.from_url(redis_url)

    async def next_holder() -> None:
        async with second.held("y", ttl_s=30, wait_s=10):  # waits on Redis until the lock lapses
            taken.set()
            await let_go.wait()

    try:
        with caplog.at_level(logging.WARNING, logger="jobimporter.locks"):
            async with first.held("y", ttl_s=30, wait_s=1):
                holder = asyncio.create_task(next_holder())
                await outside.delete("t:lock:y")
                await asyncio.wait_for(taken.wait(), 10)  # lapsed: the other process holds it now
            assert "lock 'y' not released cleanly" in caplog.text
        with pytest.raises(QueueError, match="held by another process"):
            async with first.held("y", ttl_s=1, wait_s=0.1):  # still the other process's
                pass
        let_go.set()
        await asyncio.wait_for(holder, 10)
        async with first.held("y", ttl_s=1, wait_s=1):  # free again
            pass
    finally:
        let_go.set()
        await first.aclose()
        await second.aclose()
        await outside.aclose()


async def test_an_unreachable_redis_is_a_queue_error() -> None:
    locks = Locks("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(QueueError, match="could not take the lock"):
            async with locks.held("z"):
                pass
    finally:
        await locks.aclose()
