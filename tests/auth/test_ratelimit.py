"""Redis attempt limits: exact under concurrency, with the time left until the window ends."""

from __future__ import annotations

import asyncio
from typing import Any

from fakeredis import FakeAsyncRedis, FakeServer

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


async def test_the_cached_value_comes_back_with_the_verdict(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, prefix="t:rl")
    await redis_client.set("t:answer", b"cached")
    limits = [("p", "ip", Limit(5, 60)), ("p", "no", Limit(1, 60))]
    verdict, got = await limiter.hit_each(limits, also_get="t:answer")
    assert verdict.allowed
    assert got == b"cached"
    verdict, got = await limiter.hit_each(limits, also_get="t:missing")
    # The per-number limit is over: refused, and the absent key reads as None.
    assert not verdict.allowed
    assert 0 < verdict.retry_after <= 60
    assert got is None
    assert await redis_client.get("t:rl:p:ip") == b"2"


async def test_the_longest_window_left_is_the_wait(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, prefix="t:rl")
    limits = [("w", "short", Limit(1, 5)), ("w", "long", Limit(1, 600))]
    await limiter.hit_each(limits)
    verdict, _ = await limiter.hit_each(limits)
    assert 5 < verdict.retry_after <= 600


async def test_a_counter_that_lost_its_expiry_gets_one_again(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, prefix="t:rl")
    await redis_client.set("t:rl:e:k", 7)  # as if the EXPIRE after the first INCR was lost
    verdict = await limiter.hit("e", ["k"], Limit(3, 60))
    assert not verdict.allowed
    assert verdict.retry_after == 60
    assert 0 < await redis_client.ttl("t:rl:e:k") <= 60


async def test_a_redis_that_forgot_the_script_is_sent_it_again() -> None:
    fresh = FakeAsyncRedis(server=FakeServer())
    try:
        limiter = RateLimiter(fresh, prefix="t:rl")
        assert (await limiter.hit("f", ["k"], Limit(2, 60))).allowed
        await fresh.script_flush()
        assert (await limiter.hit("f", ["k"], Limit(2, 60))).allowed
        assert not (await limiter.hit("f", ["k"], Limit(2, 60))).allowed
    finally:
        await fresh.aclose()
