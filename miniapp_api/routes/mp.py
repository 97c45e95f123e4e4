"""The mini-program's identity routes (API.md, "Mini-program (taxpayer)")."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json
from sanic_ext import openapi

from auth.login import login_with_wechat
from auth.masking import mask_id_number, mask_name, mask_phone
from auth.models import Person, WeChatAccount
from auth.pii import Keyring
from miniapp_api.errors import Unauthorized
from miniapp_api.sessions_setup import require_session
from miniapp_api.validation import parse_body
from wechat.errors import InvalidCode

bp = Blueprint("mp", url_prefix="/mp")


class LoginBody(BaseModel):
    code: str = Field(min_length=1, max_length=128)


@bp.post("/login", name="login")
@openapi.definition(summary="Log in with a wx.login code", tag="mini-program")
async def login(request: Request) -> HTTPResponse:
    body = parse_body(request, LoginBody)
    try:
        result = await login_with_wechat(
            body.code, wechat=request.app.ctx.wechat.miniprogram, sessions=request.app.ctx.sessions
        )
    except InvalidCode as exc:
        raise Unauthorized("登录凭证无效或已过期，请重新登录", code="INVALID_CODE") from exc
    return json(
        {
            "token": result.token,
            "expires_in": result.expires_in,
            "realname_verified": result.realname_verified,
        }
    )


@bp.post("/logout", name="logout")
@openapi.definition(summary="End this session; its token stops working", tag="mini-program")
async def logout(request: Request) -> HTTPResponse:
    session = await require_session(request, "mp")
    await request.app.ctx.sessions.revoke(session)
    return empty()


def person_view(person: Person | None, keyring: Keyring) -> dict[str, object] | None:
    """A person as answers show them: masked, never in the clear."""
    if person is None:
        return None

    def opened(column: str, sealed: str | None) -> str | None:
        if sealed is None:
            return None
        return keyring.open(sealed, table="person", column=column, row_id=person.id)

    name = opened("name", person.name_sealed)
    id_number = opened("id_number", person.id_number_sealed)
    phone = opened("phone", person.phone_sealed)
    return {
        "name_masked": mask_name(name) if name else None,
        "id_number_masked": mask_id_number(id_number) if id_number else None,
        "phone_masked": mask_phone(phone) if phone else None,
        "verified_at": person.verified_at.isoformat() if person.verified_at else None,
    }


@bp.get("/me", name="me")
@openapi.definition(summary="Who I am (masked) and whom I may act for", tag="mini-program")
async def me(request: Request) -> HTTPResponse:
    session = await require_session(request, "mp")
    account = await WeChatAccount.get_or_none(id=session.account_id).prefetch_related("person")
    if account is None:
        raise Unauthorized("登录已失效，请重新登录", code="SESSION_EXPIRED")
    return json(
        {
            "person": person_view(account.person, request.app.ctx.keyring),
            # Authorizations (person ↔ taxpayer with roles) arrive with the rest of issue 3.
            "authorizations": [],
        }
    )
