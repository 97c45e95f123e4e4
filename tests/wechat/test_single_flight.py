"""The token refresh happens once, however many callers (coroutines, clients, processes) find the
token expired at the same moment. Asserted with the simulator's own counters, over real TCP."""

from __future__ import annotations

import asyncio
import sys
import time

import redis.asyncio as redis_asyncio

from tests.processes import PROJECT_ROOT
from tests.wechat.conftest import (
    FAST_RETRY,
    SimControl,
    make_miniprogram,
    make_wecom,
    second_connection,
)
from wechat import RedisTokenStore, Transport

CALLERS = 50


def assert_each_call_retried_at_most_once(calls: int) -> None:
    # The warm-up call, then each caller once or twice: twice if it read the expired token
    # before the refresh, once if it read the cache after the failed token was dropped.
    assert 1 + CALLERS <= calls <= 1 + 2 * CALLERS


async def test_fifty_concurrent_calls_with_an_expired_token_fetch_once(
    sim: SimControl, simulator_url: str, transport: Transport, shared_redis: redis_asyncio.Redis
) -> None:
    client = make_miniprogram(simulator_url, transport, RedisTokenStore(shared_redis))
    await client.get_phone_number("sim:13800000000")
    assert await sim.expire_tokens() == 1
    # A slow token endpoint keeps the refresh in flight while every caller hits 42001.
    await sim.latency("stable_token", 200)

    phones = await asyncio.gather(
        *(client.get_phone_number(f"sim:138{i:08d}") for i in range(CALLERS))
    )

    assert [p.phone_number for p in phones] == [f"138{i:08d}" for i in range(CALLERS)]
    counters = await sim.counters()
    assert counters["stable_token"] == 2, "one fetch to warm up, exactly one to refresh"
    assert_each_call_retried_at_most_once(counters["getuserphonenumber"])


async def test_fifty_concurrent_first_calls_fetch_once(
    sim: SimControl, simulator_url: str, transport: Transport, shared_redis: redis_asyncio.Redis
) -> None:
    client = make_miniprogram(simulator_url, transport, RedisTokenStore(shared_redis))
    await sim.latency("stable_token", 200)
    await asyncio.gather(*(client.get_phone_number(f"sim:138{i:08d}") for i in range(CALLERS)))
    counters = await sim.counters()
    assert counters["stable_token"] == 1
    assert counters["getuserphonenumber"] == CALLERS


async def test_wecom_token_refresh_is_single_flight_too(
    sim: SimControl, simulator_url: str, transport: Transport, shared_redis: redis_asyncio.Redis
) -> None:
    client = make_wecom(simulator_url, transport, RedisTokenStore(shared_redis))
    await client.get_user_info("sim:warmup")
    await sim.expire_tokens()
    await sim.latency("gettoken", 200)
    identities = await asyncio.gather(
        *(client.get_user_info(f"sim:member{i}") for i in range(CALLERS))
    )
    assert {i.userid for i in identities} == {f"member{i}" for i in range(CALLERS)}
    counters = await sim.counters()
    assert counters["gettoken"] == 2
    assert_each_call_retried_at_most_once(counters["getuserinfo"])


async def test_two_workers_sharing_redis_fetch_once(
    sim: SimControl, simulator_url: str, shared_redis: redis_asyncio.Redis
) -> None:
    # Each "worker" has its own Redis connection, token store, transport and client.
    other_redis = second_connection(shared_redis)
    try:
        async with (
            Transport(timeout=2, retry=FAST_RETRY, trust_env=False) as transport_a,
            Transport(timeout=2, retry=FAST_RETRY, trust_env=False) as transport_b,
        ):
            worker_a = make_miniprogram(simulator_url, transport_a, RedisTokenStore(shared_redis))
            worker_b = make_miniprogram(simulator_url, transport_b, RedisTokenStore(other_redis))
            await worker_a.get_phone_number("sim:13800000000")
            assert await other_redis.exists("suban:wechat:token:miniprogram:wx-sim-appid") == 1
            await sim.expire_tokens()
            await sim.latency("stable_token", 200)
            await asyncio.gather(
                *(
                    (worker_a if i % 2 else worker_b).get_phone_number(f"sim:138{i:08d}")
                    for i in range(CALLERS)
                )
            )
    finally:
        await other_redis.aclose()
    counters = await sim.counters()
    assert counters["stable_token"] == 2
    assert_each_call_retried_at_most_once(counters["getuserphonenumber"])


async def test_two_processes_sharing_real_redis_fetch_once(
    sim: SimControl, simulator_url: str, transport: Transport, real_redis: redis_asyncio.Redis
) -> None:
    kwargs = real_redis.connection_pool.connection_kwargs
    redis_url = f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"
    warm = make_miniprogram(simulator_url, transport, RedisTokenStore(real_redis))
    await warm.get_phone_number("sim:13800000000")
    await sim.expire_tokens()
    await sim.latency("stable_token", 200)

    # Both processes start their burst at the same wall-clock moment, after their imports.
    start_at = str(time.time() + 3)
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.wechat.token_worker",
            simulator_url,
            redis_url,
            str(CALLERS // 2),
            start_at,
            cwd=PROJECT_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for worker in workers:
        out, err = await asyncio.wait_for(worker.communicate(), timeout=60)
        assert worker.returncode == 0, err.decode()
        assert out.decode().strip() == str(CALLERS // 2)
    counters = await sim.counters()
    assert counters["stable_token"] == 2
    assert_each_call_retried_at_most_once(counters["getuserphonenumber"])


async def test_warming_both_tokens_fetches_each_once(
    sim: SimControl, simulator_url: str, transport: Transport, shared_redis: redis_asyncio.Redis
) -> None:
    store = RedisTokenStore(shared_redis)
    miniprogram = make_miniprogram(simulator_url, transport, store)
    wecom = make_wecom(simulator_url, transport, store)
    for _ in range(3):
        await asyncio.gather(miniprogram.access_token(), wecom.access_token())
    counters = await sim.counters()
    assert (counters["stable_token"], counters["gettoken"]) == (1, 1)
    assert await miniprogram.access_token() != await wecom.access_token()
