"""Shared fixtures.

The suite runs twice, in separate processes (tortoise cannot mix SQL dialects in one process):
``SUBAN_TEST_BACKEND=embedded`` (SQLite file + fakeredis) and ``SUBAN_TEST_BACKEND=postgres``
(a fresh PostgreSQL database + real Redis on its own db number).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_asyncio
from fakeredis import FakeAsyncRedis

BACKEND = os.environ.get("SUBAN_TEST_BACKEND", "embedded")
REAL_REDIS_URL = os.environ.get("SUBAN_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
POSTGRES_URL = os.environ.get("SUBAN_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


async def _real_redis_or_skip() -> redis_asyncio.Redis:
    client: redis_asyncio.Redis = redis_asyncio.from_url(REAL_REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover - depends on the machine
        await client.aclose()
        if BACKEND == "postgres":
            raise RuntimeError(f"real Redis at {REAL_REDIS_URL} does not answer: {exc}") from exc
        pytest.skip(f"real Redis at {REAL_REDIS_URL} does not answer")
    return client


@pytest.fixture
async def real_redis() -> AsyncIterator[redis_asyncio.Redis]:
    """Real Redis on its own db number, flushed before and after. Skipped on the embedded
    backend when no Redis answers; on the postgres backend a missing Redis is an error."""
    client = await _real_redis_or_skip()
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
async def redis_client() -> AsyncIterator[redis_asyncio.Redis]:
    """The Redis of the backend under test: fakeredis on embedded, real Redis on postgres."""
    if BACKEND == "postgres":
        client = await _real_redis_or_skip()
        await client.flushdb()
        try:
            yield client
        finally:
            await client.flushdb()
            await client.aclose()
    else:
        fake = FakeAsyncRedis()
        try:
            yield fake
        finally:
            await fake.aclose()
