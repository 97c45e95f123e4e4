"""Staff login, logout and /staff/me through HTTP; staff and taxpayer tokens kept apart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from argon2 import PasswordHasher
from sanic import HTTPResponse, Request
from sanic.response import json

from auth import staff
from auth.models import AuditEvent, StaffUser
from miniapp_api.sessions_setup import require_staff
from miniapp_api.settings import Settings
from tests.conftest import LiveServer, serve_app

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "staff password 1"
LOGIN = "/api/v1/staff/login"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_staff(
    live: LiveServer, *roles: str, totp: bool = False, display_name: str | None = None
) -> tuple[str, str | None]:
    name = f"s{uuid.uuid4().hex[:10]}"
    created = await staff.create_staff(
        name,
        PASSWORD,
        roles=roles or ("reviewer",),
        display_name=display_name,
        totp=totp,
        keyring=live.app.ctx.keyring,
        hasher=FAST,
    )
    secret = parse_qs(urlsplit(created.otp_uri).query)["secret"][0] if created.otp_uri else None
    return name, secret


async def login(
    http: httpx.AsyncClient, username: str, password: str = PASSWORD, otp: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"username": username, "password": password}
    if otp is not None:
        body["otp"] = otp
    return await http.post(LOGIN, json=body)


async def token_of(live: LiveServer, username: str, **kwargs: Any) -> str:
    r = await login(live.http, username, **kwargs)
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


async def test_login_then_me_shows_roles_and_permissions(live: LiveServer) -> None:
    name, _ = await new_staff(live, "reviewer", "hall_manager", display_name="王审核")
    r = await login(live.http, name)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"token", "expires_in", "roles"}
    assert body["roles"] == ["reviewer", "hall_manager"]
    assert body["expires_in"] == live.app.ctx.settings.staff_session_ttl
    assert body["token"].startswith("staff_")
    me = await live.http.get("/api/v1/staff/me", headers=auth(body["token"]))
    assert me.status_code == 200
    assert me.json() == {
        "username": name,
        "display_name": "王审核",
        "roles": ["reviewer", "hall_manager"],
        "permissions": ["grants.manage", "halls.manage", "submissions.review"],
    }
    event = await AuditEvent.filter(action="staff.login", target=f"staff:{name}").first()
    assert event is not None
    assert (event.outcome, event.request_id) == ("ok", r.headers["x-request-id"])


async def test_the_demo_reviewer_logs_in_with_the_demo_password(live: LiveServer) -> None:
    token = await token_of(live, "reviewer", password="suban-demo")
    me = (await live.http.get("/api/v1/staff/me", headers=auth(token))).json()
    assert (me["username"], me["display_name"], me["roles"]) == (
        "reviewer",
        "示例审核员",
        ["reviewer"],
    )


async def test_wrong_password_and_unknown_user_get_the_same_answer(live: LiveServer) -> None:
    name, _ = await new_staff(live)
    wrong = await login(live.http, name, "not the password")
    unknown = await login(live.http, f"ghost{uuid.uuid4().hex[:8]}", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "INVALID_CREDENTIALS"
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")


async def test_a_malformed_body_is_422(live: LiveServer) -> None:
    for body in ({}, {"username": "reviewer"}, {"username": "x", "password": "y", "otp": "12ab56"}):
        r = await live.http.post(LOGIN, json=body)
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "VALIDATION_FAILED"


async def test_totp_required_missing_wrong_right_and_replayed(live: LiveServer) -> None:
    name, secret = await new_staff(live, totp=True)
    assert secret is not None
    totp = pyotp.TOTP(secret)
    missing = await login(live.http, name)
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "OTP_REQUIRED")
    empty_box = await login(live.http, name, otp="")
    assert empty_box.json()["error"]["code"] == "OTP_REQUIRED"
    code = totp.now()
    wrong = await login(live.http, name, otp=f"{(int(code) + 1) % 10**6:06d}")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "INVALID_OTP")
    # Typed as the authenticator app shows it.
    ok = await login(live.http, name, otp=f"{code[:3]} {code[3:]}")
    assert ok.status_code == 200, ok.text
    replayed = await login(live.http, name, otp=code)
    assert (replayed.status_code, replayed.json()["error"]["code"]) == (401, "INVALID_OTP")


async def test_two_clients_hammering_get_exactly_five_tries(live: LiveServer) -> None:
    name, _ = await new_staff(live)
    async with (
        httpx.AsyncClient(base_url=live.base_url, timeout=30) as first,
        httpx.AsyncClient(base_url=live.base_url, timeout=30) as second,
    ):
        answers = await asyncio.gather(
            *(login(client, name, "not the password") for client in (first, second) * 8)
        )
    codes = [r.json()["error"]["code"] for r in answers]
    assert codes.count("INVALID_CREDENTIALS") == 5
    assert codes.count("ACCOUNT_LOCKED") == 11
    for r in answers:
        if r.status_code == 429:
            assert 0 < int(r.headers["retry-after"]) <= staff.LOCKOUT_SECONDS
    right = await login(live.http, name)
    assert right.status_code == 429
    assert right.json()["error"]["code"] == "ACCOUNT_LOCKED"
    assert "分钟后再试" in right.json()["error"]["message"]
    assert await AuditEvent.filter(action="staff.locked", target=f"staff:{name}").count() == 1


async def test_taxpayer_and_staff_tokens_do_not_cross(live: LiveServer) -> None:
    taxpayer = (await live.http.post("/api/v1/mp/login", json={"code": "sim:o-staff-x"})).json()
    name, _ = await new_staff(live)
    staff_token = await token_of(live, name)
    r = await live.http.get("/api/v1/staff/me", headers=auth(taxpayer["token"]))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "SESSION_EXPIRED")
    r = await live.http.post("/api/v1/staff/logout", headers=auth(taxpayer["token"]))
    assert r.status_code == 401
    for path in ("/api/v1/mp/me", "/api/v1/mp/logout"):
        r = await live.http.request(
            "GET" if path.endswith("me") else "POST", path, headers=auth(staff_token)
        )
        assert (r.status_code, r.json()["error"]["code"]) == (401, "SESSION_EXPIRED")
    # Both still work where they belong.
    assert (await live.http.get("/api/v1/staff/me", headers=auth(staff_token))).status_code == 200
    assert (
        await live.http.get("/api/v1/mp/me", headers=auth(taxpayer["token"]))
    ).status_code == 200


async def test_logout_ends_the_staff_session(live: LiveServer) -> None:
    name, _ = await new_staff(live)
    token = await token_of(live, name)
    assert (await live.http.post("/api/v1/staff/logout", headers=auth(token))).status_code == 204
    r = await live.http.get("/api/v1/staff/me", headers=auth(token))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "SESSION_EXPIRED")
    assert (await live.http.get("/api/v1/staff/me")).status_code == 401


async def test_a_deactivated_account_loses_its_sessions(live: LiveServer) -> None:
    name, _ = await new_staff(live)
    token = await token_of(live, name)
    await StaffUser.filter(username=name).update(active=False)
    r = await live.http.get("/api/v1/staff/me", headers=auth(token))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "ACCOUNT_INACTIVE")
    refused = await login(live.http, name)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "ACCOUNT_INACTIVE")
    await StaffUser.filter(username=name).update(active=True)
    assert (await live.http.get("/api/v1/staff/me", headers=auth(token))).status_code == 401


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[LiveServer]:
    """The app with one extra route that needs the staff.manage permission."""

    def prepare(app: Any) -> None:
        @app.get("/test/staff-manage")
        async def manage(request: Request) -> HTTPResponse:
            caller = await require_staff(request, "staff.manage")
            return json({"user": caller.user.username, "kind": caller.session.kind})

    async with serve_app(settings, prepare) as server:
        yield server


async def test_a_missing_permission_is_403_and_read_on_every_request(guarded: LiveServer) -> None:
    name, _ = await new_staff(guarded, "reviewer")
    token = await token_of(guarded, name)
    r = await guarded.http.get("/test/staff-manage", headers=auth(token))
    assert r.status_code == 403
    assert r.json() == {"error": {"code": "FORBIDDEN", "message": "无权进行此操作"}}
    # Roles come from the account on each request: a new role counts at once.
    await StaffUser.filter(username=name).update(roles=["reviewer", "admin"])
    r = await guarded.http.get("/test/staff-manage", headers=auth(token))
    assert r.status_code == 200
    assert r.json() == {"user": name, "kind": "staff"}
