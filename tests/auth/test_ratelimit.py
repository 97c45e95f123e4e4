"""Redis attempt limits: exact under concurrency, with the time left until the window ends."""

from __future__ import annotations

import asyncio
from typing import Any

from auth.ratelimit import Limit, RateLimiter


async def test_the_limit_lets_exactly_n_through_then_says_how_long(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, prefix="t:rl")
    verdicts = [await limiter.hit("x", ["a"], Limit(3, 60)) for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert all(v.retry_after == 0 for v in verdicts[:3])
    assert 0 < verdicts[3].retry_after <= 60


async def test_every_key_must_be_within_its_limit(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, prefix="t:rl")
    limit = Limit(2, 60)
    assert (await limiter.hit("x", ["acct:1", "id:9"], limit)).allowed
    assert (await limiter.hit("x", ["acct:2", "id:9"], limit)).allowed
    # A third account on the same ID number is refused: the ID's count is over.
    assert not (await limiter.hit("x", ["acct:3", "id:9"], limit)).allowed
    assert (await limiter.hit("x", ["acct:3", "id:8"], limit)).allowed


async def test_concurrent_hits_are_counted_exactly(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, prefix="t:rl")
    verdicts = await asyncio.gather(*(limiter.hit("y", ["k"], Limit(5, 60)) for _ in range(40)))
    assert sum(v.allowed for v in verdicts) == 5


async def test_the_window_ends_and_reset_clears(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, prefix="t:rl")
    assert (await limiter.hit("z", ["k"], Limit(1, 1))).allowed
    assert not (await limiter.hit("z", ["k"], Limit(1, 1))).allowed
    await asyncio.sleep(1.1)
    assert (await limiter.hit("z", ["k"], Limit(1, 1))).allowed
    await limiter.reset("z", "k")
    assert (await limiter.hit("z", ["k"], Limit(1, 1))).allowed
