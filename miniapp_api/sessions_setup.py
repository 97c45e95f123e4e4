"""Sessions on the app's Redis, and the guard routes use to require one."""

from __future__ import annotations

from typing import Any

from sanic import Request, Sanic

from auth.sessions import Session, SessionStore
from miniapp_api.errors import Unauthorized
from miniapp_api.settings import Settings


def setup_sessions(app: Sanic[Any, Any], settings: Settings) -> None:
    # Registered after setup_redis, whose listener makes app.ctx.redis.
    @app.before_server_start
    async def open_sessions(app: Sanic[Any, Any]) -> None:
        app.ctx.sessions = SessionStore(app.ctx.redis, ttl_seconds=settings.session_ttl)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def require_session(request: Request, kind: str) -> Session:
    """The caller's live session of ``kind``; 401 in the contract's shape otherwise."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized()
    session: Session | None = await request.app.ctx.sessions.get(token)
    if session is None or session.kind != kind:
        raise Unauthorized("登录已失效，请重新登录", code="SESSION_EXPIRED")
    return session
