"""WeCom OAuth through HTTP against the mounted simulator (API.md: code ``sim:<userid>`` → that
member, ``sim-guest:<openid>`` → a non-member): the start redirect, single-use state, same-site
``next`` only, sessions for bound and unbound members, and staff login for mapped staff."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from auth import clock
from auth.models import AuditEvent, StaffUser
from miniapp_api.routes.wecom_members import BROWSER_COOKIE, COOKIE_PATH
from miniapp_api.settings import Settings
from miniapp_api.wechat_setup import wecom_authorize_base
from tests.conftest import BACKEND, LiveServer, _real_redis_or_skip, serve_app
from tests.miniapp_api.test_mp_realname import auth
from wecom import oauth
from wecom.models import WeComMember


@pytest.fixture
async def wlive(settings: Settings) -> AsyncIterator[LiveServer]:
    """The app with the WeCom member routes."""
    if BACKEND == "postgres":
        client = await _real_redis_or_skip()
        await client.flushdb()
        await client.aclose()
    async with serve_app(settings) as server:
        yield server


def new_userid() -> str:
    return f"wm-{uuid.uuid4().hex[:12]}"


async def start(live: LiveServer, next_path: str | None = "/", purpose: str | None = None) -> str:
    """The state of a fresh OAuth start."""
    params: dict[str, str] = {}
    if next_path is not None:
        params["next"] = next_path
    if purpose is not None:
        params["for"] = purpose
    r = await live.http.get("/wecom/oauth/start", params=params)
    assert r.status_code == 302, r.text
    return parse_qs(urlsplit(r.headers["location"]).query)["state"][0]


async def callback(live: LiveServer, state: str, code: str) -> httpx.Response:
    return await live.http.get("/wecom/oauth/callback", params={"code": code, "state": state})


async def wecom_login(
    live: LiveServer, userid: str, next_path: str = "/", purpose: str | None = None
) -> httpx.Response:
    return await callback(live, await start(live, next_path, purpose), f"sim:{userid}")


async def member_token(live: LiveServer, userid: str) -> str:
    r = await wecom_login(live, userid)
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


async def test_start_redirects_to_wecom_authorize_with_state_and_callback(
    wlive: LiveServer,
) -> None:
    r = await wlive.http.get("/wecom/oauth/start", params={"next": "/h5/forms?x=1"})
    assert r.status_code == 302
    location = r.headers["location"]
    # With the simulator on, its stand-in for WeCom's page, mounted on this site.
    assert location.startswith("/_sim/wecom/connect/oauth2/authorize?")
    assert location.endswith("#wechat_redirect")
    query = parse_qs(urlsplit(location).query)
    settings = wlive.app.ctx.settings
    assert query["appid"] == [settings.wecom_corp_id]
    assert query["agentid"] == [str(settings.wecom_agent_id)]
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["snsapi_base"]
    assert query["redirect_uri"] == [f"{wlive.base_url}/wecom/oauth/callback"]
    assert len(query["state"][0]) >= 32

    userid = new_userid()
    done = await callback(wlive, query["state"][0], f"sim:{userid}")
    assert done.status_code == 200, done.text
    assert done.json()["next"] == "/h5/forms?x=1"


def test_production_sends_the_browser_to_wecom(settings: Settings) -> None:
    production = replace(settings, simulator=False)
    assert wecom_authorize_base(production) == oauth.AUTHORIZE_URL
    url = oauth.authorize_url(
        "ww1", 1000005, "https://tax.example/cb", "st", base=oauth.AUTHORIZE_URL
    )
    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=ww1"
        "&redirect_uri=https%3A%2F%2Ftax.example%2Fcb&response_type=code&scope=snsapi_base"
        "&agentid=1000005&state=st#wechat_redirect"
    )
    # A standalone simulator (several workers) serves the page beside its API.
    standalone = replace(settings, wecom_api_base="http://127.0.0.1:8001/wecom/")
    assert wecom_authorize_base(standalone) == (
        "http://127.0.0.1:8001/wecom/connect/oauth2/authorize"
    )


async def test_login_through_the_simulator_authorize_page(wlive: LiveServer) -> None:
    started = await wlive.http.get("/wecom/oauth/start", params={"next": "/h5/bind"})
    assert started.status_code == 302
    page = await wlive.http.get(started.headers["location"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'name="userid"' in page.text
    # The browser submits the form: its hidden fields are the start's query, plus the userid.
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    form = {name: html.unescape(value) for name, value in form.items()}
    assert form["state"] == parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    userid = new_userid()
    back = await wlive.http.get(
        urlsplit(started.headers["location"]).path, params=form | {"userid": userid}
    )
    assert back.status_code == 302
    callback_url = back.headers["location"]
    assert callback_url.startswith(f"{wlive.base_url}/wecom/oauth/callback?")
    assert parse_qs(urlsplit(callback_url).query)["code"] == [f"sim:{userid}"]
    done = await wlive.http.get(callback_url)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["bound"] is False
    assert body["next"] == "/h5/bind"
    session = await wlive.app.ctx.sessions.get(body["token"], "wecom")
    assert await oauth.pending_userid(wlive.app.ctx.redis, session.account_id) == userid


@pytest.mark.parametrize(
    "bad", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "evil", "/a\r\nb"]
)
async def test_start_refuses_next_outside_this_site(wlive: LiveServer, bad: str) -> None:
    r = await wlive.http.get("/wecom/oauth/start", params={"next": bad})
    assert r.status_code == 422, r.text
    assert "next" in r.json()["error"]["fields"]


async def test_state_is_single_use_and_unknown_state_is_refused(wlive: LiveServer) -> None:
    state = await start(wlive)
    first = await callback(wlive, state, f"sim:{new_userid()}")
    assert first.status_code == 200, first.text
    again = await callback(wlive, state, f"sim:{new_userid()}")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "INVALID_STATE"
    made_up = await callback(wlive, "x" * 32, f"sim:{new_userid()}")
    assert made_up.status_code == 400
    missing = await wlive.http.get("/wecom/oauth/callback", params={"code": "sim:a"})
    assert missing.status_code == 422


async def test_non_member_and_bad_code_are_refused(wlive: LiveServer) -> None:
    guest = await callback(wlive, await start(wlive), "sim-guest:o-outsider")
    assert guest.status_code == 403
    assert guest.json()["error"]["code"] == "NOT_A_MEMBER"
    bad = await callback(wlive, await start(wlive), "not-a-code")
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "INVALID_CODE"


async def test_unbound_member_gets_a_session_that_can_only_bind(wlive: LiveServer) -> None:
    r = await wecom_login(wlive, new_userid(), "/h5/bind")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bound"] is False
    assert body["next"] == "/h5/bind"
    assert body["token"].startswith("wecom_")
    assert 0 < body["expires_in"] <= 600
    me = await wlive.http.get("/api/v1/mp/me", headers=auth(body["token"]))
    assert me.status_code == 403
    assert me.json()["error"]["code"] == "WECOM_NOT_BOUND"


async def test_bound_member_gets_a_session_for_the_person(wlive: LiveServer) -> None:
    from tests.wecom.test_binding import bound_member  # the real bind flow

    userid, _token, person_id = await bound_member(wlive)
    r = await wecom_login(wlive, userid, "/h5/me")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bound"] is True
    assert body["next"] == "/h5/me"
    session = await wlive.app.ctx.sessions.get(body["token"], "wecom")
    member = await WeComMember.get(userid=userid)
    assert session.account_id == member.id
    assert session.person_id == person_id
    assert member.last_login_at is not None


async def test_staff_member_logs_in_as_staff_with_for_staff(wlive: LiveServer) -> None:
    userid = new_userid()
    reviewer = await StaffUser.get(username="reviewer")
    reviewer.wecom_userid = userid
    await reviewer.save(update_fields=["wecom_userid"])
    try:
        r = await wecom_login(wlive, userid, "/console/", purpose="staff")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token"].startswith("staff_")
        assert "reviewer" in body["roles"]
        assert body["next"] == "/console/"
        me = await wlive.http.get("/api/v1/staff/me", headers=auth(body["token"]))
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "reviewer"
        assert await AuditEvent.exists(
            action="staff.login", actor_kind="staff", actor_id=str(reviewer.id), outcome="ok"
        )
        # The same member without ?for=staff is an ordinary (unbound) member.
        plain = await wecom_login(wlive, userid)
        assert plain.json()["token"].startswith("wecom_")
    finally:
        reviewer.wecom_userid = None
        await reviewer.save(update_fields=["wecom_userid"])


async def test_staff_login_refused_for_non_staff_and_inactive_staff(wlive: LiveServer) -> None:
    stranger = await wecom_login(wlive, new_userid(), purpose="staff")
    assert stranger.status_code == 403
    assert stranger.json()["error"]["code"] == "NOT_STAFF"

    userid = new_userid()
    await StaffUser.create(
        username=f"wc-{uuid.uuid4().hex[:8]}",
        display_name="停用",
        password_hash="!",
        roles=["reviewer"],
        active=False,
        wecom_userid=userid,
        created_at=clock.now(),
    )
    inactive = await wecom_login(wlive, userid, purpose="staff")
    assert inactive.status_code == 403
    assert inactive.json()["error"]["code"] == "NOT_STAFF"


async def test_a_callback_link_works_only_in_the_browser_that_started_the_login(
    wlive: LiveServer,
) -> None:
    """Login CSRF: a member starts a login, stops before WeCom's redirect and sends the callback
    link to a colleague. The colleague's browser has not the start's cookie: refused, and the
    link is spent, so the sender cannot use it afterwards either."""
    userid = new_userid()
    r = await wlive.http.get("/wecom/oauth/start", params={"next": "/h5/"})
    assert r.status_code == 302
    cookie = r.cookies[BROWSER_COOKIE]
    set_cookie = r.headers["set-cookie"].lower()
    assert "httponly" in set_cookie
    assert "samesite=lax" in set_cookie
    assert f"path={COOKIE_PATH}" in set_cookie
    state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
    params = {"code": f"sim:{userid}", "state": state}

    async with httpx.AsyncClient(base_url=wlive.base_url) as colleague:
        refused = await colleague.get("/wecom/oauth/callback", params=params)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "INVALID_STATE"
        assert "token" not in refused.text
        # Someone else's cookie is no better than none.
        other = await colleague.get("/wecom/oauth/start", params={"next": "/h5/"})
        other_state = parse_qs(urlsplit(other.headers["location"]).query)["state"][0]
        crossed = await wlive.http.get(
            "/wecom/oauth/callback", params={"code": f"sim:{userid}", "state": other_state}
        )
        assert crossed.status_code == 400, crossed.text

    spent = await wlive.http.get("/wecom/oauth/callback", params=params)
    assert spent.status_code == 400, spent.text
    assert wlive.http.cookies.get(BROWSER_COOKIE) == cookie
    assert not await WeComMember.filter(userid=userid).exists()

    # The same browser, start to end: in.
    ok = await wecom_login(wlive, userid, "/h5/")
    assert ok.status_code == 200, ok.text
    assert ok.json()["next"] == "/h5/"
    await WeComMember.filter(userid=userid).delete()
