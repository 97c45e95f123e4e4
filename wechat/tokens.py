"""Access-token cache shared by every worker and node, refreshed by one caller at a time.

Tencent rate-limits token fetches and (for the classic token API) invalidates the previous token on
every fetch, so N workers discovering a stale token at once must cause one fetch, not N. The
:class:`TokenStore` protocol is what the clients need; :class:`RedisTokenStore` implements it with:

* a cached token per :class:`TokenKey`, expiring ``expires_in - safety_margin`` seconds after the
  fetch, so it is dropped before Tencent stops accepting it;
* a refresh lock (``SET NX PX`` with a random owner, released by compare-and-delete) so one caller
  fetches while the others poll the cache, within a bounded wait;
* compare-and-delete invalidation: a token is removed only if it is still the one that failed, so
  callers that failed with an old token do not throw away the new one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis

from wechat.errors import WeChatUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenKey:
    """Whose token: ``kind`` is ``"miniprogram"`` or ``"wecom"``; WeCom tokens are per agent.
    WeCom's JS-SDK tickets are kept the same way, as ``"wecom_jsapi"`` (the corp's) and
    ``"wecom_agent_jsapi"`` (the app's)."""

    kind: str
    app_id: str
    agent_id: str | None = None

    def redis_key(self, prefix: str) -> str:
        parts = [prefix, "token", self.kind, self.app_id]
        if self.agent_id is not None:
            parts.append(self.agent_id)
        return ":".join(parts)


@dataclass(frozen=True)
class FetchedToken:
    token: str = field(repr=False)
    expires_in: int


TokenFetcher = Callable[[], Awaitable[FetchedToken]]


class TokenStore(Protocol):
    """Where clients get access tokens. Implementations must make concurrent ``get`` calls for a
    missing token cause a single ``fetch`` across every process that shares the store."""

    async def get(self, key: TokenKey, fetch: TokenFetcher) -> str:
        """The cached token, or one obtained through ``fetch`` by exactly one caller."""
        ...

    async def invalidate(self, key: TokenKey, token: str) -> bool:
        """Forget ``token`` if it is still the cached one; True if it was removed."""
        ...


# KEYS[1] is deleted only while it still holds ARGV[1]: used both to release the lock (only by
# its owner) and to drop a failed token (only if no one has replaced it yet).
_COMPARE_AND_DELETE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class RedisTokenStore:
    """:class:`TokenStore` on Redis (works on fakeredis with Lua for the embedded backend)."""

    def __init__(
        self,
        redis: Redis,
        *,
        key_prefix: str = "suban:wechat",
        safety_margin: int = 300,
        lock_ttl: float = 20.0,
        wait_timeout: float = 25.0,
        poll_interval: float = 0.025,
    ) -> None:
        # lock_ttl must outlast the slowest fetch (the transport's timeout times its attempts,
        # plus backoff: ~16 s with the defaults), or a second worker could fetch alongside.
        # wait_timeout exceeds lock_ttl so that waiters outlive a crashed holder's lock and one
        # of them takes over, instead of all giving up.
        self._redis = redis
        self._prefix = key_prefix
        self._margin = safety_margin
        self._lock_ttl_ms = int(lock_ttl * 1000)
        self._wait_timeout = wait_timeout
        self._poll_interval = poll_interval
        self._compare_and_delete = redis.register_script(_COMPARE_AND_DELETE)

    async def get(self, key: TokenKey, fetch: TokenFetcher) -> str:
        token_key = key.redis_key(self._prefix)
        lock_key = f"{token_key}:lock"
        deadline = time.monotonic() + self._wait_timeout
        while True:
            cached = await self._redis.get(token_key)
            if cached is not None:
                return _text(cached)
            owner = secrets.token_hex(16)
            if await self._redis.set(lock_key, owner, nx=True, px=self._lock_ttl_ms):
                try:
                    return await self._refresh(key, token_key, fetch)
                finally:
                    await self._compare_and_delete(keys=[lock_key], args=[owner])
            if time.monotonic() >= deadline:
                raise WeChatUnavailable(
                    f"timed out waiting for another worker to refresh the {key.kind} token"
                )
            await asyncio.sleep(self._poll_interval)

    async def _refresh(self, key: TokenKey, token_key: str, fetch: TokenFetcher) -> str:
        # Between our cache miss and taking the lock, the previous holder may have stored a token.
        cached = await self._redis.get(token_key)
        if cached is not None:
            return _text(cached)
        fetched = await fetch()
        ttl = self._ttl(fetched.expires_in)
        await self._redis.set(token_key, fetched.token, ex=ttl)
        logger.info("wechat %s token for %s refreshed, cached %ds", key.kind, key.app_id, ttl)
        return fetched.token

    def _ttl(self, expires_in: int) -> int:
        if expires_in > 2 * self._margin:
            return expires_in - self._margin
        # Short-lived tokens (tests, simulators) would get no TTL left after the full margin.
        return max(1, expires_in // 2)

    async def invalidate(self, key: TokenKey, token: str) -> bool:
        removed = await self._compare_and_delete(keys=[key.redis_key(self._prefix)], args=[token])
        return bool(removed)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
