"""A person's data export and deletion request through HTTP (PIPL art. 45, 47).

Every test uses people of its own (fresh ID numbers), never the demo's 陈明 and 林芳 except as
the legal representative who grants a role, and removes what it made.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from auth.models import AuditEvent, Grant, OutboxMessage, Person, WeChatAccount
from forms.models import Draft, Submission
from hall.models import Appointment, Slot
from miniapp_api import jobs
from miniapp_api.privacy import CONFIRM_PHRASE
from tests.conftest import LiveServer
from tests.hall.appointment_helpers import in_days, make_slot, own_hall, resident_id
from tests.miniapp_api.filing_helpers import filed, person_token, reviewer_token
from tests.miniapp_api.test_mp_grants import grant
from tests.miniapp_api.test_mp_grants import in_days as grant_days
from tests.miniapp_api.test_mp_realname import CHEN, auth, claim, login, verify

MP = "/api/v1/mp"


async def person_of(openid: str) -> int:
    """The person a WeChat account is verified as (a session still names the person it had at
    login: none)."""
    person_id: int = (await WeChatAccount.get(openid=openid)).person_id  # type: ignore[attr-defined]
    return person_id


class People:
    """The people a test made, removed at its end with everything that points at them."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.ids: set[int] = set()
        self.openids: set[str] = set()
        self.openid_of: dict[str, str] = {}

    async def new(self, name: str, phone: str | None = None) -> tuple[str, str, int]:
        """A verified person with a phone: (token, ID number, person id)."""
        number = resident_id()
        openid = f"o-pv-{uuid.uuid4().hex[:12]}"
        self.openids.add(openid)
        token = await login(self.live, openid)
        self.openid_of[token] = openid
        r = await verify(self.live, token, claim(name, number))
        assert r.status_code == 200, r.text
        if phone is not None:
            r = await self.live.http.post(
                f"{MP}/phone", json={"code": f"sim:{phone}"}, headers=auth(token)
            )
            assert r.status_code == 200, r.text
        person_id = await person_of(openid)
        self.ids.add(person_id)
        return token, number, person_id

    async def another_login(self, name: str, number: str) -> str:
        openid = f"o-pv-{uuid.uuid4().hex[:12]}"
        self.openids.add(openid)
        token = await login(self.live, openid)
        assert (await verify(self.live, token, claim(name, number))).status_code == 200
        self.ids.add(await person_of(openid))
        return token

    async def remove(self) -> None:
        ids = list(self.ids)
        await Submission.filter(applicant_id__in=ids).delete()
        await Draft.filter(person_id__in=ids).delete()
        await Appointment.filter(person_id__in=ids).delete()
        await Grant.filter(grantee_id__in=ids).delete()
        await OutboxMessage.filter(recipient__in=list(self.openids)).delete()
        await WeChatAccount.filter(openid__in=list(self.openids)).delete()
        await WeChatAccount.filter(person_id__in=ids).delete()
        await Person.filter(id__in=ids).delete()


@pytest.fixture
async def people(live: LiveServer) -> AsyncIterator[People]:
    made = People(live)
    try:
        yield made
    finally:
        await made.remove()


async def export(live: LiveServer, token: str) -> Any:
    return await live.http.get(f"{MP}/me/export", headers=auth(token))


async def delete_me(live: LiveServer, token: str, phrase: str = CONFIRM_PHRASE) -> Any:
    return await live.http.post(f"{MP}/me/deletion", json={"confirm": phrase}, headers=auth(token))


