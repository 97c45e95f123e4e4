from __future__ import annotations

import redis.asyncio as redis_asyncio

from auth.sessions import Lifetime, SessionStore, kind_of


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
    assert 0 < await redis_client.ttl(f"suban:session:mp:{session_a.token_hash}") <= 100
    await store.revoke(session_a)
    assert await store.get(a) is None
    assert await store.get(b) is not None
    assert await store.revoke_all("mp", 1) == 1
    assert await store.get(b) is None
    assert await store.get(other) is not None
    assert await store.get("") is None
    assert await store.get("y" * 500) is None


async def test_each_kind_is_a_namespace_of_its_own(redis_client: redis_asyncio.Redis) -> None:
    store = SessionStore(redis_client, ttl_seconds=100)
    taxpayer = await store.create("mp", 7, 3)
    clerk = await store.create("staff", 7, None)
    assert taxpayer.startswith("mp_")
    assert clerk.startswith("staff_")
    assert (kind_of(taxpayer), kind_of(clerk), kind_of("nonsense"), kind_of("root_x")) == (
        "mp",
        "staff",
        None,
        None,
    )
    assert await store.get(taxpayer, "staff") is None
    assert await store.get(clerk, "mp") is None
    mp_session = await store.get(taxpayer, "mp")
    staff_session = await store.get(clerk, "staff")
    assert mp_session is not None
    assert mp_session.kind == "mp"
    assert staff_session is not None
    assert staff_session.kind == "staff"
    # Relabelling a token does not move it into another namespace.
    secret = clerk.removeprefix("staff_")
    assert await store.get(f"mp_{secret}") is None
    assert await store.get(f"mp_{secret}", "mp") is None
    # Ending the staff member's sessions leaves the taxpayer with the same number alone.
    assert await store.revoke_all("staff", 7) == 1
    assert await store.get(clerk) is None
    assert await store.get(taxpayer) is not None


async def test_a_kind_may_have_its_own_idle_time_and_an_absolute_end(
    redis_client: redis_asyncio.Redis,
) -> None:
    now = [1_000_000.0]
    store = SessionStore(
        redis_client,
        ttl_seconds=7200,
        lifetimes={"staff": Lifetime(idle=600, absolute=1000)},
        clock=lambda: now[0],
    )
    assert store.lifetime("mp") == Lifetime(7200)
    token = await store.create("staff", 1, None)
    session = await store.get(token, "staff")
    assert session is not None
    key = f"suban:session:staff:{session.token_hash}"
    assert 0 < await redis_client.ttl(key) <= 600
    # Near the end the sliding expiry is pulled back to it.
    now[0] += 700
    assert await store.get(token, "staff") is not None
    assert 0 < await redis_client.ttl(key) <= 300
    # However busy, the session is over at its absolute end.
    now[0] += 300
    assert await store.get(token, "staff") is None
    assert await redis_client.exists(key) == 0
