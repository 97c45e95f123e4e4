"""Staff console sign-in (API.md, "Staff"): login with password and, where enabled, a TOTP code;
logout; who-am-I with roles and permissions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json

from auth import staff
from miniapp_api.callers import keyring, utcnow
from miniapp_api.errors import ApiError, Unauthorized
from miniapp_api.openapi_docs import doc
from miniapp_api.request_context import request_id_of
from miniapp_api.sessions_setup import require_staff
from miniapp_api.validation import parse_body

bp = Blueprint("staff", url_prefix="/staff")


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=staff.MAX_PASSWORD_LENGTH)
    otp: str | None = Field(default=None, pattern=r"^[0-9]{6}$")

    @field_validator("otp", mode="before")
    @classmethod
    def _tidy_otp(cls, value: Any) -> Any:
        # Authenticator apps show "123 456"; an empty box means no code.
        if isinstance(value, str):
            value = value.replace(" ", "")
            return value or None
        return value


def refused(exc: staff.LoginRefused) -> ApiError:
    if isinstance(exc, staff.AccountLocked):
        return ApiError(429, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, staff.AccountInactive):
        return ApiError(403, exc.code, exc.message)
    return Unauthorized(exc.message, code=exc.code)


@bp.post("/login", name="login")
@doc(
    "Staff login: username, password and, when enabled, a TOTP code",
    "staff",
    body=LoginBody,
    errors=(401, 403),
)
async def login(request: Request) -> HTTPResponse:
    body = parse_body(request, LoginBody)
    try:
        result = await staff.login_staff(
            body.username,
            body.password,
            body.otp,
            sessions=request.app.ctx.sessions,
            redis=request.app.ctx.redis,
            keyring=keyring(request),
            request_id=request_id_of(request),
            now=utcnow(),
        )
    except staff.LoginRefused as exc:
        raise refused(exc) from exc
    return json(
        {"token": result.token, "expires_in": result.expires_in, "roles": list(result.user.roles)}
    )


@bp.post("/logout", name="logout")
@doc("End this staff session", "staff", auth="staff", ok=204, answer=None)
async def logout(request: Request) -> HTTPResponse:
    caller = await require_staff(request)
    await request.app.ctx.sessions.revoke(caller.session)
    return empty()


@bp.get("/me", name="me")
@doc("The signed-in staff member, roles and permissions", "staff", auth="staff")
async def me(request: Request) -> HTTPResponse:
    caller = await require_staff(request)
    return json(
        {
            "username": caller.user.username,
            "display_name": caller.user.display_name,
            "roles": list(caller.user.roles),
            "permissions": sorted(caller.permissions),
        }
    )
