"""The mini-program's identity routes (API.md, "Mini-program (taxpayer)"): login, logout, phone,
real-name verification and who-am-I."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json

from auth import bind_codes, realname
from auth import phone as phone_mod
from auth.authorizations import authorizations_of
from auth.documents import DOCUMENT_TYPES
from auth.login import login_with_wechat
from auth.masking import mask_id_number, mask_name, mask_phone
from auth.models import Person, WeChatAccount
from auth.pii import Keyring
from auth.roles import role_book
from miniapp_api.callers import keyring, limiter, mp_caller, too_many, utcnow
from miniapp_api.errors import ApiError, Unauthorized, ValidationFailed
from miniapp_api.openapi_docs import doc
from miniapp_api.request_context import request_id_of
from miniapp_api.validation import parse_body
from wechat.errors import InvalidCode

bp = Blueprint("mp", url_prefix="/mp")


class LoginBody(BaseModel):
    code: str = Field(min_length=1, max_length=128)


class LogoutBody(BaseModel):
    everywhere: bool = False


class PhoneBody(BaseModel):
    code: str = Field(min_length=1, max_length=128)


class RealnameBody(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    id_type: Literal["resident_id", "hmt_residence_permit", "passport"] = "resident_id"
    id_number: str = Field(min_length=1, max_length=32)
    verify_result: str | None = Field(default=None, min_length=1, max_length=512)


@bp.post("/login", name="login")
@doc("Log in with a wx.login code", "mini-program", body=LoginBody, errors=(401,))
async def login(request: Request) -> HTTPResponse:
    body = parse_body(request, LoginBody)
    try:
        result = await login_with_wechat(
            body.code,
            wechat=request.app.ctx.wechat.miniprogram,
            sessions=request.app.ctx.sessions,
            request_id=request_id_of(request),
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
@doc(
    "End this session (or, with everywhere, every session of this person); the body is optional",
    "mini-program",
    auth="person",
    body=LogoutBody,
    ok=204,
    answer=None,
)
async def logout(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    everywhere = parse_body(request, LogoutBody).everywhere if request.body else False
    sessions = request.app.ctx.sessions
    if everywhere:
        accounts = [caller.account.id]
        if caller.person is not None:
            accounts = await WeChatAccount.filter(person_id=caller.person.id).values_list(
                "id", flat=True
            )
        for account_id in accounts:
            await sessions.revoke_all("mp", int(account_id))
    await sessions.revoke(caller.session)
    return empty()


@bp.post("/phone", name="phone")
@doc(
    "Keep the phone number from a getPhoneNumber code",
    "mini-program",
    auth="person",
    body=PhoneBody,
)
async def phone(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    body = parse_body(request, PhoneBody)
    try:
        number = await phone_mod.set_phone(
            caller.account,
            body.code,
            wechat=request.app.ctx.wechat.miniprogram,
            keyring=keyring(request),
            limiter=limiter(request),
            actor=caller.actor,
        )
    except InvalidCode as exc:
        raise ValidationFailed({"code": "手机号授权凭证无效或已过期"}) from exc
    except phone_mod.TooManyPhoneAttempts as exc:
        raise too_many(exc.retry_after) from exc
    return json({"phone_masked": mask_phone(number)})


@bp.post("/realname", name="realname")
@doc(
    "Real-name verification: name, ID and the face-verification result",
    "mini-program",
    auth="person",
    body=RealnameBody,
    ok=(200, 202),
    errors=(409,),
)
async def verify_realname(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    body = parse_body(request, RealnameBody)
    claim = realname.Claim(body.name, body.id_type, body.id_number, body.verify_result)
    try:
        outcome = await realname.verify_realname(
            caller.account,
            claim,
            face=request.app.ctx.wechat.miniprogram,
            keyring=keyring(request),
            limiter=limiter(request),
            actor=caller.actor,
            now=utcnow(),
        )
    except realname.InvalidClaim as exc:
        raise ValidationFailed({exc.field: exc.message}) from exc
    except realname.TooManyAttempts as exc:
        raise too_many(exc.retry_after, exc.message) from exc
    except realname.RealnameRefused as exc:
        raise ApiError(409, exc.code, exc.message) from exc
    except InvalidCode as exc:
        raise ValidationFailed({"verify_result": "人脸核身结果无效或已过期，请重新核身"}) from exc
    if outcome.counter_required:
        label = DOCUMENT_TYPES[body.id_type].label
        return json(
            {
                "person": {
                    "name_masked": mask_name(outcome.name),
                    "id_number_masked": mask_id_number(outcome.id_number),
                    "phone_masked": None,
                    "verified_at": None,
                },
                "verification": "counter_required",
                "message": f"{label}需携带原件到办税服务厅完成核验",
            },
            status=202,
        )
    return json(
        {
            "person": person_view(outcome.person, keyring(request)),
            "verification": "face",
        }
    )


def person_view(person: Person | None, ring: Keyring) -> dict[str, object] | None:
    """A person as answers show them: masked, never in the clear."""
    if person is None:
        return None

    def opened(column: str, sealed: str | None) -> str | None:
        if sealed is None:
            return None
        return ring.open(sealed, table="person", column=column, row_id=person.id)

    name = opened("name", person.name_sealed)
    id_number = opened("id_number", person.id_number_sealed)
    phone_number = opened("phone", person.phone_sealed)
    return {
        "name_masked": mask_name(name) if name else None,
        "id_number_masked": mask_id_number(id_number) if id_number else None,
        "phone_masked": mask_phone(phone_number) if phone_number else None,
        "verified_at": person.verified_at.isoformat() if person.verified_at else None,
        "verification": person.verification,
    }


@bp.get("/me", name="me")
@doc("Who I am (masked) and whom I may act for", "mini-program", auth="person")
async def me(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    ring = keyring(request)
    view = person_view(caller.person, ring)
    if view is None and caller.account.phone_sealed is not None:
        pending = ring.open(
            caller.account.phone_sealed,
            table="wechat_account",
            column="phone",
            row_id=caller.account.id,
        )
        view = {
            "name_masked": None,
            "id_number_masked": None,
            "phone_masked": mask_phone(pending),
            "verified_at": None,
            "verification": None,
        }
    book = role_book()
    authorizations = [
        {
            "taxpayer_id": a.taxpayer.taxpayer_id,
            "taxpayer_name": a.taxpayer.name,
            "role": a.role,
            "role_label": book.role(a.role).label,
            "permissions": sorted(a.permissions),
            "source": a.source,
            "grant_id": a.grant_id,
            "expires_at": a.expires_at.isoformat() if a.expires_at else None,
        }
        for a in await authorizations_of(caller.person, utcnow())
    ]
    return json({"person": view, "authorizations": authorizations})


@bp.post("/wecom-bind-code", name="wecom_bind_code")
@doc(
    "A one-time code to type into WeCom, linking the member to this person",
    "mini-program",
    auth="person",
)
async def wecom_bind_code(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    person = caller.verified_person
    try:
        issued = await bind_codes.issue_bind_code(
            request.app.ctx.redis, limiter(request), person.id
        )
    except bind_codes.TooManyBindAttempts as exc:
        raise too_many(exc.retry_after, "获取绑定码过于频繁，请稍后再试") from exc
    return json({"code": issued.code, "expires_in": issued.expires_in})
