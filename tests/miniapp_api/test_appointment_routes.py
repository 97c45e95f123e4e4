"""Slots, appointments and two-way invitations through HTTP (API.md "Hall" and "Staff"), and the
reminder and no-show jobs as the runners call them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import time, timedelta
from typing import Any

import pytest

from auth import clock
from auth.models import AuditEvent, OutboxMessage, WeChatAccount
from hall.models import Appointment, Invitation, Slot
from miniapp_api import jobs
from tests.conftest import LiveServer
from tests.hall.appointment_helpers import (
    in_days,
    make_slot,
    own_hall,
    resident_id,
    verified_person,
)
from tests.miniapp_api.filing_helpers import person_token, reviewer_token
from tests.miniapp_api.test_mp_realname import auth, login
from tests.miniapp_api.test_staff_routes import new_staff, token_of

MP = "/api/v1/mp"


@pytest.fixture
async def hall_id(live: LiveServer) -> AsyncIterator[str]:
    async with own_hall() as hall_id:
        yield hall_id


async def _someone(live: LiveServer, number: str | None = None) -> str:
    return await person_token(live, ("测试人", number or resident_id()))


async def _book(live: LiveServer, token: str, slot_id: int, **body: Any) -> Any:
    return await live.http.post(
        f"{MP}/appointments", json={"slot_id": slot_id, **body}, headers=auth(token)
    )


async def _remaining(live: LiveServer, hall_id: str, slot: Slot) -> int:
    r = await live.http.get(
        f"/api/v1/halls/{hall_id}/slots", params={"date": slot.date.isoformat()}
    )
    assert r.status_code == 200, r.text
    found = [s for s in r.json() if s["slot_id"] == slot.id]
    assert len(found) == 1
    remaining: int = found[0]["remaining"]
    return remaining


async def test_booking_needs_realname_and_moves_what_remains(
    live: LiveServer, hall_id: str
) -> None:
    slot = await make_slot(hall_id, in_days(2), capacity=2)
    unverified = await login(live)
    r = await _book(live, unverified, slot.id)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "REALNAME_REQUIRED"
    assert (
        await live.http.post(f"{MP}/appointments", json={"slot_id": slot.id})
    ).status_code == 401

    me, other = await _someone(live), await _someone(live)
    assert await _remaining(live, hall_id, slot) == 2
    r = await _book(live, me, slot.id, note="代开发票，带合同")
    assert r.status_code == 201, r.text
    body = r.json()
    assert {"appointment_id", "slot", "status"} <= set(body)
    assert body["status"] == "booked"
    assert body["slot"]["slot_id"] == slot.id
    assert (body["slot"]["start"], body["slot"]["end"]) == ("10:00", "11:00")
    assert await _remaining(live, hall_id, slot) == 1

    again = await _book(live, me, slot.id)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ALREADY_BOOKED"
    assert await _remaining(live, hall_id, slot) == 1

    mine = (await live.http.get(f"{MP}/appointments", headers=auth(me))).json()
    assert [(a["appointment_id"], a["note"]) for a in mine] == [
        (body["appointment_id"], "代开发票，带合同")
    ]
    path = f"{MP}/appointments/{body['appointment_id']}"
    assert (await live.http.delete(path, headers=auth(other))).status_code == 404
    assert (await live.http.delete(path, headers=auth(me))).status_code == 204
    assert await _remaining(live, hall_id, slot) == 2
    twice = await live.http.delete(path, headers=auth(me))
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "NOT_CANCELLABLE")
    mine = (await live.http.get(f"{MP}/appointments", headers=auth(me))).json()
    assert mine[0]["status"] == "cancelled"


async def test_a_full_slot_and_other_refusals(live: LiveServer, hall_id: str) -> None:
    slot = await make_slot(hall_id, in_days(2), capacity=3, reserved=2)
    first, second = await _someone(live), await _someone(live)
    assert (await _book(live, first, slot.id)).status_code == 201
    full = await _book(live, second, slot.id)
    assert (full.status_code, full.json()["error"]["code"]) == (409, "SLOT_FULL")
    assert await _remaining(live, hall_id, slot) == 0
    assert (await _book(live, second, 987_654_321)).status_code == 404
    # A taxpayer the person holds no role on is as unknown as one that does not exist.
    other = await make_slot(hall_id, in_days(2), time(14), time(15))
    r = await _book(live, second, other.id, taxpayer_id="91440103MA59D8QK16")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "TAXPAYER_NOT_FOUND")
    r = await live.http.post(f"{MP}/appointments", json={"slot_id": "x"}, headers=auth(second))
    assert (r.status_code, list(r.json()["error"]["fields"])) == (422, ["slot_id"])


async def test_public_slot_list_errors(live: LiveServer, hall_id: str) -> None:
    day = in_days(2).isoformat()
    r = await live.http.get("/api/v1/halls/no-such-hall/slots", params={"date": day})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "HALL_NOT_FOUND")
    r = await live.http.get(f"/api/v1/halls/{hall_id}/slots", params={"date": "2026-13-01"})
    assert r.status_code == 422
    assert "date" in r.json()["error"]["fields"]
    assert (await live.http.get(f"/api/v1/halls/{hall_id}/slots")).status_code == 422
    await make_slot(hall_id, in_days(2), category="filing")
    only = await live.http.get(
        f"/api/v1/halls/{hall_id}/slots", params={"date": day, "category": "invoice"}
    )
    assert only.json() == []


async def test_staff_create_a_slot_invite_and_the_person_accepts(
    live: LiveServer, hall_id: str
) -> None:
    manager, _ = await new_staff(live, "hall_manager")
    staff = auth(await token_of(live, manager))
    day = in_days(3).isoformat()
    slot_body = {
        "date": day,
        "start": "09:00",
        "end": "10:00",
        "category": "invoice",
        "capacity": 4,
        "reserved": 2,
    }
    path = f"/api/v1/staff/halls/{hall_id}/slots"
    reviewer = await reviewer_token(live)
    assert (await live.http.post(path, json=slot_body, headers=auth(reviewer))).status_code == 403
    r = await live.http.post(path, json=slot_body, headers=staff)
    assert r.status_code == 201, r.text
    slot_id = r.json()["slot_id"]
    assert r.json()["remaining"] == 2
    dup = await live.http.post(path, json=slot_body, headers=staff)
    assert (dup.status_code, dup.json()["error"]["code"]) == (409, "SLOT_EXISTS")
    bad = await live.http.post(
        path, json=slot_body | {"end": "08:00", "category": "x"}, headers=staff
    )
    assert bad.status_code == 422
    assert set(bad.json()["error"]["fields"]) == {"end", "category"}
    listed = await live.http.get(path, params={"date": day}, headers=staff)
    assert [s["slot_id"] for s in listed.json()] == [slot_id]

    number = resident_id()
    guest = await _someone(live, number)
    invite = {"slot_id": slot_id, "id_number": number, "message": "请带上公章"}
    r = await live.http.post("/api/v1/staff/invitations", json=invite, headers=staff)
    assert r.status_code == 201, r.text
    invitation_id = r.json()["invitation_id"]
    assert r.json()["person"]["name_masked"] == "测*人"
    nobody = await live.http.post(
        "/api/v1/staff/invitations", json=invite | {"id_number": resident_id()}, headers=staff
    )
    assert (nobody.status_code, nobody.json()["error"]["code"]) == (404, "PERSON_NOT_FOUND")
    wrong = await live.http.post(
        "/api/v1/staff/invitations", json=invite | {"id_number": "123456789"}, headers=staff
    )
    assert wrong.status_code == 422
    notice = await OutboxMessage.get(dedupe_key=f"invitation:{invitation_id}:notice")
    assert notice.template == live.app.ctx.settings.subscribe_template_invitation
    assert await WeChatAccount.filter(openid=notice.recipient).exists()
    assert "公章" not in str(notice.payload)

    mine = (await live.http.get(f"{MP}/invitations", headers=auth(guest))).json()
    assert [(i["invitation_id"], i["status"], i["message"]) for i in mine] == [
        (invitation_id, "pending", "请带上公章")
    ]
    stranger = await _someone(live)
    accept = f"{MP}/invitations/{invitation_id}/accept"
    assert (await live.http.post(accept, headers=auth(stranger))).status_code == 404
    r = await live.http.post(accept, headers=auth(guest))
    assert r.status_code == 201, r.text
    assert (r.json()["source"], r.json()["status"]) == ("invitation", "booked")
    again = await live.http.post(accept, headers=auth(guest))
    assert (again.status_code, again.json()["error"]["code"]) == (409, "INVITATION_ANSWERED")

    # A second invitation, declined: its place goes back.
    other_number = resident_id()
    other = await _someone(live, other_number)
    r = await live.http.post(
        "/api/v1/staff/invitations",
        json={"slot_id": slot_id, "id_number": other_number},
        headers=staff,
    )
    assert r.status_code == 201, r.text
    declined = await live.http.post(
        f"{MP}/invitations/{r.json()['invitation_id']}/decline", headers=auth(other)
    )
    assert (declined.status_code, declined.json()["status"]) == (200, "declined")

    seen = await live.http.get(f"/api/v1/staff/slots/{slot_id}/invitations", headers=staff)
    assert seen.status_code == 200
    assert [i["status"] for i in seen.json()["invitations"]] == ["accepted", "declined"]
    assert (seen.json()["slot"]["invited"], seen.json()["slot"]["booked"]) == (1, 0)
    assert "测试人" not in seen.text
    staff_user = (await live.http.get("/api/v1/staff/me", headers=staff)).json()["username"]
    assert staff_user == manager
    actions = set(
        await AuditEvent.filter(actor_kind="staff", target__contains=f"slot:{slot_id}").values_list(
            "action", flat=True
        )
    )
    assert {"slot.create", "invitation.create", "invitation.list"} <= actions


async def test_reminder_job_writes_one_row_per_appointment_when_run_twice_at_once(
    live: LiveServer, hall_id: str
) -> None:
    slot = await make_slot(hall_id, in_days(1), capacity=5)
    ids = []
    for _ in range(3):
        r = await _book(live, await _someone(live), slot.id)
        assert r.status_code == 201, r.text
        ids.append(r.json()["appointment_id"])
    ctx = {"settings": live.app.ctx.settings}
    await asyncio.gather(jobs.remind_appointments(ctx), jobs.remind_appointments(ctx))
    await jobs.remind_appointments(ctx)
    for appointment_id in ids:
        rows = await OutboxMessage.filter(dedupe_key=f"appointment:{appointment_id}:reminder")
        assert len(rows) == 1
        assert rows[0].template == live.app.ctx.settings.subscribe_template_reminder
        assert rows[0].payload["data"]["time3"].endswith("10:00-11:00")  # type: ignore[index]
    assert await OutboxMessage.filter(dedupe_key__startswith="appointment:").count() >= 3


async def test_sweep_job_marks_no_shows_and_expires_invitations(
    live: LiveServer, hall_id: str
) -> None:
    ring = live.app.ctx.keyring
    past = await make_slot(hall_id, in_days(-1), capacity=3, reserved=1)
    person, _ = await verified_person(ring)
    guest, _ = await verified_person(ring)
    missed = await Appointment.create(
        slot_id=past.id, person_id=person.id, active_slot_id=past.id, status="booked"
    )
    await Slot.filter(id=past.id).update(booked=1, invited=1)
    lapsed = await Invitation.create(
        slot_id=past.id, person_id=guest.id, expires_at=clock.now() - timedelta(minutes=1)
    )
    await jobs.sweep_appointments({"settings": live.app.ctx.settings})
    got = await Appointment.get(id=missed.id)
    assert (got.status, got.active_slot_id) == ("no_show", None)
    assert (await Invitation.get(id=lapsed.id)).status == "expired"
    fresh = await Slot.get(id=past.id)
    # The missed place stays counted; the lapsed invitation's place went back.
    assert (fresh.booked, fresh.invited) == (1, 0)


async def test_openapi_lists_the_appointment_routes(live: LiveServer) -> None:
    paths = set((await live.http.get("/docs/openapi.json")).json()["paths"])
    assert {
        "/api/v1/halls/{hall_id}/slots",
        "/api/v1/mp/appointments",
        "/api/v1/mp/appointments/{appointment_id}",
        "/api/v1/mp/invitations/{invitation_id}/accept",
        "/api/v1/staff/halls/{hall_id}/slots",
        "/api/v1/staff/invitations",
        "/api/v1/staff/slots/{slot_id}/invitations",
    } <= paths
