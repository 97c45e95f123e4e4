"""Grants through HTTP: a legal rep grants, the grantee confirms after real-name verification, the
grant shows in /me with its permissions, revoking or expiry ends it; who may do what (403/404)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from auth.models import AuditEvent, Grant
from tests.conftest import LiveServer
from tests.miniapp_api.test_mp_realname import CHEN, LIN, auth, claim, login, verify

COMPANY = "91440103MA59D8QK16"
SHOP = "92440103MA5C3RTN8C"
_ids = itertools.count(1)


def fresh_id() -> str:
    """A valid resident ID number not used by any other test."""
    body = f"11010119900307{next(_ids) % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


async def verified(live: LiveServer, name: str, id_number: str) -> str:
    token = await login(live)
    r = await verify(live, token, claim(name, id_number))
    assert r.status_code == 200, r.text
    return token


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def grant(live: LiveServer, token: str, body: dict[str, Any], taxpayer: str = COMPANY) -> Any:
    return await live.http.post(
        f"/api/v1/mp/taxpayers/{taxpayer}/grants", json=body, headers=auth(token)
    )


async def me(live: LiveServer, token: str) -> Any:
    return (await live.http.get("/api/v1/mp/me", headers=auth(token))).json()


async def test_grant_confirm_use_and_revoke(live: LiveServer) -> None:
    boss = await verified(live, *CHEN)
    clerk_id = fresh_id()
    r = await grant(
        live,
        boss,
        {"name": "吴十", "id_number": clerk_id, "role": "tax_clerk", "expires_at": in_days(30)},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "pending"
    assert created["grantee"] == {"name_masked": "吴*"}
    assert "returns.file" in created["permissions"]
    assert "invoices.issue" not in created["permissions"]
    assert clerk_id not in r.text

    clerk = await verified(live, "吴十", clerk_id)
    assert (await me(live, clerk))["authorizations"] == []  # not before confirming
    mine = (await live.http.get("/api/v1/mp/grants", headers=auth(clerk))).json()
    assert [g["grant_id"] for g in mine] == [created["grant_id"]]
    r = await live.http.post(
        f"/api/v1/mp/grants/{created['grant_id']}/confirm", headers=auth(clerk)
    )
    assert r.status_code == 200
    assert r.json()["status"] == "active"
    auths = (await me(live, clerk))["authorizations"]
    assert [(a["taxpayer_id"], a["role"], a["source"]) for a in auths] == [
        (COMPANY, "tax_clerk", "grant")
    ]
    assert auths[0]["expires_at"] is not None
    # Confirming twice is a conflict, not a second grant.
    again = await live.http.post(
        f"/api/v1/mp/grants/{created['grant_id']}/confirm", headers=auth(clerk)
    )
    assert again.status_code == 409

    listed = await live.http.get(f"/api/v1/mp/taxpayers/{COMPANY}/grants", headers=auth(boss))
    assert created["grant_id"] in [g["grant_id"] for g in listed.json()]
    r = await live.http.delete(
        f"/api/v1/mp/taxpayers/{COMPANY}/grants/{created['grant_id']}", headers=auth(boss)
    )
    assert r.status_code == 204
    assert (await me(live, clerk))["authorizations"] == []
    actions = await AuditEvent.filter(
        target=f"taxpayer:{COMPANY}:grant:{created['grant_id']}"
    ).values_list("action", flat=True)
    assert list(actions) == ["grant.create", "grant.confirm", "grant.revoke"]


async def test_finance_head_may_grant_too_and_a_grant_ends_at_its_expiry(
    live: LiveServer,
) -> None:
    head = await verified(live, *LIN)
    buyer_id = fresh_id()
    body = {
        "name": "郑一",
        "id_number": buyer_id,
        "role": "invoice_buyer",
        "expires_at": in_days(1),
    }
    r = await grant(live, head, body)
    assert r.status_code == 201, r.text
    buyer = await verified(live, "郑一", buyer_id)
    await live.http.post(f"/api/v1/mp/grants/{r.json()['grant_id']}/confirm", headers=auth(buyer))
    assert len((await me(live, buyer))["authorizations"]) == 1
    # Time passes: the grant's end is read, not written by a job.
    await Grant.filter(id=r.json()["grant_id"]).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert (await me(live, buyer))["authorizations"] == []
    mine = (await live.http.get("/api/v1/mp/grants", headers=auth(buyer))).json()
    assert mine[0]["status"] == "expired"


async def test_who_may_grant(live: LiveServer) -> None:
    body = {"name": "冯二", "id_number": fresh_id(), "role": "tax_clerk", "expires_at": in_days(5)}
    # Not verified: 403 asking for real-name verification first.
    r = await grant(live, await login(live), body)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "REALNAME_REQUIRED"
    # Verified, but nothing to do with the company: 403.
    stranger = await verified(live, "陈三", fresh_id())
    r = await grant(live, stranger, body)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "FORBIDDEN"
    # A clerk holds a role on the company but not grants.manage: 403.
    boss = await verified(live, *CHEN)
    clerk_id = fresh_id()
    made = await grant(live, boss, {**body, "name": "褚四", "id_number": clerk_id})
    clerk = await verified(live, "褚四", clerk_id)
    await live.http.post(
        f"/api/v1/mp/grants/{made.json()['grant_id']}/confirm", headers=auth(clerk)
    )
    assert (await grant(live, clerk, body)).status_code == 403
    # An unknown taxpayer is 404; a malformed id does not route.
    assert (await grant(live, boss, body, taxpayer="91110000MA00000000")).status_code == 404
    assert (await grant(live, boss, body, taxpayer="x")).status_code == 404
    # 陈明 is the operator of the 个体工商户 too: he may grant there.
    assert (await grant(live, boss, body, taxpayer=SHOP)).status_code == 201


async def test_grant_bodies_are_validated(live: LiveServer) -> None:
    boss = await verified(live, *CHEN)
    good = {"name": "卫五", "id_number": fresh_id(), "role": "invoicer", "expires_at": in_days(9)}
    cases = [
        ({**good, "role": "legal_rep"}, "role"),
        ({**good, "role": "emperor"}, "role"),
        ({**good, "id_number": "44010319850612301Y"}, "id_number"),
        ({**good, "expires_at": in_days(-1)}, "expires_at"),
        ({**good, "expires_at": in_days(6 * 366)}, "expires_at"),
        ({**good, "expires_at": "2027-01-01T00:00:00"}, "expires_at"),  # no offset
        ({k: v for k, v in good.items() if k != "name"}, "name"),
    ]
    for body, field in cases:
        r = await grant(live, boss, body)
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["error"]["fields"], body
    assert (await grant(live, boss, good)).status_code == 201
    duplicate = await grant(live, boss, good)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "DUPLICATE_GRANT"


async def test_a_grant_is_only_for_the_person_it_names(live: LiveServer) -> None:
    boss = await verified(live, *CHEN)
    named_id = fresh_id()
    made = await grant(
        live,
        boss,
        {"name": "蒋六", "id_number": named_id, "role": "invoicer", "expires_at": in_days(3)},
    )
    grant_id = made.json()["grant_id"]
    # Someone else, verified, cannot see or confirm it: 404 as if it did not exist.
    other = await verified(live, "沈七", fresh_id())
    assert (await live.http.get("/api/v1/mp/grants", headers=auth(other))).json() == []
    for action in ("confirm", "decline"):
        r = await live.http.post(f"/api/v1/mp/grants/{grant_id}/{action}", headers=auth(other))
        assert r.status_code == 404
    assert (
        await live.http.post("/api/v1/mp/grants/999999/confirm", headers=auth(other))
    ).status_code == 404
    # The named person declines; a declined grant cannot be confirmed later.
    named = await verified(live, "蒋六", named_id)
    r = await live.http.post(f"/api/v1/mp/grants/{grant_id}/decline", headers=auth(named))
    assert r.json()["status"] == "declined"
    r = await live.http.post(f"/api/v1/mp/grants/{grant_id}/confirm", headers=auth(named))
    assert r.status_code == 409


async def test_revoking_someone_elses_grant_is_404(live: LiveServer) -> None:
    boss = await verified(live, *CHEN)
    made = await grant(
        live,
        boss,
        {"name": "韩八", "id_number": fresh_id(), "role": "invoicer", "expires_at": in_days(3)},
    )
    grant_id = made.json()["grant_id"]
    # Through the other taxpayer 陈明 manages, the grant is not found.
    r = await live.http.delete(f"/api/v1/mp/taxpayers/{SHOP}/grants/{grant_id}", headers=auth(boss))
    assert r.status_code == 404
    r = await live.http.delete(
        f"/api/v1/mp/taxpayers/{COMPANY}/grants/{grant_id}", headers=auth(boss)
    )
    assert r.status_code == 204
    again = await live.http.delete(
        f"/api/v1/mp/taxpayers/{COMPANY}/grants/{grant_id}", headers=auth(boss)
    )
    assert again.status_code == 409
