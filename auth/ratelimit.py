"""Attempt limits counted in Redis, so they hold across every worker and process.

A fixed window per key: the first attempt starts the window, each attempt counts, and the caller
over the limit learns how long until the window ends. All the keys of one attempt are counted in
one MULTI/EXEC, so twenty parallel attempts on two workers let exactly ``limit`` through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PREFIX = "suban:rl"


@dataclass(frozen=True)
class Limit:
    """``limit`` attempts per ``window`` seconds."""

    limit: int
    window: int


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until the fullest window ends; 0 when allowed


class RateLimiter:
    def __init__(self, redis: Any, prefix: str = PREFIX) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, bucket: str, key: str) -> str:
        return f"{self._prefix}:{bucket}:{key}"

    async def hit(self, bucket: str, keys: Sequence[str], limit: Limit) -> Verdict:
        """Count one attempt against each of ``keys`` (e.g. an account and an ID number's blind
        index, never the number itself); allowed only if every count is within the limit."""
        verdict, _ = await self.hit_each([(bucket, key, limit) for key in keys])
        return verdict

    async def hit_each(
        self, counts: Sequence[tuple[str, str, Limit]], *, also_get: str | None = None
    ) -> tuple[Verdict, bytes | None]:
        """Count one attempt against each ``(bucket, key, limit)``, in one MULTI/EXEC; with
        ``also_get``, read that Redis key in the same round trip (a hot path's cached answer)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for bucket, key, limit in counts:
                name = self._key(bucket, key)
                pipe.incr(name)
                pipe.expire(name, limit.window, nx=True)
                pipe.ttl(name)
            if also_get is not None:
                pipe.get(also_get)
            replies = await pipe.execute()
        retry_after = 0
        for i, (_bucket, _key, limit) in enumerate(counts):
            count, ttl = int(replies[3 * i]), int(replies[3 * i + 2])
            if count > limit.limit:
                retry_after = max(retry_after, ttl if ttl > 0 else limit.window)
        got = replies[-1] if also_get is not None else None
        return Verdict(retry_after == 0, retry_after), got

    async def reset(self, bucket: str, key: str) -> None:
        await self._redis.delete(self._key(bucket, key))
