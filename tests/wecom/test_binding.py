"""Binding a WeCom member to a real-name person with the mini-program's one-time code, the
one-to-one rule, unbinding from either side, and the guessing limit (issue 5: "binding codes
cannot be guessed within the rate limit (a test tries)")."""

from __future__ import annotations

import httpx

from auth.bind_codes import CODE_TTL, REDEEM_LIMIT
from auth.models import AuditEvent, Person, WeChatAccount
from miniapp_api.privacy import CONFIRM_PHRASE
from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import person_token
from tests.miniapp_api.test_mp_grants import fresh_id
from tests.miniapp_api.test_mp_realname import auth
from tests.wecom.test_oauth import member_token, new_userid, wecom_login, wlive
from wecom.models import WeComMember

__all__ = ["wlive"]  # the fixture, shared with test_oauth


async def fresh_person(live: LiveServer) -> str:
    """The mini-program token of a newly verified person (no registry roles)."""
    return await person_token(live, ("王测试", fresh_id()))


async def bind_code(live: LiveServer, mp_token: str) -> str:
    r = await live.http.post("/api/v1/mp/wecom-bind-code", headers=auth(mp_token))
    assert r.status_code == 200, r.text
    code: str = r.json()["code"]
    return code


async def bind(live: LiveServer, token: str, code: str) -> httpx.Response:
    return await live.http.post("/api/v1/wecom/bind", json={"code": code}, headers=auth(token))


async def person_id_of(live: LiveServer, mp_token: str) -> int:
    # The mp session was made before verification, so its own person_id may be empty.
    session = await live.app.ctx.sessions.get(mp_token, "mp")
    account = await WeChatAccount.get(id=session.account_id)
    person_id: int = account.person_id  # type: ignore[attr-defined]
    return person_id


async def bound_member(
    live: LiveServer, mp_token: str | None = None, userid: str | None = None
) -> tuple[str, str, int]:
    """(userid, bound member token, person id) through the real flow."""
    mp_token = mp_token or await fresh_person(live)
    userid = userid or new_userid()
    token = await member_token(live, userid)
    r = await bind(live, token, await bind_code(live, mp_token))
    assert r.status_code == 201, r.text
    bound: str = r.json()["token"]
    return userid, bound, await person_id_of(live, mp_token)


async def test_member_binds_with_the_code_and_gets_the_persons_session(
    wlive: LiveServer,
) -> None:
    mp_token = await fresh_person(wlive)
    person_id = await person_id_of(wlive, mp_token)
    userid = new_userid()
    unbound = await member_token(wlive, userid)

    r = await bind(wlive, unbound, await bind_code(wlive, mp_token))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["bound"] is True
    assert body["token"] != unbound
    member = await WeComMember.get(userid=userid)
    assert member.person_id == person_id  # type: ignore[attr-defined]
    assert await AuditEvent.exists(
        action="wecom.bind",
        actor_kind="wecom",
        actor_id=str(member.id),
        target=f"person:{person_id}",
    )
    # The unbound session gave way to the bound one.
    gone = await wlive.http.get("/api/v1/mp/me", headers=auth(unbound))
    assert gone.status_code == 401
    me = await wlive.http.get("/api/v1/mp/me", headers=auth(body["token"]))
    assert me.status_code == 200, me.text
    assert me.json()["person"]["name_masked"] == "王*试"


async def test_wrong_used_and_malformed_codes_are_422(wlive: LiveServer) -> None:
    mp_token = await fresh_person(wlive)
    code = await bind_code(wlive, mp_token)
    first = await member_token(wlive, new_userid())
    wrong = "000000" if code != "000000" else "000001"
    r = await bind(wlive, first, wrong)
    assert r.status_code == 422
    assert "code" in r.json()["error"]["fields"]
    assert (await bind(wlive, first, "12ab")).status_code == 422
    assert (await bind(wlive, first, code)).status_code == 201
    # Used: another member cannot take it again.
    second = await member_token(wlive, new_userid())
    used = await bind(wlive, second, code)
    assert used.status_code == 422


async def test_one_member_one_person(wlive: LiveServer) -> None:
    mp_token = await fresh_person(wlive)
    userid, bound_token, _ = await bound_member(wlive, mp_token)

    # The person already has a member: a second member cannot take the person.
    other = await member_token(wlive, new_userid())
    r = await bind(wlive, other, await bind_code(wlive, mp_token))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "ALREADY_BOUND"

    # The member is bound already: it cannot bind another person (with either its bound session
    # or a new login), and the other person's code is not burnt by trying.
    someone = await fresh_person(wlive)
    code = await bind_code(wlive, someone)
    assert (await bind(wlive, bound_token, code)).status_code == 409
    relogin = (await wecom_login(wlive, userid)).json()["token"]
    assert (await bind(wlive, relogin, code)).status_code == 409
    assert (await bind(wlive, await member_token(wlive, new_userid()), code)).status_code == 201


