"""Opaque session tokens in Redis: random, revocable one by one or all at once per subject, with a
sliding expiry. Redis keys hold a hash of the token, so a Redis dump yields no usable token.

Each kind of session (taxpayer ``mp``, ``staff``, ``wecom``) is a namespace of its own: the token
carries its kind as a visible prefix (``staff_…``), the Redis key carries it too, and a lookup for
one kind never finds a session of another. A taxpayer's token shown to a staff route is simply
unknown there, not a session with the wrong label that a forgotten check could let through.

A kind may also have an absolute lifetime on top of the sliding one: staff sessions end after a
working day however busy they were (see :class:`Lifetime`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

SessionKind = Literal["mp", "staff", "wecom"]
KINDS: frozenset[str] = frozenset(get_args(SessionKind))
PREFIX = "suban:session"
# Anything longer is not one of our tokens; refuse it before hashing.
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class Lifetime:
    """``idle``: seconds a session lives without use (each use starts them again). ``absolute``:
    seconds after login when it ends however much it is used; None for no such limit."""

    idle: int
    absolute: int | None = None


@dataclass(frozen=True)
class Session:
    kind: SessionKind
    account_id: int
    person_id: int | None
    token_hash: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def kind_of(token: str) -> SessionKind | None:
    """The kind a token's prefix names; None for anything that is not one of our tokens."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    kind, sep, rest = token.partition("_")
    if not sep or not rest or kind not in KINDS:
        return None
    return kind  # type: ignore[return-value]


class SessionStore:
    def __init__(
        self,
        redis: Any,
        ttl_seconds: int = 7200,
        lifetimes: Mapping[SessionKind, Lifetime] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        # The default for kinds without their own lifetime (the mini-program's).
        self.ttl = ttl_seconds
        self._lifetimes = dict(lifetimes or {})
        self._clock = clock

    def lifetime(self, kind: SessionKind) -> Lifetime:
        return self._lifetimes.get(kind) or Lifetime(self.ttl)

    def _key(self, kind: str, token_hash: str) -> str:
        return f"{PREFIX}:{kind}:{token_hash}"

    def _index(self, kind: str, account_id: int) -> str:
        return f"{PREFIX}s:{kind}:{account_id}"

    async def create(self, kind: SessionKind, account_id: int, person_id: int | None) -> str:
        token = f"{kind}_{secrets.token_urlsafe(32)}"
        token_hash = _hash(token)
        life = self.lifetime(kind)
        data: dict[str, Any] = {"kind": kind, "account_id": account_id, "person_id": person_id}
        first_ttl = life.idle
        if life.absolute is not None:
            data["ends_at"] = int(self._clock()) + life.absolute
            first_ttl = min(life.idle, life.absolute)
        index = self._index(kind, account_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(kind, token_hash), json.dumps(data), ex=first_ttl)
            pipe.sadd(index, token_hash)
            pipe.expire(index, max(life.idle * 12, life.absolute or 0))
            await pipe.execute()
        return token

    async def get(self, token: str, kind: SessionKind | None = None) -> Session | None:
        """The live session of ``token``, its expiry pushed forward; None when unknown, over, or
        (with ``kind``) a token of another kind."""
        token_kind = kind_of(token)
        if token_kind is None or (kind is not None and token_kind != kind):
            return None
        token_hash = _hash(token)
        key = self._key(token_kind, token_hash)
        life = self.lifetime(token_kind)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.expire(key, life.idle, xx=True)
            raw, _ = await pipe.execute()
        if raw is None:
            return None
        data = json.loads(raw)
        if data.get("kind") != token_kind:
            return None
        session = Session(token_kind, int(data["account_id"]), data["person_id"], token_hash)
        ends_at = data.get("ends_at")
        if ends_at is not None:
            now = int(self._clock())
            if now >= ends_at:
                await self.revoke(session)
                return None
            if now + life.idle > ends_at:
                # The sliding expiry just pushed the key past the absolute end: pull it back, so
                # Redis forgets the session on time even if it is never looked up again.
                await self._redis.expire(key, ends_at - now, xx=True)
        return session

    async def revoke(self, session: Session) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(session.kind, session.token_hash))
            pipe.srem(self._index(session.kind, session.account_id), session.token_hash)
            await pipe.execute()

    async def revoke_all(self, kind: SessionKind, account_id: int) -> int:
        index = self._index(kind, account_id)
        hashes = await self._redis.smembers(index)
        keys = [self._key(kind, h.decode() if isinstance(h, bytes) else h) for h in hashes]
        removed: int = await self._redis.delete(*keys, index) if keys else 0
        return max(0, removed - 1) if keys else 0
