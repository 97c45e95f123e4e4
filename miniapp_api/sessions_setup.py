"""Sessions on the app's Redis, and the guards routes use to require one."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

from sanic import Request, Sanic

from auth.models import StaffUser
from auth.roles import staff_permissions
from auth.sessions import Lifetime, Session, SessionKind, SessionStore, kind_of
from miniapp_api.errors import ApiError, Unauthorized
from miniapp_api.settings import Settings


def setup_sessions(app: Sanic[Any, Any], settings: Settings) -> None:
    # Registered after setup_redis, whose listener makes app.ctx.redis.
    @app.before_server_start
    async def open_sessions(app: Sanic[Any, Any]) -> None:
        app.ctx.sessions = session_store(app.ctx.redis, settings)


def session_store(redis: Any, settings: Settings) -> SessionStore:
    staff = Lifetime(settings.staff_session_ttl, settings.staff_session_max_age)
    return SessionStore(redis, ttl_seconds=settings.session_ttl, lifetimes={"staff": staff})


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _expired() -> Unauthorized:
    return Unauthorized("登录已失效，请重新登录", code="SESSION_EXPIRED")


async def require_session(request: Request, kind: SessionKind) -> Session:
    """The caller's live session of ``kind``; 401 in the contract's shape otherwise (a token of
    another kind is as unknown here as a made-up one)."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized()
    session: Session | None = await request.app.ctx.sessions.get(token, kind)
    if session is None or session.kind != kind:
        raise _expired()
    return session


async def require_any_session(request: Request, kinds: Collection[SessionKind]) -> Session:
    """Like :func:`require_session` for routes that several kinds may call (the mini-program's
    routes take WeCom members too). The token's own prefix picks the one kind it is looked up
    as, so a token is still never found under a kind it was not made for."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized()
    kind = kind_of(token)
    if kind is None or kind not in kinds:
        raise _expired()
    session: Session | None = await request.app.ctx.sessions.get(token, kind)
    if session is None or session.kind != kind:
        raise _expired()
    return session


class StaffCaller(NamedTuple):
    session: Session
    user: StaffUser

    @property
    def permissions(self) -> frozenset[str]:
        return staff_permissions(list(self.user.roles))


async def require_staff(request: Request, permission: str | None = None) -> StaffCaller:
    """The caller's staff session and account: 401 without a live staff session or when the
    account is gone or inactive, 403 FORBIDDEN without ``permission``. Roles are read from the
    account on every call, so taking a role away takes effect at once."""
    session = await require_session(request, "staff")
    user = await StaffUser.get_or_none(id=session.account_id)
    if user is None or not user.active:
        # The session must not outlive the account: reactivating it later should not revive it.
        await request.app.ctx.sessions.revoke(session)
        if user is None:
            raise _expired()
        raise Unauthorized("账号已停用，请联系管理员", code="ACCOUNT_INACTIVE")
    caller = StaffCaller(session, user)
    if permission is not None and permission not in caller.permissions:
        raise ApiError(403, "FORBIDDEN", "无权进行此操作")
    return caller