async def test_the_export_holds_the_callers_data_and_nobody_elses(
    live: LiveServer, people: People
) -> None:
    me, my_number, my_id = await people.new("冯导出", "13911112222")
    other, other_number, _ = await people.new("褚旁人", "13733334444")
    mine = await filed(live, me)
    await filed(live, other)
    r = await live.http.post(f"{MP}/drafts", json={"form_code": "proxy_invoice"}, headers=auth(me))
    assert r.status_code == 201, r.text

    r = await export(live, me)

    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["person"]["person_id"] == my_id
    assert (body["person"]["name"], body["person"]["id_number"], body["person"]["phone"]) == (
        "冯导出",
        my_number,
        "13911112222",
    )
    assert len(body["wechat_accounts"]) == 1
    assert body["wechat_accounts"][0]["openid"].startswith("o-pv-")
    assert [s["tracking_no"] for s in body["submissions"]] == [mine["tracking_no"]]
    assert body["submissions"][0]["data"]["buyer"]["name"] == "广州示例采购有限公司"
    assert body["submissions"][0]["timeline"]
    assert len(body["drafts"]) == 1
    actions = {e["action"] for e in body["audit_events"]}
    assert {"mp.login", "realname.verify", "phone.set"} <= actions
    text = r.text
    for theirs in ("褚旁人", other_number, "13733334444"):
        assert theirs not in text
    assert people.openid_of[other] not in text

    audited = await AuditEvent.filter(action="privacy.export", target=f"person:{my_id}")
    assert [e.outcome for e in audited] == ["ok"]
    assert my_number not in str([(e.target, e.details) for e in audited])


async def test_the_export_is_limited_to_three_an_hour(live: LiveServer, people: People) -> None:
    token, _, person_id = await people.new("卫限次")
    for _ in range(3):
        assert (await export(live, token)).status_code == 200
    r = await export(live, token)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "TOO_MANY_ATTEMPTS"
    assert int(r.headers["retry-after"]) > 0
    outcomes = await AuditEvent.filter(
        action="privacy.export", target=f"person:{person_id}"
    ).values_list("outcome", flat=True)
    assert sorted(outcomes) == ["denied", "ok", "ok", "ok"]


async def test_a_deletion_without_the_exact_phrase_is_422_and_changes_nothing(
    live: LiveServer, people: People
) -> None:
    token, _, person_id = await people.new("蒋确认", "13855556666")
    for body in ({"confirm": "删除"}, {"confirm": CONFIRM_PHRASE + " "}, {}):
        r = await live.http.post(f"{MP}/me/deletion", json=body, headers=auth(token))
        assert r.status_code == 422, r.text
        assert "confirm" in r.json()["error"]["fields"]
    assert (await live.http.get(f"{MP}/me", headers=auth(token))).status_code == 200
    assert (await Person.get(id=person_id)).phone_sealed is not None


async def test_a_deletion_keeps_tax_records_and_ends_every_session(
    live: LiveServer, people: People
) -> None:
    first, number, person_id = await people.new("沈删除", "13677778888")
    second = await people.another_login("沈删除", number)
    submission = await filed(live, first)
    r = await live.http.post(
        f"{MP}/drafts", json={"form_code": "proxy_invoice"}, headers=auth(first)
    )
    assert r.status_code == 201
    openids = [a.openid for a in await WeChatAccount.filter(person_id=person_id)]
    assert len(openids) == 2

    async with own_hall() as hall_id:
        slot = await make_slot(hall_id, in_days(3), capacity=3)
        booked = await live.http.post(
            f"{MP}/appointments", json={"slot_id": slot.id, "note": "带合同"}, headers=auth(first)
        )
        assert booked.status_code == 201, booked.text
        assert (await Slot.get(id=slot.id)).booked == 1

        r = await delete_me(live, second)

        assert r.status_code == 202, r.text
        assert (await Slot.get(id=slot.id)).booked == 0
        assert not await Appointment.filter(person_id=person_id).exists()
    body = r.json()
    removed = body["removed"]
    assert removed["drafts"] == 1
    assert removed["wechat_accounts"] == 2
    assert removed["appointments_cancelled"] == 1
    assert removed["phone"] == 1
    assert removed["identity"] == 0
    kept = {k["what"]: k for k in body["kept"]}
    assert kept["submissions"]["count"] == 1
    assert "第二十九条" in kept["submissions"]["why"]
    assert {"identity", "audit_trail"} <= set(kept)
    assert body["next_login"]

    for token in (first, second):
        assert (await live.http.get(f"{MP}/me", headers=auth(token))).status_code == 401

    row = (
        await Person.filter(id=person_id).values(
            "phone_sealed", "phone_index", "id_number_index", "name_sealed", "id_number_sealed"
        )
    )[0]
    assert row["phone_sealed"] is row["phone_index"] is row["id_number_index"] is None
    # Kept, sealed, for the tax records.
    assert row["name_sealed"]
    assert row["id_number_sealed"]
    assert not await WeChatAccount.filter(openid__in=openids).exists()
    assert not await Draft.filter(person_id=person_id).exists()

    staff = await reviewer_token(live)
    seen = await live.http.get(f"/api/v1/staff/submissions/{submission['id']}", headers=auth(staff))
    assert seen.status_code == 200, seen.text
    assert seen.json()["tracking_no"] == submission["tracking_no"]

    # The same WeChat user again: a fresh account that must verify again, and verifying makes a
    # new person, with none of the kept filings.
    again = await login(live, openids[0])
    me = (await live.http.get(f"{MP}/me", headers=auth(again))).json()
    assert me["person"] is None
    assert (await verify(live, again, claim("沈删除", number))).status_code == 200
    new_person = await person_of(openids[0])
    people.ids.add(new_person)
    assert new_person != person_id
    listed = await live.http.get(f"{MP}/submissions", headers=auth(again))
    assert listed.status_code == 200
    assert submission["tracking_no"] not in listed.text

    audited = await AuditEvent.filter(action="privacy.delete", target=f"person:{person_id}")
    assert len(audited) == 1
    assert audited[0].details["kept_submissions"] == 1
    assert number not in str(audited[0].details)


