"""One-time codes that link a WeCom member to a real-name verified person.

The person asks the mini-program for a code and types it into WeCom (API.md: /mp/wecom-bind-code,
/wecom/bind). Six digits are few, so a code lives five minutes, works once (GETDEL), replaces the
person's previous code, and both asking and guessing are rate limited. Only a hash of the code is a
Redis key, so a Redis dump does not hand out live codes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from auth.ratelimit import Limit, RateLimiter

PREFIX = "suban:bind"
CODE_TTL = 300
ISSUE_LIMIT = Limit(limit=5, window=600)
REDEEM_LIMIT = Limit(limit=5, window=600)


class TooManyBindAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many bind-code attempts")
        self.retry_after = retry_after


@dataclass(frozen=True)
class BindCode:
    code: str
    expires_in: int


def _code_key(code: str) -> str:
    return f"{PREFIX}:code:{hashlib.sha256(code.encode()).hexdigest()}"


def _person_key(person_id: int) -> str:
    return f"{PREFIX}:person:{person_id}"


async def issue_bind_code(redis: Any, limiter: RateLimiter, person_id: int) -> BindCode:
    verdict = await limiter.hit("bind-issue", [f"person:{person_id}"], ISSUE_LIMIT)
    if not verdict.allowed:
        raise TooManyBindAttempts(verdict.retry_after)
    previous = await redis.get(_person_key(person_id))
    if previous:
        await redis.delete(previous)
    for _ in range(10):
        code = f"{secrets.randbelow(10**6):06d}"
        # NX: a code someone else holds right now is drawn again, never shared.
        if await redis.set(_code_key(code), str(person_id), nx=True, ex=CODE_TTL):
            await redis.set(_person_key(person_id), _code_key(code), ex=CODE_TTL)
            return BindCode(code, CODE_TTL)
    raise RuntimeError("no free bind code after 10 draws")  # a million codes; practically never


async def redeem_bind_code(redis: Any, limiter: RateLimiter, code: str, who: str) -> int | None:
    """The person the code was issued to, once; None for a wrong, used or expired code. ``who``
    (e.g. the WeCom member's userid) is what the guessing limit counts against."""
    verdict = await limiter.hit("bind-redeem", [who], REDEEM_LIMIT)
    if not verdict.allowed:
        raise TooManyBindAttempts(verdict.retry_after)
    if len(code) != 6 or not code.isdigit():
        return None
    raw = await redis.getdel(_code_key(code))
    if raw is None:
        return None
    person_id = int(raw)
    await redis.delete(_person_key(person_id))
    return person_id
