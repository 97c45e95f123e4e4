"""Session tokens (issue 9 item 4): dead after logout, dead with a deactivated staff account, never
chosen by the client (session fixation), new on every login, and never written to logs, Redis
keys, the audit trail or a URL."""

from __future__ import annotations

import logging
import secrets
import uuid

import pytest

from auth.models import AuditEvent, StaffUser
from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import person_token
from tests.miniapp_api.test_mp_realname import auth, claim, login, verify
from tests.miniapp_api.test_staff_routes import new_staff, token_of
from tests.security.world import resident_id
from tests.wecom.test_oauth import member_token, new_userid, start

MP_ME = "/api/v1/mp/me"
STAFF_ME = "/api/v1/staff/me"


async def _status(live: LiveServer, path: str, token: str) -> int:
    return (await live.http.get(path, headers=auth(token))).status_code


async def test_an_mp_token_is_dead_after_logout(live: LiveServer) -> None:
    token = await person_token(live, ("登出甲", resident_id()))
    other = await person_token(live, ("登出乙", resident_id()))
    assert await _status(live, MP_ME, token) == 200
    assert (await live.http.post("/api/v1/mp/logout", headers=auth(token))).status_code == 204
    for path in (MP_ME, "/api/v1/mp/submissions", "/api/v1/mp/drafts"):
        r = await live.http.get(path, headers=auth(token))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "SESSION_EXPIRED"), path
    assert (await live.http.post("/api/v1/mp/logout", headers=auth(token))).status_code == 401
    # Only that session ended.
    assert await _status(live, MP_ME, other) == 200


async def test_a_staff_token_is_dead_after_logout(live: LiveServer) -> None:
    name, _ = await new_staff(live)
    token = await token_of(live, name)
    assert await _status(live, "/api/v1/staff/submissions", token) == 200
    assert (await live.http.post("/api/v1/staff/logout", headers=auth(token))).status_code == 204
    for path in (STAFF_ME, "/api/v1/staff/submissions", "/api/v1/staff/audit"):
        assert await _status(live, path, token) == 401, path


async def test_a_deactivated_staff_accounts_token_is_dead_for_good(live: LiveServer) -> None:
    name, _ = await new_staff(live, "reviewer", "auditor")
    token = await token_of(live, name)
    await StaffUser.filter(username=name).update(active=False)
    for path in ("/api/v1/staff/submissions", STAFF_ME):
        assert await _status(live, path, token) == 401, path
    await StaffUser.filter(username=name).update(active=True)
    assert await _status(live, "/api/v1/staff/submissions", token) == 401


def _invented() -> list[str]:
    random = secrets.token_urlsafe(32)
    return [
        f"mp_{random}",
        f"staff_{random}",
        f"wecom_{random}",
        random,
        "mp_",
        "null",
        "undefined",
        "mp_" + "A" * 4000,
    ]


async def test_invented_tokens_are_refused_and_never_adopted(live: LiveServer) -> None:
    for invented in _invented():
        for path in (MP_ME, STAFF_ME):
            r = await live.http.get(path, headers=auth(invented))
            assert r.status_code == 401, (path, invented[:20])
        # A login carrying an invented token (planted by an attacker) issues a token of its own
        # and the planted one stays worthless.
        openid = f"o-fix-{uuid.uuid4().hex[:12]}"
        r = await live.http.post(
            "/api/v1/mp/login", json={"code": f"sim:{openid}"}, headers=auth(invented)
        )
        assert r.status_code == 200, r.text
        issued = r.json()["token"]
        assert issued != invented
        assert await _status(live, MP_ME, invented) == 401
        assert await _status(live, MP_ME, issued) == 200
        r = await live.http.post(
            "/api/v1/staff/login",
            json={"username": "reviewer", "password": "suban-demo"},
            headers=auth(invented),
        )
        assert r.status_code == 200, r.text
        assert r.json()["token"] != invented
        assert await _status(live, STAFF_ME, invented) == 401


