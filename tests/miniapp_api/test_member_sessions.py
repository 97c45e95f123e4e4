"""A bound WeCom member's session on the mini-program's routes carries the person's rights (issue
5, item 3): /me, filing, drafts, reading submissions, with actor kind "wecom"; what needs the
WeChat account (phone, real-name verification) stays in the mini-program; unbound members and
other kinds of session are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from auth.models import Person
from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import COMPANY, filed, person_token, reviewer_token
from tests.miniapp_api.test_mp_realname import CHEN, auth, claim
from tests.wecom.test_binding import bound_member, person_id_of
from tests.wecom.test_oauth import member_token, new_userid, wlive
from wecom.models import WeComMember

__all__ = ["wlive"]


@pytest.fixture
async def chen_member(wlive: LiveServer) -> AsyncIterator[tuple[str, str, str, int]]:
    """陈明 (legal rep of COMPANY) bound to a fresh member: (mp token, userid, member token,
    person id). Other tests bind 陈明 too, so his previous member is cleared before and after."""
    mp_token = await person_token(wlive, CHEN)
    await WeComMember.filter(person_id=await person_id_of(wlive, mp_token)).delete()
    userid, token, person_id = await bound_member(wlive, mp_token)
    try:
        yield mp_token, userid, token, person_id
    finally:
        await WeComMember.filter(person_id=person_id).delete()


async def test_member_sees_the_persons_rights_in_me(
    wlive: LiveServer, chen_member: tuple[str, str, str, int]
) -> None:
    mp_token, _, token, _ = chen_member
    from_wecom = await wlive.http.get("/api/v1/mp/me", headers=auth(token))
    from_mp = await wlive.http.get("/api/v1/mp/me", headers=auth(mp_token))
    assert from_wecom.status_code == 200, from_wecom.text
    assert from_wecom.json() == from_mp.json()
    roles = {(a["taxpayer_id"], a["role"]) for a in from_wecom.json()["authorizations"]}
    assert (COMPANY, "legal_rep") in roles


async def test_member_files_and_reads_as_the_person_with_actor_wecom(
    wlive: LiveServer, chen_member: tuple[str, str, str, int]
) -> None:
    mp_token, userid, token, person_id = chen_member
    submission = await filed(wlive, token, taxpayer_id=COMPANY)
    member = await WeComMember.get(userid=userid)
    detail = await wlive.http.get(f"/api/v1/mp/submissions/{submission['id']}", headers=auth(token))
    assert detail.status_code == 200, detail.text
    timeline = detail.json()["timeline"]
    assert timeline[0]["actor_kind"] == "wecom"
    # The same person in the mini-program sees the member's filing as their own.
    seen = await wlive.http.get(
        f"/api/v1/mp/submissions/{submission['id']}", headers=auth(mp_token)
    )
    assert seen.status_code == 200
    listed = await wlive.http.get("/api/v1/mp/submissions", headers=auth(token))
    assert listed.status_code == 200
    assert submission["id"] in {s["id"] for s in listed.json()["items"]}
    drafts = await wlive.http.get("/api/v1/mp/drafts", headers=auth(token))
    assert drafts.status_code == 200, drafts.text
    assert member.person_id == person_id  # type: ignore[attr-defined]
    assert await Person.exists(id=person_id)


async def test_wechat_account_routes_are_mini_program_only(
    wlive: LiveServer, chen_member: tuple[str, str, str, int]
) -> None:
    _, _, token, _ = chen_member
    phone = await wlive.http.post(
        "/api/v1/mp/phone", json={"code": "sim:13800138000"}, headers=auth(token)
    )
    assert phone.status_code == 403
    assert phone.json()["error"]["code"] == "MINIPROGRAM_ONLY"
    realname = await wlive.http.post("/api/v1/mp/realname", json=claim(*CHEN), headers=auth(token))
    assert realname.status_code == 403
    assert realname.json()["error"]["code"] == "MINIPROGRAM_ONLY"
    # Logging this session out is fine; it needs no WeChat account.
    out = await wlive.http.post("/api/v1/mp/logout", headers=auth(token))
    assert out.status_code == 204
    assert (await wlive.http.get("/api/v1/mp/me", headers=auth(token))).status_code == 401


async def test_unbound_member_and_other_kinds_are_refused(wlive: LiveServer) -> None:
    unbound = await member_token(wlive, new_userid())
    for path in ("/api/v1/mp/me", "/api/v1/mp/submissions", "/api/v1/mp/drafts"):
        r = await wlive.http.get(path, headers=auth(unbound))
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "WECOM_NOT_BOUND"
    # A staff token is unknown to the mini-program's routes, a member token to the staff's.
    staff = await reviewer_token(wlive)
    assert (await wlive.http.get("/api/v1/mp/me", headers=auth(staff))).status_code == 401
    assert (await wlive.http.get("/api/v1/staff/me", headers=auth(unbound))).status_code == 401
    made_up = "wecom_" + "A" * 43
    assert (await wlive.http.get("/api/v1/mp/me", headers=auth(made_up))).status_code == 401
