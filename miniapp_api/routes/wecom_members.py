"""WeCom member login (OAuth), identity binding and unbinding (API.md, "WeCom").

No URL prefix: the OAuth pair lives under /wecom like the callback, the binding routes under
their full /api/v1 paths.

The OAuth callback answers JSON (``token``, ``expires_in``, ``bound`` or ``roles``, ``next``)
to a script, so the token never sits in a URL, a browser history or a Referer. WeCom, though,
sends the browser itself to the callback: a navigation gets a static page instead
(static/wecom/oauth.html) that touches neither the state nor the code; its script calls the
same URL for the JSON, keeps the token in sessionStorage for the page it lands on and goes to
``next``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json, redirect

from auth.audit import Actor
from auth.bind_codes import TooManyBindAttempts
from auth.sessions import Session
from miniapp_api.callers import limiter, mp_caller, too_many, utcnow
from miniapp_api.errors import ApiError, NotFound, Unauthorized, ValidationFailed
from miniapp_api.openapi_docs import doc
from miniapp_api.pages import oauth_bridge_page
from miniapp_api.request_context import request_id_of
from miniapp_api.sessions_setup import require_session
from miniapp_api.validation import parse_body, parse_query
from miniapp_api.wechat_setup import wecom_authorize_base
from wechat.errors import InvalidCode
from wecom import binding, oauth
from wecom.binding import MemberIdentity
from wecom.models import WeComMember

bp = Blueprint("wecom_member")

CALLBACK_PATH = "/wecom/oauth/callback"
# Ties a login's state to the browser that started it (wecom/oauth.py begin).
BROWSER_COOKIE = "suban_wecom_oauth"
COOKIE_PATH = "/wecom/oauth"
# The callback answers a page or JSON by these request headers: no cache may give one to the
# other, and neither may be kept (one holds a one-time code in its address, the other a token).
CALLBACK_HEADERS = {"Vary": "Accept, Sec-Fetch-Mode", "Cache-Control": "no-store"}


class StartQuery(BaseModel):
    next: str | None = Field(default=None, max_length=oauth.MAX_NEXT_LENGTH)
    # "for" is a Python keyword; the query parameter keeps the contract's name.
    purpose: Literal["member", "staff"] = Field(default="member", alias="for")


class CallbackQuery(BaseModel):
    code: str = Field(min_length=1, max_length=512)
    state: str = Field(min_length=1, max_length=oauth.MAX_STATE_LENGTH)


class BindBody(BaseModel):
    # No digit pattern here: a malformed code must cost a guess like any wrong one.
    code: str = Field(min_length=1, max_length=32)


def _callback_url(request: Request) -> str:
    public = request.app.ctx.settings.public_url.rstrip("/")
    base = public or f"{request.scheme}://{request.host}"
    return f"{base}{CALLBACK_PATH}"


@bp.get("/wecom/oauth/start", name="oauth_start")
@doc(
    "Start WeCom OAuth (members; ?for=staff for staff)",
    "wecom",
    query=StartQuery,
    ok=302,
    answer=None,
)
async def oauth_start(request: Request) -> HTTPResponse:
    query = parse_query(request, StartQuery)
    try:
        next_path = oauth.safe_next(query.next)
    except oauth.InvalidNext as exc:
        raise ValidationFailed({"next": "只能跳转到本站的相对路径"}) from exc
    browser = oauth.new_browser_secret()
    state = await oauth.begin(request.app.ctx.redis, next_path, query.purpose, browser=browser)
    wecom = request.app.ctx.wechat.wecom
    base = wecom_authorize_base(request.app.ctx.settings)
    response = redirect(
        oauth.authorize_url(wecom.corp_id, wecom.agent_id, _callback_url(request), state, base=base)
    )
    # Lax: sent on WeCom's top-level redirect back and on the bridge page's same-site fetch.
    # Secure where the site is served over TLS (behind the proxy too); a plain-HTTP dev server
    # would never get a Secure cookie back.
    response.add_cookie(
        BROWSER_COOKIE,
        browser,
        path=COOKIE_PATH,
        max_age=oauth.STATE_TTL,
        httponly=True,
        samesite="Lax",
        secure=request.scheme == "https",
    )
    return response


def is_navigation(request: Request) -> bool:
    """Whether the browser itself loads the callback (WeCom's redirect) rather than a script or
    another client. Sec-Fetch-Mode is set by the browser and no script can forge "navigate";
    a browser too old to send it still asks for HTML first. httpx, curl and the fuzzer send
    ``Accept: */*`` and our scripts ``application/json``: they get JSON, as before."""
    mode: str | None = request.headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    accept: str = request.headers.get("accept", "").lower()
    return "text/html" in accept and "application/json" not in accept


@bp.get(CALLBACK_PATH, name="oauth_callback")
@doc(
    "Finish WeCom OAuth: a session for the member",
    "wecom",
    query=CallbackQuery,
    errors=(401, 403, 409),
    description=(
        "JSON for a script or client. A browser navigation (Sec-Fetch-Mode: navigate, or an "
        "Accept asking for text/html and not JSON) gets a static HTML page instead, whatever "
        "the query: it consumes nothing, and its script calls this URL again for the JSON."
    ),
)
async def oauth_callback(request: Request) -> HTTPResponse:
    if is_navigation(request):
        return await oauth_bridge_page(CALLBACK_HEADERS)
    query = parse_query(request, CallbackQuery)
    redis = request.app.ctx.redis
    started = await oauth.consume_state(redis, query.state, request.cookies.get(BROWSER_COOKIE))
    if started is None:
        # Also a link started in another browser: it is spent now, and says only this.
        raise ApiError(400, "INVALID_STATE", "登录链接已失效，请重新进入")
    try:
        identity = await request.app.ctx.wechat.wecom.get_user_info(query.code)
    except InvalidCode as exc:
        raise Unauthorized("登录凭证无效或已过期，请重新进入", code="INVALID_CODE") from exc
    if identity.userid is None:
        raise ApiError(403, "NOT_A_MEMBER", "仅限本企业成员使用")
    sessions = request.app.ctx.sessions
    if started.purpose == "staff":
        try:
            staff = await oauth.login_staff(
                identity.userid, sessions=sessions, now=utcnow(), request_id=request_id_of(request)
            )
        except oauth.NotStaff as exc:
            raise ApiError(403, "NOT_STAFF", "该企业微信账号未开通工作人员权限") from exc
        return json(
            {
                "token": staff.token,
                "expires_in": staff.expires_in,
                "roles": list(staff.user.roles),
                "next": started.next,
            },
            headers=CALLBACK_HEADERS,
        )
    login = await oauth.login_member(identity.userid, sessions=sessions, redis=redis, now=utcnow())
    return json(
        {
            "token": login.token,
            "expires_in": login.expires_in,
            "bound": login.bound,
            "next": started.next,
        },
        headers=CALLBACK_HEADERS,
    )


async def _member(request: Request) -> tuple[Session, MemberIdentity]:
    """The caller's "wecom" session and who it stands for; 401 without one."""
    session = await require_session(request, "wecom")
    identity = await binding.identity_of(request.app.ctx.redis, session)
    if identity is None:
        await request.app.ctx.sessions.revoke(session)
        raise Unauthorized("登录已失效，请重新登录", code="SESSION_EXPIRED")
    return session, identity


def _already_bound() -> ApiError:
    return ApiError(409, "ALREADY_BOUND", "该企业微信账号或该实名用户已绑定，请先解除原绑定")


@bp.post("/api/v1/wecom/bind", name="bind")
@doc(
    "Bind this WeCom member to a person with a one-time code",
    "wecom",
    auth="member",
    body=BindBody,
    ok=201,
    errors=(409,),
)
async def bind(request: Request) -> HTTPResponse:
    session, identity = await _member(request)
    body = parse_body(request, BindBody)
    redis = request.app.ctx.redis
    try:
        member = await binding.bind(
            identity.userid,
            body.code.strip(),
            redis=redis,
            limiter=limiter(request),
            now=utcnow(),
            request_id=request_id_of(request),
        )
    except TooManyBindAttempts as exc:
        raise too_many(exc.retry_after, "绑定码尝试次数过多，请稍后再试") from exc
    except binding.InvalidBindCode as exc:
        raise ValidationFailed(
            {"code": "绑定码错误或已过期，请在小程序重新获取"}, "绑定码无效"
        ) from exc
    except binding.AlreadyBound as exc:
        raise _already_bound() from exc
    # The unbound session could only bind; it gives way to one with the person's rights.
    sessions = request.app.ctx.sessions
    await sessions.revoke(session)
    await oauth.forget_pending(redis, session.account_id)
    token = await sessions.create("wecom", member.id, member.person_id)  # type: ignore[attr-defined]
    return json(
        {"token": token, "expires_in": sessions.lifetime("wecom").idle, "bound": True},
        status=201,
    )


@bp.delete("/api/v1/wecom/bind", name="unbind")
@doc("Unbind this WeCom member from its person", "wecom", auth="member", ok=204, answer=None)
async def unbind(request: Request) -> HTTPResponse:
    _, identity = await _member(request)
    if identity.member is None:
        raise ApiError(403, "WECOM_NOT_BOUND", "该企业微信账号尚未绑定")
    actor = Actor("wecom", identity.member.id, request_id_of(request))
    await binding.unbind(
        identity.member, sessions=request.app.ctx.sessions, actor=actor, now=utcnow()
    )
    return empty()


@bp.delete("/api/v1/mp/wecom-binding", name="mp_unbind")
@doc("Unbind the WeCom member of this person", "mini-program", auth="person", ok=204, answer=None)
async def mp_unbind(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    person = caller.verified_person
    member = await WeComMember.get_or_none(person_id=person.id)
    if member is None:
        raise NotFound("没有已绑定的企业微信账号")
    await binding.unbind(
        member, sessions=request.app.ctx.sessions, actor=caller.actor, now=utcnow()
    )
    return empty()
