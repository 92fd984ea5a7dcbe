"""Cross-process locks on Redis: a second holder waits, gives up with a clear error, and a lock that
lapsed under its holder does not undo the holder's work."""

from __future__ import annotations

import asyncio

import pytest

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


async def test_a_lapsed_lock_lets_its_body_finish(redis_url: str) -> None:
    locks = Locks(redis_url, prefix="t")
    try:
        async with locks.held("y", ttl_s=0.1, wait_s=1):
            await asyncio.sleep(0.3)  # lapsed: release fails, logged, not raised
            done = True
        async with locks.held("y", ttl_s=1, wait_s=0.1):  # free again
            pass
    finally:
        await locks.aclose()
    assert done


async def test_an_unreachable_redis_is_a_queue_error() -> None:
    locks = Locks("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(QueueError, match="could not take the lock"):
            async with locks.held("z"):
                pass
    finally:
        await locks.aclose()
