"""Per-host politeness shared by every worker: at most one request per interval to a host, and a 429
holds the whole host back for its Retry-After.

Jobicy answers 429 when its feeds are fetched in parallel; one request every 2 s per domain works
(seed 004). Each host is one lane of request slots kept in Redis (one hash per host), so the limit
holds across processes and machines, and both scripts read the clock of Redis itself, so workers
with skewed clocks still agree:

- ``take`` reserves the host's next free slot, first come first served. A slot at most ``near_ms``
  away is the caller's to use now; a later one stays reserved for it while it steps aside (the feed
  job goes to BullMQ's delayed set until its slot and frees its worker for other hosts);
- ``reserve`` is ``take`` for a job not yet queued: a run reserves its high-priority feeds' slots
  before it queues any job, so they come first at their hosts whichever worker is quicker to take
  which job (three workers woken by one run take their first jobs within milliseconds);
- ``claim`` is what a job that stepped aside calls when it wakes: it may go if the host has been
  quiet for an interval and is not held back; otherwise (it woke late and another request went, or
  a 429 came meanwhile) it gets a new reservation;
- ``hold_back`` (a 429) makes the host wait: reservations inside the hold are not honoured, and a
  caller that was about to go checks ``held_for`` after its short sleep.

Every request that goes is at least one interval after the previous one to that host, whoever sent it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

# A slot this close is waited for in place: less than the round trip of stepping aside and back.
NEAR_MS = 250

# Per host, a hash: ``next`` the first slot nobody holds, ``last`` the time of the last request let
# go, ``hold`` the end of a 429's Retry-After. ARGV: interval ms, near ms, then for CLAIM the slot.
# Returns {go (0/1), ms from now to the slot, the slot (Redis ms)}.
_LANE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local interval, near = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'next', 'last', 'hold')
local next_at, last, hold = tonumber(state[1] or '0'), tonumber(state[2] or '-1e15'), tonumber(state[3] or '0')
local function keep(until_at)
  redis.call('PEXPIRE', KEYS[1], math.max(until_at, hold) - now + interval + 60000)
end
if ARGV[3] then
  local reserved = tonumber(ARGV[3])
  local go_at = math.max(now, reserved, last + interval, hold)
  if go_at - now <= near then
    redis.call('HSET', KEYS[1], 'last', go_at, 'next', math.max(next_at, go_at + interval))
    keep(go_at)
    return {1, go_at - now, go_at}
  end
  if go_at == reserved then  -- only early (clocks differ): the reservation stands
    return {0, reserved - now, reserved}
  end
end
local slot = math.max(now, next_at, last + interval, hold)
if slot - now <= near then
  redis.call('HSET', KEYS[1], 'last', slot, 'next', slot + interval)
  keep(slot)
  return {1, slot - now, slot}
end
redis.call('HSET', KEYS[1], 'next', slot + interval)
keep(slot)
return {0, slot - now, slot}
"""

_HOLD_BACK = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local until_at = now + tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'next', 'hold')
local next_at, hold = tonumber(state[1] or '0'), tonumber(state[2] or '0')
if until_at > hold then
  redis.call('HSET', KEYS[1], 'hold', until_at, 'next', math.max(next_at, until_at))
  redis.call('PEXPIRE', KEYS[1], math.max(until_at, next_at) - now + 60000)
end
return until_at
"""

_HELD_FOR = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local hold = tonumber(redis.call('HGET', KEYS[1], 'hold') or '0')
return math.max(0, hold - now)
"""


@dataclass(frozen=True, slots=True)
class Turn:
    """A place in a host's lane. ``go``: the request may be sent after sleeping ``wait_ms`` (at most
    ``NEAR_MS``). Otherwise the slot ``slot_ms`` (Redis clock) is reserved, ``wait_ms`` from now:
    come back then and ``claim`` it."""

    go: bool
    wait_ms: int
    slot_ms: int


class HostLimiter:
    """Request slots per host, one per ``interval_s``, handed out first come first served."""

    def __init__(self, redis_url: str, *, prefix: str, interval_s: float, near_ms: int = NEAR_MS) -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(redis_url)
        self._prefix = f"{prefix}:host:"
        self.interval_ms = max(0, round(interval_s * 1000))
        self.near_ms = near_ms
        self._lane = self._redis.register_script(_LANE)
        self._hold_back = self._redis.register_script(_HOLD_BACK)
        self._held_for = self._redis.register_script(_HELD_FOR)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def take(self, host: str) -> Turn:
        """Reserve ``host``'s next free slot."""
        return await self._run_lane(host)

    async def reserve(self, host: str) -> int:
        """Reserve ``host``'s next free slot, never to go now (``claim`` it later); the slot (Redis ms)."""
        return (await self._run_lane(host, near_ms=-1)).slot_ms

    async def claim(self, host: str, slot_ms: int) -> Turn:
        """Use the slot reserved earlier (``take``'s ``slot_ms``), or, when the host is not free for
        it any more, get a new reservation."""
        return await self._run_lane(host, str(slot_ms))

    async def held_for(self, host: str) -> int:
        """Milliseconds ``host`` is still held back by a 429 (0: not held)."""
        return int(await self._held_for(keys=[self._prefix + host]))

    async def hold_back(self, host: str, seconds: float) -> None:
        """No request to ``host`` from any worker for ``seconds`` (a 429's Retry-After)."""
        milliseconds = max(1, round(seconds * 1000))
        await self._hold_back(keys=[self._prefix + host], args=[milliseconds])
        log.info("politeness: holding %s back for %.1f s", host, seconds)

    async def wait_turn(self, host: str) -> None:
        """Wait in place until a request to ``host`` may go (for the later pages of one feed, whose
        job is busy with that feed anyway)."""
        turn = await self.take(host)
        while True:
            await asyncio.sleep(turn.wait_ms / 1000)
            if turn.go and not await self.held_for(host):
                return
            turn = await self.claim(host, turn.slot_ms)

    async def _run_lane(self, host: str, *slot: str, near_ms: int | None = None) -> Turn:
        near = self.near_ms if near_ms is None else near_ms  # -1: a slot is never near, only reserved
        go, wait_ms, slot_ms = await self._lane(
            keys=[self._prefix + host], args=[self.interval_ms, near, *slot]
        )
        return Turn(go=bool(go), wait_ms=int(wait_ms), slot_ms=int(slot_ms))
