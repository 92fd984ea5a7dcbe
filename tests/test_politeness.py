"""The per-host lane of request slots, against the private Redis.

Every assertion is on the slots Redis hands out (its own clock, in ms), not on how long a test took:
the lane's promise is that granted slots of one host are at least an interval apart, whoever asks.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from jobimporter.politeness import HostLimiter

pytestmark = pytest.mark.external_service

INTERVAL_MS = 2000  # the default JOBIMPORTER_HOST_INTERVAL_S


@pytest.fixture
async def limiter(redis_url: str) -> AsyncIterator[HostLimiter]:
    limiter = HostLimiter(redis_url, prefix="t", interval_s=INTERVAL_MS / 1000)
    yield limiter
    await limiter.aclose()


async def test_slots_are_reserved_first_come_first_served(limiter: HostLimiter) -> None:
    first, second, third = [await limiter.take("jobs.example") for _ in range(3)]
    assert first.go and first.wait_ms == 0
    assert not second.go and second.slot_ms == first.slot_ms + INTERVAL_MS  # reserved: step aside
    assert not third.go and third.slot_ms == first.slot_ms + 2 * INTERVAL_MS
    other = await limiter.take("other.example")
    assert other.go and other.wait_ms == 0  # another host is not held up


async def test_a_reserved_slot_is_held_for_its_claim_and_comes_before_later_takes(
    limiter: HostLimiter,
) -> None:
    reserved = await limiter.reserve("h")  # the host is idle: the slot is now, yet only reserved
    quicker = await limiter.take("h")  # another job asks first
    assert not quicker.go and quicker.slot_ms == reserved + INTERVAL_MS
    claim = await limiter.claim("h", reserved)
    assert claim.go and claim.wait_ms == 0 and claim.slot_ms >= reserved


async def test_a_claim_at_its_slot_goes_and_an_early_one_keeps_its_place(limiter: HostLimiter) -> None:
    await limiter.take("h")
    reserved = await limiter.take("h")
    early = await limiter.claim("h", reserved.slot_ms)  # woke ~2 s early: a clock difference
    assert not early.go and early.slot_ms == reserved.slot_ms  # same place in the lane
    await asyncio.sleep((reserved.wait_ms - limiter.near_ms + 50) / 1000)  # within NEAR of the slot
    on_time = await limiter.claim("h", reserved.slot_ms)
    assert on_time.go and on_time.slot_ms == reserved.slot_ms and on_time.wait_ms <= limiter.near_ms


async def test_a_late_claim_never_goes_within_an_interval_of_the_last_request(limiter: HostLimiter) -> None:
    await limiter.take("h")
    late = await limiter.take("h")  # slot +2 s
    prompt = await limiter.take("h")  # slot +4 s
    # `prompt` wakes at its slot, but `late` was late and went just before it: `prompt` must not go
    # right after it; it gets a new slot, an interval after `late`'s request.
    await asyncio.sleep((prompt.wait_ms - limiter.near_ms + 50) / 1000)
    went = await limiter.claim("h", late.slot_ms)
    assert went.go
    displaced = await limiter.claim("h", prompt.slot_ms)
    assert not displaced.go and displaced.slot_ms >= went.slot_ms + INTERVAL_MS


async def test_a_429_holds_back_every_reservation_inside_it(limiter: HostLimiter) -> None:
    now = await limiter.take("h")
    reserved = await limiter.take("h")
    await limiter.hold_back("h", 10)
    assert await limiter.held_for("h") > 9000
    claim = await limiter.claim("h", reserved.slot_ms)
    assert not claim.go and claim.slot_ms >= now.slot_ms + 10_000  # after the hold, not at its slot
    fresh = await limiter.take("h")
    assert not fresh.go and fresh.slot_ms >= claim.slot_ms + INTERVAL_MS
    assert await limiter.held_for("elsewhere") == 0


async def test_granted_slots_of_one_host_are_an_interval_apart_under_contention(redis_url: str) -> None:
    """Twenty callers at once, in two processes' worth of limiters, each taking then claiming until
    it may go (as feed jobs do): every granted slot is at least one interval after the previous."""
    limiters = [HostLimiter(redis_url, prefix="t", interval_s=0.2) for _ in range(2)]
    granted: list[int] = []

    async def request(limiter: HostLimiter) -> None:
        turn = await limiter.take("busy.example")
        while not turn.go:
            await asyncio.sleep(turn.wait_ms / 1000)
            turn = await limiter.claim("busy.example", turn.slot_ms)
        granted.append(turn.slot_ms)

    try:
        await asyncio.gather(*(request(limiters[n % 2]) for n in range(20)))
    finally:
        for limiter in limiters:
            await limiter.aclose()
    gaps = [b - a for a, b in itertools.pairwise(sorted(granted))]
    assert len(granted) == 20 and min(gaps) >= 200, gaps


async def test_an_interval_of_zero_never_waits_but_a_429_still_holds(redis_url: str) -> None:
    limiter = HostLimiter(redis_url, prefix="t", interval_s=0)
    try:
        assert all([(await limiter.take("h")).go for _ in range(3)])
        await limiter.hold_back("h", 5)
        assert not (await limiter.take("h")).go
    finally:
        await limiter.aclose()
