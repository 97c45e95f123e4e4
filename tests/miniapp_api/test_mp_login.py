"""Mini-program login, logout and /me through HTTP, against the mounted WeChat simulator."""

from __future__ import annotations

from typing import Any

import httpx

from auth.models import WeChatAccount
from tests.conftest import LiveServer


async def _login(live: LiveServer, code: str) -> httpx.Response:
    return await live.http.post("/api/v1/mp/login", json={"code": code})


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_with_a_valid_code_opens_a_session(live: LiveServer) -> None:
    r = await _login(live, "sim:o-login-1")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"token", "expires_in", "realname_verified"}
    assert body["expires_in"] == live.app.ctx.settings.session_ttl
    assert body["realname_verified"] is False
    assert len(body["token"]) >= 40
    account = await WeChatAccount.get(openid="o-login-1")
    assert account.last_login_at is not None
    me = await live.http.get("/api/v1/mp/me", headers=_auth(body["token"]))
    assert me.status_code == 200
    assert me.json() == {"person": None, "authorizations": []}


async def test_logging_in_twice_reuses_the_account_with_two_sessions(live: LiveServer) -> None:
    first = (await _login(live, "sim:o-login-2")).json()["token"]
    second = (await _login(live, "sim:o-login-2")).json()["token"]
    assert first != second
    assert await WeChatAccount.filter(openid="o-login-2").count() == 1


async def test_a_bad_code_is_401_in_the_contract_shape(live: LiveServer) -> None:
    r = await _login(live, "not-a-sim-code")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "INVALID_CODE"


async def test_an_empty_or_missing_code_is_422(live: LiveServer) -> None:
    for body in ({}, {"code": ""}, {"code": 5}):
        r = await live.http.post("/api/v1/mp/login", json=body)
        assert r.status_code == 422
        assert "code" in r.json()["error"]["fields"]


async def test_wechat_unreachable_is_503(live: LiveServer) -> None:
    fault: dict[str, Any] = {
        "endpoint": "jscode2session",
        "kind": "http",
        "status": 502,
        "count": 5,
    }
    assert (await live.http.post("/_sim/control/faults", json=fault)).status_code < 300
    r = await _login(live, "sim:o-login-3")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "WECHAT_UNAVAILABLE"
    assert r.headers["retry-after"] == "5"


async def test_logout_stops_the_token(live: LiveServer) -> None:
    token = (await _login(live, "sim:o-login-4")).json()["token"]
    assert (await live.http.post("/api/v1/mp/logout", headers=_auth(token))).status_code == 204
    r = await live.http.get("/api/v1/mp/me", headers=_auth(token))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "SESSION_EXPIRED"


async def test_no_or_malformed_token_is_401(live: LiveServer) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        r = await live.http.get("/api/v1/mp/me", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "UNAUTHORIZED"
    r = await live.http.get("/api/v1/mp/me", headers=_auth("x" * 43))
    assert r.json()["error"]["code"] == "SESSION_EXPIRED"