async def test_member_unbinds_itself_and_its_sessions_end(wlive: LiveServer) -> None:
    userid, token, person_id = await bound_member(wlive)
    second = (await wecom_login(wlive, userid)).json()["token"]
    member_id = (await WeComMember.get(userid=userid)).id

    r = await wlive.http.delete("/api/v1/wecom/bind", headers=auth(token))
    assert r.status_code == 204, r.text
    assert not await WeComMember.exists(userid=userid)
    for old in (token, second):
        assert (await wlive.http.get("/api/v1/mp/me", headers=auth(old))).status_code == 401
    assert await AuditEvent.exists(
        action="wecom.unbind", actor_kind="wecom", actor_id=str(member_id)
    )
    # Logging in again yields an unbound member, which has nothing to unbind.
    again = await wecom_login(wlive, userid)
    assert again.json()["bound"] is False
    nothing = await wlive.http.delete("/api/v1/wecom/bind", headers=auth(again.json()["token"]))
    assert nothing.status_code == 403
    assert nothing.json()["error"]["code"] == "WECOM_NOT_BOUND"
    assert await Person.exists(id=person_id)


async def test_person_unbinds_from_the_mini_program(wlive: LiveServer) -> None:
    mp_token = await fresh_person(wlive)
    _, member_token_, person_id = await bound_member(wlive, mp_token)

    r = await wlive.http.delete("/api/v1/mp/wecom-binding", headers=auth(mp_token))
    assert r.status_code == 204, r.text
    assert not await WeComMember.exists(person_id=person_id)
    assert (await wlive.http.get("/api/v1/mp/me", headers=auth(member_token_))).status_code == 401
    assert await AuditEvent.exists(
        action="wecom.unbind", actor_kind="mp", target=f"person:{person_id}"
    )
    again = await wlive.http.delete("/api/v1/mp/wecom-binding", headers=auth(mp_token))
    assert again.status_code == 404
    # The person may bind again (this time to another member).
    await bound_member(wlive, mp_token)


async def test_binding_codes_cannot_be_guessed_within_the_rate_limit(wlive: LiveServer) -> None:
    """A member guessing codes gets REDEEM_LIMIT tries per window, then 429 even for the right
    code. With a million codes and one live code per person, REDEEM_LIMIT tries find a given
    code with probability REDEEM_LIMIT / 10**6 per window (5 in a million), and the code itself
    lives CODE_TTL seconds, shorter than the window, so one window is all a guesser gets."""
    assert REDEEM_LIMIT.window >= CODE_TTL
    mp_token = await fresh_person(wlive)
    real = await bind_code(wlive, mp_token)
    guesser = await member_token(wlive, new_userid())

    allowed = 0
    limited: httpx.Response | None = None
    for guess in range(100):
        candidate = f"{guess:06d}"
        if candidate == real:
            continue
        r = await bind(wlive, guesser, candidate)
        if r.status_code == 429:
            limited = r
            break
        assert r.status_code == 422, r.text
        allowed += 1
    assert limited is not None, "never rate limited"
    assert allowed == REDEEM_LIMIT.limit
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.json()["error"]["code"] == "TOO_MANY_ATTEMPTS"
    assert allowed / 10**6 <= REDEEM_LIMIT.limit / 10**6

    # Even the right code is refused now, and refusing it did not spend it: the limit stops the
    # guesser without locking out the person, whose own member can still bind.
    right = await bind(wlive, guesser, real)
    assert right.status_code == 429
    owner = await member_token(wlive, new_userid())
    assert (await bind(wlive, owner, real)).status_code == 201


async def test_deleting_the_person_ends_the_members_session_and_binding(
    wlive: LiveServer,
) -> None:
    """PIPL art. 47 through WeCom too: the person's deletion request (made in the mini-program)
    ends the bound member's session and removes the binding, and a bind code handed out before
    is no longer good."""
    mp_token = await fresh_person(wlive)
    userid, member, person_id = await bound_member(wlive, mp_token)
    me = await wlive.http.get("/api/v1/mp/me", headers=auth(member))
    assert me.status_code == 200, me.text
    pending_code = await bind_code(wlive, mp_token)

    r = await wlive.http.post(
        "/api/v1/mp/me/deletion", json={"confirm": CONFIRM_PHRASE}, headers=auth(mp_token)
    )

    assert r.status_code == 202, r.text
    assert r.json()["removed"]["wecom_bindings"] == 1
    assert (await wlive.http.get("/api/v1/mp/me", headers=auth(member))).status_code == 401
    assert not await WeComMember.filter(userid=userid).exists()
    # The same member logging in again is a stranger: unbound, and the old code binds nothing.
    again = await wecom_login(wlive, userid)
    assert again.status_code == 200, again.text
    assert again.json()["bound"] is False
    stale = await bind(wlive, again.json()["token"], pending_code)
    assert stale.status_code == 422, stale.text
    assert not await WeComMember.filter(userid=userid, person_id=person_id).exists()
    await WeComMember.filter(userid=userid).delete()
