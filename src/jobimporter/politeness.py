"""Per-host politeness shared by every worker: at most one request per interval to a host, and a 429
holds the whole host back for its Retry-After.

Jobicy answers 429 when its feeds are fetched in parallel; one request every 2 s per domain works
(seed 004). The state is one Redis key per host holding the earliest time of the next request, so the
limit holds across processes and machines. A feed job that must wait moves itself to BullMQ's delayed
set instead of sleeping, so it frees its worker slot for feeds of other hosts.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

# Both scripts read the clock of Redis itself, so workers with skewed clocks still agree.
# Reserve the host's next free slot if it is at most ARGV[2] ms away: returns the ms to wait for it
# (0: now), the slot then belongs to the caller, first come first served. A slot further away is not
# reserved: returns minus the ms until the host is free, and the caller comes back later.
_ACQUIRE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local next_at = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, next_at)
if slot - now > tonumber(ARGV[2]) then return -(slot - now) end
redis.call('SET', KEYS[1], slot + tonumber(ARGV[1]), 'PX', slot - now + tonumber(ARGV[1]) + 60000)
return slot - now
"""

_HOLD_BACK = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local until_at = now + tonumber(ARGV[1])
local next_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_at > next_at then
  redis.call('SET', KEYS[1], until_at, 'PX', tonumber(ARGV[1]) + 60000)
end
return until_at
"""


class HostLimiter:
    """Per-host request slots, one per ``interval_s``, handed out first come first served.

    ``acquire(host)`` → ``(reserved, ms)``: reserved, the caller sends its request after sleeping ``ms``
    (at most ``max_sleep_ms``, so its place in line is kept); not reserved, the host is busy for ``ms``
    more and the caller should step aside and try again then.
    """

    def __init__(self, redis_url: str, *, prefix: str, interval_s: float, max_sleep_s: float = 2.0) -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(redis_url)
        self._prefix = f"{prefix}:host:"
        self.interval_ms = max(0, round(interval_s * 1000))
        self.max_sleep_ms = max(0, round(max_sleep_s * 1000))
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._hold_back = self._redis.register_script(_HOLD_BACK)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def acquire(self, host: str) -> tuple[bool, int]:
        if self.interval_ms == 0:
            return True, 0
        answer = int(
            await self._acquire(keys=[self._prefix + host], args=[self.interval_ms, self.max_sleep_ms])
        )
        return answer >= 0, abs(answer)

    async def wait_turn(self, host: str) -> None:
        """Return once a request to ``host`` may go (a minimal form; the lead replaces it on merge)."""
        while True:
            reserved, ms = await self.acquire(host)
            await asyncio.sleep(ms / 1000)
            if reserved:
                return

    async def hold_back(self, host: str, seconds: float) -> None:
        """No request to ``host`` from any worker for ``seconds`` (a 429's Retry-After)."""
        milliseconds = max(1, round(seconds * 1000))
        await self._hold_back(keys=[self._prefix + host], args=[milliseconds])
        log.info("politeness: holding %s back for %.1f s", host, seconds)
