"""Redis through ``redis.asyncio``: one bounded pool per worker, closed on shutdown.

``memory://`` runs fakeredis inside the process (with lupa, so Lua scripts work) for the embedded
default; it holds only for a single worker, which the settings enforce.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as redis_asyncio
from fakeredis import FakeAsyncRedis, FakeServer
from sanic import Sanic

from miniapp_api.settings import Settings


def create_redis(settings: Settings) -> redis_asyncio.Redis:
    if settings.embedded_redis:
        client: redis_asyncio.Redis = FakeAsyncRedis(server=FakeServer())
        return client
    # A blocking pool waits for a free connection instead of opening without limit under load.
    pool = redis_asyncio.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=5,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )
    # from_pool hands the pool to the client, so aclose() also disconnects its connections.
    return redis_asyncio.Redis.from_pool(pool)


async def ping_redis(client: redis_asyncio.Redis, timeout: float = 2.0) -> None:
    await asyncio.wait_for(client.ping(), timeout)


def setup_redis(app: Sanic[Any, Any], settings: Settings) -> None:
    @app.before_server_start
    async def open_redis(app: Sanic[Any, Any]) -> None:
        app.ctx.redis = create_redis(settings)

    @app.after_server_stop
    async def close_redis(app: Sanic[Any, Any]) -> None:
        await app.ctx.redis.aclose()
