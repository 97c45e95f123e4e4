"""An enterprise's internal approval through WeCom OA, end to end against the simulator: a clerk
files, the service files the OA approval as the clerk's member with the legal representative as
approver, the simulator decides and sends the real encrypted ``sys_approval_change`` back over
loopback, and the submission moves on (or back, with the approver's comment)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from auth import clock
from auth.models import WeChatAccount
from forms import lifecycle
from forms.models import Submission
from miniapp_api.settings import SIMULATOR_PREFIX
from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import (
    COMPANY,
    filed,
    granted_clerk,
    internal_approval_on,
    person_token,
)
from tests.miniapp_api.test_mp_realname import CHEN, auth
from wecom import approvals
from wecom.models import WeComApproval, WeComMember

CONTROL = f"{SIMULATOR_PREFIX}/control"


async def bind_member(person_id: int) -> str:
    """A WeCom member bound to the person (the binding flow has its own tests)."""
    userid = f"wx-{uuid.uuid4().hex[:10]}"
    await WeComMember.filter(person_id=person_id).delete()
    await WeComMember.create(userid=userid, person_id=person_id, bound_at=clock.now())
    return userid


async def person_id_of(live: LiveServer, token: str) -> int:
    session = await live.app.ctx.sessions.get(token, "mp")
    account = await WeChatAccount.get(id=session.account_id)
    person_id: int = account.person_id  # type: ignore[attr-defined]
    return person_id


async def point_simulator_at_app(live: LiveServer) -> None:
    settings = live.app.ctx.settings
    r = await live.http.put(
        f"{CONTROL}/callback",
        json={
            "url": f"{live.base_url}/wecom/callback",
            "token": settings.wecom_token,
            "aes_key": settings.wecom_aes_key,
        },
    )
    assert r.status_code == 200, r.text


async def decide(live: LiveServer, sp_no: str, decision: str, **body: Any) -> httpx.Response:
    return await live.http.post(f"{CONTROL}/approvals/{sp_no}/{decision}", json=body)


async def test_approved_in_wecom_moves_the_filing_on_and_rejected_returns_it(
    live: LiveServer,
) -> None:
    boss = await person_token(live, CHEN)
    boss_member = await bind_member(await person_id_of(live, boss))
    clerk = await granted_clerk(live, boss)
    clerk_member = await bind_member(await person_id_of(live, clerk))
    await point_simulator_at_app(live)
    async with internal_approval_on(live, boss):
        held = await filed(live, clerk, "cross_region_report", taxpayer_id=COMPANY)
        assert held["status"] == "pending_internal"
        approval = await WeComApproval.get(submission_id=held["id"])
        assert approval.applicant_userid == clerk_member
        recorded = (await live.http.get(f"{CONTROL}/approvals/{approval.sp_no}")).json()["info"]
        assert recorded["applyer"]["userid"] == clerk_member
        assert [d["approver"]["userid"] for d in recorded["sp_record"][0]["details"]] == [
            boss_member
        ]
        texts = [c["value"]["text"] for c in recorded["apply_data"]["contents"]]
        assert held["tracking_no"] in texts

        r = await decide(live, approval.sp_no, "approve", approver=boss_member, speech="同意")
        assert r.status_code == 200, r.text
        assert r.json()["callback"]["status"] == 200, r.json()
        detail = (
            await live.http.get(f"/api/v1/mp/submissions/{held['id']}", headers=auth(clerk))
        ).json()
        assert detail["status"] == "submitted"
        assert detail["timeline"][-1]["actor_kind"] == "wecom"

        second = await filed(live, clerk, "cross_region_report", taxpayer_id=COMPANY)
        sp_no = (await WeComApproval.get(submission_id=second["id"])).sp_no
        r = await decide(live, sp_no, "reject", approver=boss_member, speech="合同金额有误")
        assert r.json()["callback"]["status"] == 200, r.json()
        detail = (
            await live.http.get(f"/api/v1/mp/submissions/{second['id']}", headers=auth(clerk))
        ).json()
        assert detail["status"] == "returned"
        assert detail["result"]["reason"] == "合同金额有误"

        # The same event again changes nothing.
        before = await Submission.get(id=second["id"])
        notice = lifecycle.Notice("sim-tmpl-status", form_title=lambda code: code)
        again = await approvals.apply_change(sp_no, live.app.ctx.wechat.wecom, notice)
        assert again is None
        assert (await Submission.get(id=second["id"])).version == before.version
    await WeComMember.filter(userid__in=[boss_member, clerk_member]).delete()


async def test_without_a_bound_member_the_mini_program_approval_applies(
    live: LiveServer,
) -> None:
    boss = await person_token(live, CHEN)
    clerk = await granted_clerk(live, boss)  # no WeCom member
    async with internal_approval_on(live, boss):
        held = await filed(live, clerk, "cross_region_report", taxpayer_id=COMPANY)
        assert held["status"] == "pending_internal"
        assert not await WeComApproval.exists(submission_id=held["id"])
        r = await live.http.post(
            f"/api/v1/mp/submissions/{held['id']}/internal-approve",
            json={"version": 1},
            headers=auth(boss),
        )
        assert r.json()["status"] == "submitted"
