"""A stand-in for one app worker process: ``python -m tests.wechat.token_worker SIM_URL REDIS_URL
CALLS START_AT`` waits until the wall-clock START_AT, makes CALLS concurrent phone-number calls
through its own transport, token store and Redis connection, and prints how many succeeded."""

from __future__ import annotations

import asyncio
import sys
import time

import redis.asyncio as redis_asyncio

from wechat import MiniProgramClient, RedisTokenStore, RetryPolicy, Transport
from wechat.simulator import SimulatorConfig


async def run(simulator_url: str, redis_url: str, calls: int, start_at: float) -> int:
    config = SimulatorConfig()
    redis = redis_asyncio.from_url(redis_url)
    try:
        async with Transport(timeout=5, retry=RetryPolicy(attempts=1), trust_env=False) as t:
            client = MiniProgramClient(
                config.appid,
                config.secret,
                f"{simulator_url}/wechat",
                t,
                RedisTokenStore(redis, wait_timeout=10),
            )
            await asyncio.sleep(max(0.0, start_at - time.time()))
            phones = await asyncio.gather(
                *(client.get_phone_number(f"sim:139{i:08d}") for i in range(calls))
            )
            return len(phones)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    simulator_url, redis_url, calls, start_at = sys.argv[1:5]
    print(asyncio.run(run(simulator_url, redis_url, int(calls), float(start_at))))