async def test_a_person_without_filings_keeps_no_personal_data(
    live: LiveServer, people: People
) -> None:
    token, number, person_id = await people.new("韩无档", "13599990000")
    boss = await person_token(live, CHEN)
    pending = await grant(
        live,
        boss,
        {"name": "韩无档", "id_number": number, "role": "tax_clerk", "expires_at": grant_days(30)},
    )
    assert pending.status_code == 201, pending.text

    r = await delete_me(live, token)

    assert r.status_code == 202, r.text
    assert r.json()["removed"]["identity"] == 1
    assert r.json()["removed"]["pending_grants_to_them"] == 1
    assert "submissions" not in {k["what"] for k in r.json()["kept"]}
    row = (await Person.filter(id=person_id).values())[0]
    personal = ("name_sealed", "id_number_sealed", "id_number_index", "phone_sealed", "phone_index")
    assert all(row[column] is None for column in personal)
    assert row["id_type"] is None
    assert not await Grant.filter(id=pending.json()["grant_id"]).exists()
    assert (await live.http.get(f"{MP}/me", headers=auth(token))).status_code == 401
    assert await AuditEvent.filter(action="privacy.delete", target=f"person:{person_id}").exists()


async def test_an_account_never_verified_can_delete_its_pending_phone(live: LiveServer) -> None:
    openid = f"o-pv-{uuid.uuid4().hex[:12]}"
    token = await login(live, openid)
    r = await live.http.post(f"{MP}/phone", json={"code": "sim:13411112222"}, headers=auth(token))
    assert r.status_code == 200
    r = await delete_me(live, token)
    assert r.status_code == 202, r.text
    assert r.json()["removed"]["pending_phones"] == 1
    assert not await WeChatAccount.filter(openid=openid).exists()
    assert (await live.http.get(f"{MP}/me", headers=auth(token))).status_code == 401


async def test_the_purge_job_runs_hourly_and_is_audited_with_counts_only(
    live: LiveServer,
) -> None:
    job = jobs.job_named("purge_expired")
    assert job.every_minutes == 60
    before = await AuditEvent.filter(action="retention.purge").count()
    await job.function({"settings": live.app.ctx.settings})
    events = await AuditEvent.filter(action="retention.purge").order_by("-id")
    # The embedded runner may have run it at start-up as well.
    assert len(events) > before
    details = events[0].details
    assert {"attachments", "drafts", "outbox_messages", "pending_phones"} <= set(details)
    assert all(isinstance(v, int) for v in details.values())
    assert events[0].actor_kind == "system"


async def test_the_privacy_routes_are_in_the_openapi_document(live: LiveServer) -> None:
    r = await live.http.get("/docs/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/v1/mp/me/export" in paths
    assert "/api/v1/mp/me/deletion" in paths
