"""Staff grant and revoke on a taxpayer's request; taxpayer tokens do not reach these routes."""

from __future__ import annotations

from auth.models import AuditEvent
from tests.conftest import LiveServer
from tests.miniapp_api.test_mp_grants import COMPANY, fresh_id, in_days, verified
from tests.miniapp_api.test_mp_realname import CHEN, auth


async def staff_token(live: LiveServer) -> str:
    r = await live.http.post(
        "/api/v1/staff/login", json={"username": "reviewer", "password": "suban-demo"}
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


async def test_staff_grant_then_the_grantee_confirms_and_staff_revoke(live: LiveServer) -> None:
    staff = await staff_token(live)
    clerk_id = fresh_id()
    body = {"name": "杨九", "id_number": clerk_id, "role": "tax_clerk", "expires_at": in_days(10)}
    r = await live.http.post(
        f"/api/v1/staff/taxpayers/{COMPANY}/grants", json=body, headers=auth(staff)
    )
    assert r.status_code == 201, r.text
    grant_id = r.json()["grant_id"]
    clerk = await verified(live, "杨九", clerk_id)
    confirmed = await live.http.post(f"/api/v1/mp/grants/{grant_id}/confirm", headers=auth(clerk))
    assert confirmed.json()["status"] == "active"
    listed = await live.http.get(f"/api/v1/staff/taxpayers/{COMPANY}/grants", headers=auth(staff))
    assert grant_id in [g["grant_id"] for g in listed.json()]
    r = await live.http.delete(
        f"/api/v1/staff/taxpayers/{COMPANY}/grants/{grant_id}", headers=auth(staff)
    )
    assert r.status_code == 204
    me = (await live.http.get("/api/v1/mp/me", headers=auth(clerk))).json()
    assert me["authorizations"] == []
    events = await AuditEvent.filter(target=f"taxpayer:{COMPANY}:grant:{grant_id}").order_by("id")
    assert [(e.action, e.actor_kind) for e in events] == [
        ("grant.create", "staff"),
        ("grant.confirm", "mp"),
        ("grant.revoke", "staff"),
    ]


async def test_taxpayers_cannot_use_staff_grant_routes(live: LiveServer) -> None:
    boss = await verified(live, *CHEN)
    body = {"name": "朱十", "id_number": fresh_id(), "role": "invoicer", "expires_at": in_days(5)}
    r = await live.http.post(
        f"/api/v1/staff/taxpayers/{COMPANY}/grants", json=body, headers=auth(boss)
    )
    assert r.status_code == 401
    staff = await staff_token(live)
    r = await live.http.post(
        "/api/v1/staff/taxpayers/91110000MA00000000/grants", json=body, headers=auth(staff)
    )
    assert r.status_code == 404
