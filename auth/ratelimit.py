"""Attempt limits counted in Redis, so they hold across every worker and process.

A fixed window per key: the first attempt starts the window, each attempt counts, and the caller
over the limit learns how long until the window ends. All the keys of one attempt are counted by
one Lua script, atomic in Redis, so twenty parallel attempts on two workers let exactly ``limit``
through. The script is sent by its SHA1 (EVALSHA) and its text only when Redis does not know it
yet: one command per attempt, where a MULTI/EXEC pipeline of three commands per key cost more
than twice the CPU in redis-py (bench/progress_parts.py). The embedded store (fakeredis) runs the
same script through lupa, a dependency of ``fakeredis[lua]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

PREFIX = "suban:rl"

# KEYS: the counters, then (when ARGV[1] is 1) the key to read as well.
# ARGV: that flag, then limit and window of each counter. Returns {retry_after, value or nil}.
# A counter without an expiry (its EXPIRE lost in a crash between the two) is given one on its
# next hit, so no key can refuse forever.
HIT_SCRIPT = """
local n = #KEYS - tonumber(ARGV[1])
local retry = 0
for i = 1, n do
  local window = tonumber(ARGV[2 * i + 1])
  local count = redis.call('INCR', KEYS[i])
  local ttl = window
  if count == 1 then
    redis.call('EXPIRE', KEYS[i], window)
  else
    ttl = redis.call('TTL', KEYS[i])
    if ttl < 0 then
      redis.call('EXPIRE', KEYS[i], window)
      ttl = window
    end
  end
  if count > tonumber(ARGV[2 * i]) then
    if ttl < 1 then ttl = window end
    if ttl > retry then retry = ttl end
  end
end
if n < #KEYS then
  return {retry, redis.call('GET', KEYS[#KEYS])}
end
return {retry}
"""
# Redis names a script by its SHA1; nothing here relies on SHA1 resisting collisions.
HIT_SHA = hashlib.sha1(HIT_SCRIPT.encode(), usedforsecurity=False).hexdigest()


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
        """Count one attempt against each ``(bucket, key, limit)`` in one command; with
        ``also_get``, read that Redis key in the same command (a hot path's cached answer)."""
        keys = [self._key(bucket, key) for bucket, key, _ in counts]
        args: list[int] = [0 if also_get is None else 1]
        for _bucket, _key, limit in counts:
            args += (limit.limit, limit.window)
        if also_get is not None:
            keys.append(also_get)
        reply = await self._run(keys, args)
        retry_after = int(reply[0])
        got = reply[1] if len(reply) > 1 else None
        return Verdict(retry_after == 0, retry_after), got

    async def _run(self, keys: list[str], args: list[int]) -> list[Any]:
        try:
            reply: list[Any] = await self._redis.evalsha(HIT_SHA, len(keys), *keys, *args)
        except NoScriptError:
            # A new or restarted Redis knows no scripts yet: EVAL runs it and caches it there.
            reply = await self._redis.eval(HIT_SCRIPT, len(keys), *keys, *args)
        return reply

    async def reset(self, bucket: str, key: str) -> None:
        await self._redis.delete(self._key(bucket, key))
