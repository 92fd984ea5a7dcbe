"""The per-host limiter against the private Redis: slots first come first served, far ones not reserved."""

from __future__ import annotations

import pytest

from jobimporter.politeness import HostLimiter

pytestmark = pytest.mark.external_service


async def test_slots_are_reserved_in_call_order_and_far_ones_are_not(redis_url: str) -> None:
    limiter = HostLimiter(redis_url, prefix="t", interval_s=1.0, max_sleep_s=1.5)
    try:
        first, second, third = [await limiter.acquire("jobs.example") for _ in range(3)]
        assert first == (True, 0)
        assert second[0] and 900 <= second[1] <= 1000  # the next slot, reserved for this caller
        assert not third[0] and 1900 <= third[1] <= 2000  # 2 s away: not reserved, come back then
        assert await limiter.acquire("other.example") == (True, 0)  # other hosts are not held up
        await limiter.hold_back("other.example", 5)
        reserved, wait_ms = await limiter.acquire("other.example")
        assert not reserved and wait_ms > 4900  # a 429 holds every worker back
    finally:
        await limiter.aclose()


async def test_an_interval_of_zero_never_waits(redis_url: str) -> None:
    limiter = HostLimiter(redis_url, prefix="t", interval_s=0)
    try:
        assert [await limiter.acquire("h") for _ in range(3)] == [(True, 0)] * 3
    finally:
        await limiter.aclose()
