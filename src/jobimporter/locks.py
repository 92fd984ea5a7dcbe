"""Critical sections shared by every process on one Redis: redis-py's ``Lock`` (a key holding a
random token, with a time-to-live so a crashed holder cannot keep it), renewed while its holder lives,
so a slow critical section (closing the entry of a very big feed) keeps it to the end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from jobimporter.errors import QueueError

log = logging.getLogger(__name__)


class Locks:
    def __init__(self, redis_url: str, *, prefix: str = "jobimporter") -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(redis_url)
        self._prefix = prefix

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _key(self, name: str) -> str:
        return f"{self._prefix}:lock:{name}"

    async def drop_orphans(self) -> int:
        """Delete every lock: only for a Redis that no live process uses (an embedded one this process
        has just started), whose locks were left by a process killed inside its critical section and
        would otherwise hold up every run's closing until their time-to-live (20 s) ran out."""
        keys = [key async for key in self._redis.scan_iter(match=self._key("*"))]
        return int(await self._redis.delete(*keys)) if keys else 0

    @asynccontextmanager
    async def held(self, name: str, *, ttl_s: float = 20.0, wait_s: float = 60.0) -> AsyncIterator[None]:
        """Run the body holding ``name``: waits up to ``wait_s`` for it (``QueueError`` after that, or
        when Redis is unreachable). The time-to-live is renewed every ``ttl_s / 3`` while the body
        runs, so it bounds only how long a holder that died (killed, its host gone) keeps the lock."""
        lock = self._redis.lock(self._key(name), timeout=ttl_s, blocking_timeout=wait_s)
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise QueueError(f"queue: could not take the lock {name!r}: {exc}") from exc
        if not acquired:
            raise QueueError(f"queue: the lock {name!r} was held by another process for {wait_s:g} s")
        keeping = asyncio.create_task(_keep(lock, name, ttl_s / 3))
        try:
            yield
        finally:
            keeping.cancel()
            await asyncio.wait([keeping])  # a cancel of this task still comes through, unlike awaiting it
            try:
                await lock.release()
            except (LockError, RedisError) as exc:  # it lapsed or Redis left: the body's work stands
                log.warning("lock %r not released cleanly: %s", name, exc)


async def _keep(lock: Lock, name: str, every_s: float) -> None:
    """Reset the lock's time-to-live every ``every_s`` until cancelled, or until it is no longer ours
    (it lapsed while this process could not renew it: Redis away, the event loop stalled)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await lock.reacquire()
        except (LockError, RedisError) as exc:
            log.warning("lock %r could not be renewed: %s", name, exc)
            return
