"""Who is calling: the mini-program session's account and person, as routes need them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sanic import Request

from auth import clock
from auth.audit import Actor
from auth.models import Person, WeChatAccount
from auth.pii import Keyring
from auth.ratelimit import RateLimiter
from auth.sessions import Session
from miniapp_api.errors import ApiError, Unauthorized
from miniapp_api.request_context import request_id_of
from miniapp_api.sessions_setup import require_session


@dataclass(frozen=True)
class MpCaller:
    session: Session
    account: WeChatAccount
    person: Person | None
    actor: Actor

    @property
    def verified_person(self) -> Person:
        """The caller's person if real-name verified; 403 REALNAME_REQUIRED otherwise."""
        if self.person is None or self.person.verified_at is None:
            raise ApiError(403, "REALNAME_REQUIRED", "请先完成实名认证")
        return self.person


async def mp_caller(request: Request) -> MpCaller:
    session = await require_session(request, "mp")
    account = await WeChatAccount.get_or_none(id=session.account_id).prefetch_related("person")
    if account is None:
        raise Unauthorized("登录已失效，请重新登录", code="SESSION_EXPIRED")
    actor = Actor("mp", account.id, request_id_of(request))
    return MpCaller(session, account, account.person, actor)


def anonymous(request: Request) -> Actor:
    return Actor("anonymous", None, request_id_of(request))


def keyring(request: Request) -> Keyring:
    ring: Keyring = request.app.ctx.keyring
    return ring


def limiter(request: Request) -> RateLimiter:
    return RateLimiter(request.app.ctx.redis)


def utcnow() -> datetime:
    """Now, in the database's zone (see auth/clock.py)."""
    return clock.now()


def too_many(retry_after: int, message: str = "尝试次数过多，请稍后再试") -> ApiError:
    return ApiError(
        429, "TOO_MANY_ATTEMPTS", message, headers={"Retry-After": str(max(1, retry_after))}
    )
