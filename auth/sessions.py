"""Opaque session tokens in Redis: random, revocable one by one or all at once per subject, with a
sliding expiry. Redis keys hold a hash of the token, so a Redis dump yields no usable token."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal

SessionKind = Literal["mp", "staff", "wecom"]
PREFIX = "suban:session"


@dataclass(frozen=True)
class Session:
    kind: SessionKind
    account_id: int
    person_id: int | None
    token_hash: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, redis: Any, ttl_seconds: int = 7200) -> None:
        self._redis = redis
        self.ttl = ttl_seconds

    def _key(self, token_hash: str) -> str:
        return f"{PREFIX}:{token_hash}"

    def _index(self, kind: str, account_id: int) -> str:
        return f"{PREFIX}s:{kind}:{account_id}"

    async def create(self, kind: SessionKind, account_id: int, person_id: int | None) -> str:
        token = secrets.token_urlsafe(32)
        token_hash = _hash(token)
        payload = json.dumps({"kind": kind, "account_id": account_id, "person_id": person_id})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(token_hash), payload, ex=self.ttl)
            pipe.sadd(self._index(kind, account_id), token_hash)
            pipe.expire(self._index(kind, account_id), self.ttl * 12)
            await pipe.execute()
        return token

    async def get(self, token: str) -> Session | None:
        """The live session of ``token``, its expiry pushed forward; None when unknown or over."""
        if not token or len(token) > 200:
            return None
        token_hash = _hash(token)
        key = self._key(token_hash)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.expire(key, self.ttl, xx=True)
            raw, _ = await pipe.execute()
        if raw is None:
            return None
        data = json.loads(raw)
        return Session(data["kind"], int(data["account_id"]), data["person_id"], token_hash)

    async def revoke(self, session: Session) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(session.token_hash))
            pipe.srem(self._index(session.kind, session.account_id), session.token_hash)
            await pipe.execute()

    async def revoke_all(self, kind: SessionKind, account_id: int) -> int:
        index = self._index(kind, account_id)
        hashes = await self._redis.smembers(index)
        keys = [self._key(h.decode() if isinstance(h, bytes) else h) for h in hashes]
        removed: int = await self._redis.delete(*keys, index) if keys else 0
        return max(0, removed - 1) if keys else 0
