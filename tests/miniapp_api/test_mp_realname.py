"""Phone, real-name verification and /me through HTTP, against the mounted WeChat simulator and
the demo registry (API.md: 陈明 is legal rep of 91440103MA59D8QK16 and operator of
92440103MA5C3RTN8C)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx

from auth.models import AuditEvent, Person, WeChatAccount
from tests.conftest import LiveServer

CHEN = ("陈明", "44010319850612301X")
LIN = ("林芳", "440103199003152024")
# Valid resident ID numbers nobody in the registry holds.
OTHER_IDS = ["11010519491231002X", "110101199003077774", "110101199003070396"]
_openids = itertools.count()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(live: LiveServer, openid: str | None = None) -> str:
    openid = openid or f"o-rn-{next(_openids)}"
    r = await live.http.post("/api/v1/mp/login", json={"code": f"sim:{openid}"})
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def claim(name: str, id_number: str, face: tuple[str, str] | None = None) -> dict[str, Any]:
    seen_name, seen_id = face or (name, id_number)
    return {
        "name": name,
        "id_type": "resident_id",
        "id_number": id_number,
        "verify_result": f"sim:{seen_name}:{seen_id}",
    }


async def verify(live: LiveServer, token: str, body: dict[str, Any]) -> httpx.Response:
    return await live.http.post("/api/v1/mp/realname", json=body, headers=auth(token))


async def test_chen_ming_becomes_legal_rep_and_me_shows_only_masked_fields(
    live: LiveServer,
) -> None:
    token = await login(live)
    r = await verify(live, token, claim(*CHEN))
    assert r.status_code == 200, r.text
    person = r.json()["person"]
    assert person["name_masked"] == "陈*"
    assert person["id_number_masked"] == "4401**********301X"
    assert person["verified_at"]

    me = (await live.http.get("/api/v1/mp/me", headers=auth(token))).json()
    text = str(me)
    assert "陈明" not in text
    assert "44010319850612301X" not in text
    roles = {(a["taxpayer_id"], a["role"]) for a in me["authorizations"]}
    assert ("91440103MA59D8QK16", "legal_rep") in roles
    assert ("92440103MA5C3RTN8C", "legal_rep") in roles
    company = next(a for a in me["authorizations"] if a["taxpayer_id"] == "91440103MA59D8QK16")
    assert company["taxpayer_name"] == "广州荔湾示例贸易有限公司"
    assert "grants.manage" in company["permissions"]
    assert company["expires_at"] is None
    assert company["source"] == "registry"

    relog = await live.http.post(
        "/api/v1/mp/login", json={"code": f"sim:{await _openid_of(token, live)}"}
    )
    assert relog.json()["realname_verified"] is True


async def _openid_of(token: str, live: LiveServer) -> str:
    session = await live.app.ctx.sessions.get(token)
    account = await WeChatAccount.get(id=session.account_id)
    return account.openid


async def test_lin_fang_becomes_finance_head(live: LiveServer) -> None:
    token = await login(live)
    assert (await verify(live, token, claim(*LIN))).status_code == 200
    me = (await live.http.get("/api/v1/mp/me", headers=auth(token))).json()
    assert [(a["taxpayer_id"], a["role"]) for a in me["authorizations"]] == [
        ("91440103MA59D8QK16", "finance_head")
    ]


async def test_two_accounts_of_one_person_share_the_person(live: LiveServer) -> None:
    first, second = await login(live), await login(live)
    assert (await verify(live, first, claim("张三", OTHER_IDS[1]))).status_code == 200
    assert (await verify(live, second, claim("张三", OTHER_IDS[1]))).status_code == 200
    a = await WeChatAccount.get(id=(await live.app.ctx.sessions.get(first)).account_id)
    b = await WeChatAccount.get(id=(await live.app.ctx.sessions.get(second)).account_id)
    assert a.person_id == b.person_id is not None  # type: ignore[attr-defined]
    index = live.app.ctx.keyring.blind_index(OTHER_IDS[1], purpose="id_number")
    assert await Person.filter(id_number_index=index).count() == 1


async def test_a_bad_id_number_is_422_naming_the_field(live: LiveServer) -> None:
    token = await login(live)
    for bad in ("44010319850612301Y", "4401031985061230", "44010319851312301X", "abc"):
        r = await verify(live, token, claim("陈明", bad))
        assert r.status_code == 422, bad
        assert set(r.json()["error"]["fields"]) == {"id_number"}
    r = await verify(live, token, {"name": "陈明", "id_number": CHEN[1]})
    assert r.status_code == 422
    assert "verify_result" in r.json()["error"]["fields"]
    r = await verify(live, token, {**claim(*CHEN), "id_type": "driving_licence"})
    assert r.status_code == 422
    assert "id_type" in r.json()["error"]["fields"]


async def test_a_face_result_for_someone_else_is_409(live: LiveServer) -> None:
    token = await login(live)
    r = await verify(live, token, claim("陈明", CHEN[1], face=("林芳", LIN[1])))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "FACE_MISMATCH"
    me = (await live.http.get("/api/v1/mp/me", headers=auth(token))).json()
    assert me == {"person": None, "authorizations": []}
    # Right number, wrong name in the face result: still not this person.
    r = await verify(live, token, claim("陈明", CHEN[1], face=("陈敏", CHEN[1])))
    assert r.status_code == 409


async def test_a_face_result_from_another_wechat_user_is_409(live: LiveServer) -> None:
    token = await login(live)
    body = claim(*CHEN) | {"verify_result": f"sim:{CHEN[0]}:{CHEN[1]}:o-somebody-else"}
    r = await verify(live, token, body)
    assert r.status_code == 409


async def test_an_unknown_verify_result_is_422(live: LiveServer) -> None:
    token = await login(live)
    r = await verify(live, token, claim(*CHEN) | {"verify_result": "not-from-wechat"})
    assert r.status_code == 422
    assert "verify_result" in r.json()["error"]["fields"]


async def test_a_verified_account_cannot_become_someone_else(live: LiveServer) -> None:
    token = await login(live)
    assert (await verify(live, token, claim("李四", OTHER_IDS[2]))).status_code == 200
    r = await verify(live, token, claim(*LIN))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "ALREADY_VERIFIED"
    # Verifying again as the same person is fine.
    assert (await verify(live, token, claim("李四", OTHER_IDS[2]))).status_code == 200


async def test_attempts_are_limited_per_account_with_retry_after(live: LiveServer) -> None:
    token = await login(live)
    statuses = []
    for i in range(7):
        wrong = claim("王五", OTHER_IDS[i % 3], face=("赵六", OTHER_IDS[0]))
        statuses.append((await verify(live, token, wrong)).status_code)
    assert statuses == [409] * 5 + [429] * 2
    r = await verify(live, token, claim("王五", OTHER_IDS[0]))
    assert r.status_code == 429
    assert 0 < int(r.headers["retry-after"]) <= 600
    assert r.json()["error"]["code"] == "TOO_MANY_ATTEMPTS"
    # A malformed number is refused before counting: no attempt is spent on a typo.
    assert (await verify(live, token, claim("王五", "123"))).status_code == 422


async def test_attempts_are_limited_per_id_number_across_accounts(live: LiveServer) -> None:
    tokens = [await login(live) for _ in range(6)]
    target = OTHER_IDS[0]
    codes = [
        (await verify(live, t, claim("某人", target, face=("别人", target)))).status_code
        for t in tokens
    ]
    assert codes == [409] * 5 + [429]


async def test_parallel_attempts_let_exactly_the_limit_through(live: LiveServer) -> None:
    token = await login(live)
    wrong = claim("王五", OTHER_IDS[1], face=("赵六", OTHER_IDS[1]))
    answers = await asyncio.gather(*(verify(live, token, wrong) for _ in range(20)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [409] * 5 + [429] * 15


async def test_other_documents_need_counter_verification(live: LiveServer) -> None:
    token = await login(live)
    body = {"name": "JOHN SMITH", "id_type": "passport", "id_number": "e1234 5678"}
    r = await verify(live, token, body)
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["verification"] == "counter_required"
    assert answer["person"]["verified_at"] is None
    assert answer["person"]["id_number_masked"] == "E123*5678"
    me = (await live.http.get("/api/v1/mp/me", headers=auth(token))).json()
    assert me["person"]["verification"] == "counter_required"
    assert me["authorizations"] == []
    # The same number claimed from another account: same answer, but no binding to that person.
    other = await login(live)
    assert (await verify(live, other, body)).status_code == 202
    other_me = (await live.http.get("/api/v1/mp/me", headers=auth(other))).json()
    assert other_me["person"] is None
    hmt = {"name": "陈大文", "id_type": "hmt_residence_permit", "id_number": "810000199408230025"}
    assert (await verify(live, await login(live), hmt)).status_code == 422  # bad check digit
    hmt["id_number"] = hmt["id_number"][:17] + _check_digit(hmt["id_number"][:17])
    assert (await verify(live, await login(live), hmt)).status_code == 202


def _check_digit(first17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


async def test_phone_before_and_after_verification(live: LiveServer) -> None:
    token = await login(live)
    r = await live.http.post(
        "/api/v1/mp/phone", json={"code": "sim:13812341234"}, headers=auth(token)
    )
    assert r.status_code == 200
    assert r.json() == {"phone_masked": "138****1234"}
    me = (await live.http.get("/api/v1/mp/me", headers=auth(token))).json()
    assert me["person"]["phone_masked"] == "138****1234"
    assert (await verify(live, token, claim("钱七", OTHER_IDS[2]))).status_code in (200, 409)
    bad = await live.http.post("/api/v1/mp/phone", json={"code": "nope"}, headers=auth(token))
    assert bad.status_code == 422
    assert "code" in bad.json()["error"]["fields"]


async def test_the_pending_phone_moves_to_the_person(live: LiveServer) -> None:
    token = await login(live)
    headers = auth(token)
    await live.http.post("/api/v1/mp/phone", json={"code": "sim:13900001111"}, headers=headers)
    r = await verify(live, token, claim("孙八", "110101199003079876"))
    assert r.status_code == 200, r.text
    assert r.json()["person"]["phone_masked"] == "139****1111"
    account = await WeChatAccount.get(id=(await live.app.ctx.sessions.get(token)).account_id)
    assert account.phone_sealed is None
    person = await Person.get(id=account.person_id)  # type: ignore[attr-defined]
    assert person.phone_index == live.app.ctx.keyring.blind_index("13900001111", purpose="phone")


async def test_logout_everywhere_ends_every_session_of_the_person(live: LiveServer) -> None:
    first, second = await login(live), await login(live)
    for token in (first, second):
        assert (await verify(live, token, claim("周九", "110101199003071276"))).status_code == 200
    r = await live.http.post("/api/v1/mp/logout", json={"everywhere": True}, headers=auth(first))
    assert r.status_code == 204
    for token in (first, second):
        assert (await live.http.get("/api/v1/mp/me", headers=auth(token))).status_code == 401


async def test_identity_events_are_audited_without_personal_data(live: LiveServer) -> None:
    token = await login(live)
    await verify(live, token, claim("陈明", CHEN[1], face=("林芳", LIN[1])))
    await verify(live, token, claim(*CHEN))
    account_id = (await live.app.ctx.sessions.get(token)).account_id
    rows = await AuditEvent.filter(actor_kind="mp", actor_id=str(account_id)).order_by("id")
    assert [(e.action, e.outcome) for e in rows] == [
        ("mp.login", "ok"),
        ("realname.verify", "denied"),
        ("realname.verify", "ok"),
    ]
    assert rows[1].details == {"reason": "face_mismatch"}
    assert all(e.request_id for e in rows)
    dump = str([(e.target, e.details) for e in rows])
    assert CHEN[1] not in dump
    assert "陈明" not in dump


async def test_a_wecom_bind_code_needs_real_name_verification(live: LiveServer) -> None:
    token = await login(live)
    r = await live.http.post("/api/v1/mp/wecom-bind-code", headers=auth(token))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "REALNAME_REQUIRED"
    assert (await verify(live, token, claim(*LIN))).status_code == 200
    r = await live.http.post("/api/v1/mp/wecom-bind-code", headers=auth(token))
    assert r.status_code == 200
    body = r.json()
    assert len(body["code"]) == 6
    assert body["expires_in"] == 300
