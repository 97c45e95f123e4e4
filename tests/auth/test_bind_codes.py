"""WeCom bind codes: six digits, single use, replaced by the next, limited for asking and for
guessing."""

from __future__ import annotations

from typing import Any

import pytest

from auth.bind_codes import (
    ISSUE_LIMIT,
    REDEEM_LIMIT,
    TooManyBindAttempts,
    issue_bind_code,
    redeem_bind_code,
)
from auth.ratelimit import RateLimiter


async def test_a_code_works_once(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client)
    issued = await issue_bind_code(redis_client, limiter, 41)
    assert len(issued.code) == 6
    assert issued.code.isdigit()
    assert issued.expires_in == 300
    assert (
        0 < await redis_client.ttl(next(iter(await redis_client.keys("suban:bind:code:*")))) <= 300
    )
    assert await redis_client.keys(f"*{issued.code}*") == []  # only a hash of it is stored
    assert await redeem_bind_code(redis_client, limiter, issued.code, "member-a") == 41
    assert await redeem_bind_code(redis_client, limiter, issued.code, "member-a") is None


async def test_a_new_code_replaces_the_old_one(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client)
    first = await issue_bind_code(redis_client, limiter, 42)
    second = await issue_bind_code(redis_client, limiter, 42)
    if first.code != second.code:  # one draw in a million repeats the code
        assert await redeem_bind_code(redis_client, limiter, first.code, "m1") is None
    assert await redeem_bind_code(redis_client, limiter, second.code, "m2") == 42


async def test_guessing_is_limited_per_member(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client)
    issued = await issue_bind_code(redis_client, limiter, 43)
    wrong = f"{(int(issued.code) + 1) % 10**6:06d}"
    for _ in range(REDEEM_LIMIT.limit):
        assert await redeem_bind_code(redis_client, limiter, wrong, "guesser") is None
    with pytest.raises(TooManyBindAttempts) as caught:
        await redeem_bind_code(redis_client, limiter, issued.code, "guesser")
    assert caught.value.retry_after > 0
    # The limit is the guesser's; the code still works for the member it was meant for.
    assert await redeem_bind_code(redis_client, limiter, issued.code, "owner") == 43


async def test_asking_is_limited_per_person(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client)
    for _ in range(ISSUE_LIMIT.limit):
        await issue_bind_code(redis_client, limiter, 44)
    with pytest.raises(TooManyBindAttempts):
        await issue_bind_code(redis_client, limiter, 44)


async def test_malformed_codes_are_simply_wrong(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client)
    for code in ("", "12345", "1234567", "abcdef"):
        assert await redeem_bind_code(redis_client, limiter, code, f"m-{code}") is None
