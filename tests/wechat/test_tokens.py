"""The token store on its own: caching, TTL, compare-and-delete, lock discipline, bounded waits."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as redis_asyncio

from wechat import FetchedToken, RedisTokenStore, TokenKey, WeChatUnavailable

KEY = TokenKey("miniprogram", "wx-test")
REDIS_KEY = "suban:wechat:token:miniprogram:wx-test"


class CountingFetch:
    def __init__(self, *, delay: float = 0.0, expires_in: int = 7200) -> None:
        self.calls = 0
        self.delay = delay
        self.expires_in = expires_in
        self.fail_first = False

    async def __call__(self) -> FetchedToken:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail_first and self.calls == 1:
            raise RuntimeError("token endpoint down")
        return FetchedToken(f"token-{self.calls}", self.expires_in)


def test_keys_are_per_kind_app_and_agent() -> None:
    assert KEY.redis_key("p") == "p:token:miniprogram:wx-test"
    assert TokenKey("wecom", "ww1", "1000002").redis_key("p") == "p:token:wecom:ww1:1000002"


def test_fetched_token_repr_hides_the_token() -> None:
    assert "secret-value" not in repr(FetchedToken("secret-value", 7200))


async def test_token_is_cached_with_ttl_minus_margin(shared_redis: redis_asyncio.Redis) -> None:
    store = RedisTokenStore(shared_redis, safety_margin=300)
    fetch = CountingFetch()
    assert await store.get(KEY, fetch) == "token-1"
    assert await store.get(KEY, fetch) == "token-1"
    assert fetch.calls == 1
    assert 6890 <= await shared_redis.ttl(REDIS_KEY) <= 6900


async def test_short_lived_token_keeps_half_its_life(shared_redis: redis_asyncio.Redis) -> None:
    store = RedisTokenStore(shared_redis, safety_margin=300)
    await store.get(KEY, CountingFetch(expires_in=100))
    assert 45 <= await shared_redis.ttl(REDIS_KEY) <= 50


async def test_invalidate_only_removes_the_token_that_failed(
    shared_redis: redis_asyncio.Redis,
) -> None:
    store = RedisTokenStore(shared_redis)
    await store.get(KEY, CountingFetch())
    assert await store.invalidate(KEY, "an-older-token") is False
    assert await shared_redis.get(REDIS_KEY) == b"token-1"
    assert await store.invalidate(KEY, "token-1") is True
    assert await shared_redis.get(REDIS_KEY) is None


async def test_concurrent_misses_fetch_once(shared_redis: redis_asyncio.Redis) -> None:
    store = RedisTokenStore(shared_redis)
    fetch = CountingFetch(delay=0.1)
    tokens = await asyncio.gather(*(store.get(KEY, fetch) for _ in range(50)))
    assert fetch.calls == 1
    assert set(tokens) == {"token-1"}
    assert await shared_redis.exists(f"{REDIS_KEY}:lock") == 0


async def test_failed_fetch_releases_the_lock_for_the_next_caller(
    shared_redis: redis_asyncio.Redis,
) -> None:
    store = RedisTokenStore(shared_redis)
    fetch = CountingFetch(delay=0.05)
    fetch.fail_first = True
    results = await asyncio.gather(
        *(store.get(KEY, fetch) for _ in range(5)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert [r for r in results if not isinstance(r, BaseException)] == ["token-2"] * 4
    assert fetch.calls == 2


async def test_waiting_for_a_stuck_refresh_is_bounded(shared_redis: redis_asyncio.Redis) -> None:
    await shared_redis.set(f"{REDIS_KEY}:lock", "another-worker", px=60_000)
    store = RedisTokenStore(shared_redis, wait_timeout=0.3)
    fetch = CountingFetch()
    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        await store.get(KEY, fetch)
    assert 0.3 <= time.monotonic() - started < 2
    assert fetch.calls == 0


async def test_waiter_takes_over_when_the_holder_died(shared_redis: redis_asyncio.Redis) -> None:
    # A worker that crashed mid-refresh leaves its lock until the lock's TTL runs out.
    await shared_redis.set(f"{REDIS_KEY}:lock", "crashed-worker", px=300)
    store = RedisTokenStore(shared_redis, wait_timeout=3)
    fetch = CountingFetch()
    assert await store.get(KEY, fetch) == "token-1"
    assert fetch.calls == 1


async def test_lock_is_released_only_by_its_owner(shared_redis: redis_asyncio.Redis) -> None:
    store = RedisTokenStore(shared_redis)

    async def slow_fetch() -> FetchedToken:
        # Our lock expired meanwhile and another worker took it: we must not release theirs.
        await shared_redis.set(f"{REDIS_KEY}:lock", "next-owner", px=60_000)
        return FetchedToken("token-1", 7200)

    assert await store.get(KEY, slow_fetch) == "token-1"
    assert await shared_redis.get(f"{REDIS_KEY}:lock") == b"next-owner"
