"""Staff review through HTTP: the queue, claims, version checks under concurrency, reasons,
results, and who may review at all."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

from auth import staff
from auth.models import AuditEvent
from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import (
    SHOP,
    filed,
    person_token,
    reviewer_token,
    staff_act,
)
from tests.miniapp_api.test_mp_realname import auth
from tests.miniapp_api.test_staff_routes import FAST, PASSWORD, token_of

QUEUE = "/api/v1/staff/submissions"


async def second_reviewer(live: LiveServer, *roles: str) -> str:
    name = f"r{uuid.uuid4().hex[:10]}"
    await staff.create_staff(
        name, PASSWORD, roles=roles or ("reviewer",), keyring=live.app.ctx.keyring, hasher=FAST
    )
    return await token_of(live, name)


async def test_two_reviewers_approving_one_version_at_once_get_one_200_one_409(
    live: LiveServer,
) -> None:
    chen = await person_token(live)
    sid = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["id"]
    one, other = await reviewer_token(live), await second_reviewer(live)
    # Both try to claim the same version at once: exactly one gets it.
    claims = await asyncio.gather(
        staff_act(live, one, sid, "claim", version=1),
        staff_act(live, other, sid, "claim", version=1),
    )
    assert sorted(c.status_code for c in claims) == [200, 409]
    winner = one if claims[0].status_code == 200 else other
    loser = other if winner is one else one
    # The holder of the claim approving twice at once with the same version: one 200, one 409.
    approvals = await asyncio.gather(
        staff_act(live, winner, sid, "approve", version=2),
        staff_act(live, winner, sid, "approve", version=2),
    )
    assert sorted(a.status_code for a in approvals) == [200, 409]
    conflict = next(a for a in approvals if a.status_code == 409).json()["error"]
    assert conflict["code"] in ("STALE_VERSION", "ILLEGAL_TRANSITION")
    # The other reviewer cannot decide what they did not claim.
    number = f"{date.today().year % 100:02d}44" + "7" * 16
    r = await staff_act(live, loser, sid, "complete", version=3, result=number)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "CLAIMED_BY_OTHER"


async def test_the_queue_filters_and_pages(live: LiveServer) -> None:
    chen = await person_token(live)
    created = [(await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["id"] for _ in range(3)]
    token = await reviewer_token(live)
    r = await live.http.get(
        QUEUE, params={"form_code": "proxy_invoice", "page_size": 100}, headers=auth(token)
    )
    assert r.status_code == 200
    body = r.json()
    ids = [s["id"] for s in body["items"]]
    assert set(created) <= set(ids)
    assert all(s["status"] == "submitted" for s in body["items"])
    # Oldest first.
    assert ids.index(created[0]) < ids.index(created[2])
    await staff_act(live, token, created[1], "claim", version=1)
    mine = await live.http.get(
        QUEUE, params={"status": "in_review", "claimed": "mine"}, headers=auth(token)
    )
    assert created[1] in [s["id"] for s in mine.json()["items"]]
    assert all(s["claimed_by_me"] for s in mine.json()["items"])
    small = await live.http.get(
        QUEUE, params={"page_size": 1, "status": "all"}, headers=auth(token)
    )
    assert len(small.json()["items"]) == 1
    assert small.json()["total"] >= 3
    bad = await live.http.get(QUEUE, params={"status": "nonsense"}, headers=auth(token))
    assert bad.status_code == 422


async def test_reject_and_return_need_reasons_and_complete_a_valid_number(
    live: LiveServer,
) -> None:
    chen = await person_token(live)
    token = await reviewer_token(live)
    sid = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["id"]
    await staff_act(live, token, sid, "claim", version=1)
    assert (await staff_act(live, token, sid, "reject", version=2)).status_code == 422
    r = await staff_act(live, token, sid, "return", version=2, fields={"../x": "y"})
    assert r.status_code == 422
    r = await staff_act(live, token, sid, "reject", version=2, reason="不符合代开条件")
    assert r.status_code == 200
    assert r.json()["status"] == "rejected"
    # Rejected is final.
    assert (await staff_act(live, token, sid, "approve", version=3)).status_code == 409

    sid = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["id"]
    await staff_act(live, token, sid, "claim", version=1)
    await staff_act(live, token, sid, "approve", version=2)
    year = f"{date.today().year % 100:02d}"
    for wrong in ("123", "x" * 20, "00" + "1" * 18):
        r = await staff_act(live, token, sid, "complete", version=3, result=wrong)
        assert r.status_code == 422, wrong
        assert "result" in r.json()["error"]["fields"]
    number = year + "44" + uuid.uuid4().int.__str__()[:16].rjust(16, "0")
    r = await staff_act(live, token, sid, "complete", version=3, result=number)
    assert r.status_code == 200
    # The same invoice number cannot complete another submission.
    other = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["id"]
    await staff_act(live, token, other, "claim", version=1)
    await staff_act(live, token, other, "approve", version=2)
    r = await staff_act(live, token, other, "complete", version=3, result=number)
    assert r.status_code == 422


async def test_only_reviewers_review_and_taxpayers_get_403(live: LiveServer) -> None:
    chen = await person_token(live)
    sid = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["id"]
    hall_manager = await second_reviewer(live, "hall_manager")
    assert (await live.http.get(QUEUE, headers=auth(hall_manager))).status_code == 403
    assert (await staff_act(live, hall_manager, sid, "claim", version=1)).status_code == 403
    # A taxpayer's token is no staff session at all.
    assert (await live.http.get(QUEUE, headers=auth(chen))).status_code == 401
    assert (await live.http.get(QUEUE)).status_code == 401


async def test_a_reviewer_sees_the_data_and_the_look_is_audited(live: LiveServer) -> None:
    chen = await person_token(live)
    sid = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["id"]
    token = await reviewer_token(live)
    r = await live.http.get(f"{QUEUE}/{sid}", headers=auth(token))
    assert r.status_code == 200
    assert r.json()["data"]["buyer"]["taxpayer_id"] == "91350100M000100Y43"
    assert await AuditEvent.filter(action="submission.view", target=f"submission:{sid}").exists()
    assert (await live.http.get(f"{QUEUE}/99999999", headers=auth(token))).status_code == 404
