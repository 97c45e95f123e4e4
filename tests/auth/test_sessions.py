from __future__ import annotations

import redis.asyncio as redis_asyncio

from auth.sessions import SessionStore


async def test_sessions_slide_and_revoke_one_or_all(redis_client: redis_asyncio.Redis) -> None:
    store = SessionStore(redis_client, ttl_seconds=100)
    a = await store.create("mp", 1, None)
    b = await store.create("mp", 1, 9)
    other = await store.create("mp", 2, None)
    session_a = await store.get(a)
    assert session_a is not None
    assert (session_a.kind, session_a.account_id, session_a.person_id) == ("mp", 1, None)
    # The token itself is nowhere in Redis, only its hash.
    keys = [k.decode() for k in await redis_client.keys("*")]
    assert not any(a in k for k in keys)
    assert 0 < await redis_client.ttl(f"suban:session:{session_a.token_hash}") <= 100
    await store.revoke(session_a)
    assert await store.get(a) is None
    assert await store.get(b) is not None
    assert await store.revoke_all("mp", 1) == 1
    assert await store.get(b) is None
    assert await store.get(other) is not None
    assert await store.get("") is None
    assert await store.get("y" * 500) is None
