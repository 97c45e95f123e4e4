"""Who is calling: the session's account and person, as the mini-program's routes need them.

Those routes take two kinds of session: the mini-program's own ("mp", a WeChat account) and a
WeCom member's ("wecom"), which carries the rights of the person the member is bound to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sanic import Request

from auth import clock
from auth.audit import Actor
from auth.models import Person, WeChatAccount
from auth.pii import Keyring
from auth.ratelimit import RateLimiter
from auth.sessions import Session, SessionKind
from miniapp_api.errors import ApiError, Unauthorized
from miniapp_api.request_context import request_id_of
from miniapp_api.sessions_setup import require_any_session
from wecom.binding import identity_of
from wecom.models import WeComMember

MP_KINDS: tuple[SessionKind, ...] = ("mp", "wecom")


@dataclass(frozen=True)
class MpCaller:
    session: Session
    # None for a WeCom member: it has no WeChat account.
    wechat_account: WeChatAccount | None
    person: Person | None
    actor: Actor
    member: WeComMember | None = None

    @property
    def account(self) -> WeChatAccount:
        """The caller's WeChat account. What needs it (login, phone, real-name verification)
        happens in the mini-program only, so a WeCom member gets 403 MINIPROGRAM_ONLY; being a
        property keeps every such route typed as before and refusing in one place."""
        if self.wechat_account is None:
            raise ApiError(403, "MINIPROGRAM_ONLY", "此操作请在微信小程序中完成")
        return self.wechat_account

    @property
    def verified_person(self) -> Person:
        """The caller's person if real-name verified; 403 REALNAME_REQUIRED otherwise."""
        if self.person is None or self.person.verified_at is None:
            raise ApiError(403, "REALNAME_REQUIRED", "请先完成实名认证")
        return self.person


async def mp_caller(request: Request) -> MpCaller:
    session = await require_any_session(request, MP_KINDS)
    if session.kind == "wecom":
        return await _member_caller(request, session)
    account = await WeChatAccount.get_or_none(id=session.account_id).prefetch_related("person")
    if account is None:
        raise Unauthorized("登录已失效，请重新登录", code="SESSION_EXPIRED")
    actor = Actor("mp", account.id, request_id_of(request))
    return MpCaller(session, account, account.person, actor)


async def _member_caller(request: Request, session: Session) -> MpCaller:
    identity = await identity_of(request.app.ctx.redis, session)
    if identity is None:
        # Unbound meanwhile (or the pending login lapsed): the session must not linger.
        await request.app.ctx.sessions.revoke(session)
        raise Unauthorized("登录已失效，请重新登录", code="SESSION_EXPIRED")
    if identity.member is None:
        raise ApiError(403, "WECOM_NOT_BOUND", "请先在小程序获取绑定码，完成企业微信身份绑定")
    person = await Person.get_or_none(id=identity.member.person_id)  # type: ignore[attr-defined]
    if person is None:
        raise Unauthorized("登录已失效，请重新登录", code="SESSION_EXPIRED")
    # The member's row id, not its userid: corp userids are often a person's name in pinyin,
    # and the audit trail and timelines hold no names.
    actor = Actor("wecom", identity.member.id, request_id_of(request))
    return MpCaller(session, None, person, actor, identity.member)


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