async def test_every_login_issues_a_new_token(live: LiveServer) -> None:
    openid = f"o-new-{uuid.uuid4().hex[:12]}"
    tokens = []
    for _ in range(3):
        r = await live.http.post(
            "/api/v1/mp/login",
            json={"code": f"sim:{openid}"},
            headers=auth(tokens[-1]) if tokens else {},
        )
        tokens.append(r.json()["token"])
    assert len(set(tokens)) == 3
    for token in tokens:
        kind, _, secret = token.partition("_")
        assert kind == "mp"
        assert len(secret) >= 43  # 32 random bytes, base64url
    # Verification raises what the account may do, but only on a session of its own login; a
    # session ended before it stays ended.
    assert (await live.http.post("/api/v1/mp/logout", headers=auth(tokens[0]))).status_code == 204
    assert (await verify(live, tokens[1], claim("固定丙", resident_id()))).status_code == 200
    assert await _status(live, MP_ME, tokens[0]) == 401
    relogin = await live.http.post(
        "/api/v1/mp/login", json={"code": f"sim:{openid}"}, headers=auth(tokens[0])
    )
    assert relogin.json()["token"] not in tokens
    assert await _status(live, MP_ME, tokens[0]) == 401

    staff_tokens = {
        (
            await live.http.post(
                "/api/v1/staff/login", json={"username": "reviewer", "password": "suban-demo"}
            )
        ).json()["token"]
        for _ in range(2)
    }
    assert len(staff_tokens) == 2


async def test_tokens_are_not_taken_from_the_url(live: LiveServer) -> None:
    token = await login(live)
    assert await _status(live, MP_ME, token) == 200
    for name in ("token", "access_token", "authorization"):
        r = await live.http.get(MP_ME, params={name: token})
        assert r.status_code == 401, name
    r = await live.http.get(MP_ME, headers={"Authorization": token})  # no scheme
    assert r.status_code == 401
    r = await live.http.get(MP_ME, headers={"Authorization": f"Basic {token}"})
    assert r.status_code == 401
    r = await live.http.get(MP_ME, headers={"Cookie": f"token={token}; session={token}"})
    assert r.status_code == 401


async def test_tokens_never_reach_logs_redis_keys_audit_or_urls(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Earlier tests may have run the service's logging set-up, which raises some loggers above
    # DEBUG (httpx, the database drivers) and may leave others not propagating to the root,
    # where caplog listens: open every logger to DEBUG for this test and listen on the quiet ones.
    loggers = [
        logging.getLogger(name)
        for name, logger in list(logging.root.manager.loggerDict.items())
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        caplog.set_level(logging.DEBUG, logger=logger.name)
    quiet = [logger for logger in loggers if not logger.propagate]
    for logger in quiet:
        logger.addHandler(caplog.handler)
    try:
        await _tokens_stay_out(live, caplog)
    finally:
        for logger in quiet:
            logger.removeHandler(caplog.handler)


async def _tokens_stay_out(live: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    tokens: list[str] = []
    mp = await login(live)
    tokens.append(mp)
    assert (await verify(live, mp, claim("日志丁", resident_id()))).status_code == 200
    await live.http.get(MP_ME, headers=auth(mp))
    await live.http.get("/api/v1/mp/submissions/999999", headers=auth(mp))  # a 404, logged
    name, _ = await new_staff(live)
    staff = await token_of(live, name)
    tokens.append(staff)
    await live.http.get("/api/v1/staff/submissions", headers=auth(staff))
    await live.http.get(MP_ME, headers=auth(staff))  # a refused token, logged as such
    userid = new_userid()
    state = await start(live)
    member = await member_token(live, userid)
    tokens.append(member)
    for token, path in ((mp, "/api/v1/mp/logout"), (staff, "/api/v1/staff/logout")):
        r = await live.http.post(path, headers=auth(token))
        assert r.status_code == 204
        # No login or logout answer sets a cookie: the token lives only where the client put it.
        assert "set-cookie" not in r.headers

    logged = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.__dict__!r}" for record in caplog.records
    )
    assert caplog.records, "nothing was logged: the capture is not working"
    keys = [
        key.decode() if isinstance(key, bytes) else key
        async for key in live.app.ctx.redis.scan_iter()
    ]
    audit = str(await AuditEvent.all().values_list("target", "details"))
    for token in tokens:
        secret = token.partition("_")[2]
        assert secret not in logged
        assert not [k for k in keys if secret in k]
        assert secret not in audit
        assert secret not in state
