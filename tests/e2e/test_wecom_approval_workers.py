"""Issue 5's Done-when for internal approval: ``suban serve`` with two workers on PostgreSQL and
real Redis, the WeChat simulator as its own process sending the real encrypted
``sys_approval_change`` back over loopback. A clerk's filings wait in ``pending_internal``; the
finance head approves one in WeCom (→ ``submitted``), the legal representative rejects another
(→ ``returned`` with the comment as reason). The same event delivered again, or many times at once
so both workers take it, changes nothing: each outcome is in the timeline exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from miniapp_api.settings import (
    SIM_WECOM_AES_KEY,
    SIM_WECOM_AGENT_ID,
    SIM_WECOM_CORP_ID,
    SIM_WECOM_TOKEN,
)
from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV, LiveServer
from tests.miniapp_api.filing_helpers import COMPANY, filed, granted_clerk, person_token
from tests.miniapp_api.test_mp_realname import CHEN, LIN, auth
from tests.processes import suban_with_simulator
from tests.wecom.test_binding import bind, bind_code
from tests.wecom.test_oauth import member_token
from wechat.simulator.approvals import Approval, ApprovalNode, ApproverDecision
from wechat.simulator.callbacks import Delivery, deliver, sign_and_encrypt
from wechat.simulator.state import CallbackTarget

# Deliveries of one event at once: enough that both workers take some.
PARALLEL = 8


@pytest.fixture
def two_workers(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(app base URL, simulator base URL)."""
    if BACKEND != "postgres":
        pytest.skip("several workers need PostgreSQL (settings refuse SQLite with workers > 1)")
    client = redis.Redis.from_url(REAL_REDIS_URL)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        client.close()
        raise RuntimeError(f"real Redis at {REAL_REDIS_URL} does not answer") from exc
    try:
        with suban_with_simulator(
            tmp_path,
            database_url=database_url,
            redis_url=REAL_REDIS_URL,
            pii_keys=TEST_PII_KEYS_ENV,
        ) as bases:
            yield bases
    finally:
        # Sessions, nonces and cached tokens of the run must not reach the next one.
        client.flushdb()
        client.close()


@pytest.fixture
async def api(two_workers: tuple[str, str]) -> AsyncIterator[LiveServer]:
    """The shared HTTP helpers' view of the app: no app object, only its base URL and a client."""
    base_url, _ = two_workers
    # Fresh connections for every request, so the kernel spreads them over both workers.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=20, limits=limits) as http:
        yield LiveServer(app=None, base_url=base_url, http=http)


async def bound_member(api: LiveServer, mp_token: str) -> str:
    """A new WeCom member, signed in through OAuth and bound to the person with a one-time code."""
    userid = f"wa-{uuid.uuid4().hex[:12]}"
    r = await bind(api, await member_token(api, userid), await bind_code(api, mp_token))
    assert r.status_code == 201, f"binding {userid}: {r.status_code} {r.text}"
    return userid


async def approval_of(sim: httpx.AsyncClient, tracking_no: str) -> dict[str, Any]:
    """The OA approval the service filed for the submission (its form shows the tracking number)."""
    listed = (await sim.get("/control/approvals")).json()["approvals"]
    found = [
        info
        for info in listed
        if tracking_no in [c["value"]["text"] for c in info["apply_data"]["contents"]]
    ]
    assert len(found) == 1, listed
    info: dict[str, Any] = found[0]
    return info


async def detail(api: LiveServer, token: str, submission_id: int) -> dict[str, Any]:
    r = await api.http.get(f"/api/v1/mp/submissions/{submission_id}", headers=auth(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def entries(body: dict[str, Any], status: str) -> list[dict[str, Any]]:
    return [e for e in body["timeline"] if e["status"] == status]


def change_event(info: dict[str, Any]) -> str:
    """The ``sys_approval_change`` plaintext for the approval as getapprovaldetail shows it, the
    same XML the simulator sends when it decides."""
    approval = Approval(
        sp_no=info["sp_no"],
        template_id=info["template_id"],
        creator_userid=info["applyer"]["userid"],
        apply_time=info["apply_time"],
        nodes=[
            ApprovalNode(
                attr=int(node["approverattr"]),
                details=[
                    ApproverDecision(
                        userid=d["approver"]["userid"],
                        sp_status=d["sp_status"],
                        speech=d["speech"],
                        sptime=d["sptime"],
                    )
                    for d in node["details"]
                ],
            )
            for node in info["sp_record"]
        ],
        notifyer=[n["userid"] for n in info["notifyer"]],
        sp_name=info["sp_name"],
        sp_status=info["sp_status"],
    )
    return approval.change_event_xml(
        corp_id=SIM_WECOM_CORP_ID, agent_id=SIM_WECOM_AGENT_ID, now=int(time.time())
    )


async def deliver_at_once(target: CallbackTarget, plaintext: str) -> list[Delivery]:
    """The event ``PARALLEL`` times at once, each signed with its own nonce (as WeCom's retries
    are) and on its own connection."""
    return list(
        await asyncio.gather(
            *(
                deliver(
                    target,
                    corp_id=SIM_WECOM_CORP_ID,
                    agent_id=SIM_WECOM_AGENT_ID,
                    plaintext=plaintext,
                    timeout=20,
                )
                for _ in range(PARALLEL)
            )
        )
    )


async def test_internal_approval_on_two_workers_lands_each_outcome_once(
    api: LiveServer, two_workers: tuple[str, str]
) -> None:
    _, sim_base = two_workers
    target = CallbackTarget(
        url=f"{api.base_url}/wecom/callback", token=SIM_WECOM_TOKEN, aes_key=SIM_WECOM_AES_KEY
    )
    settings_path = f"/api/v1/mp/taxpayers/{COMPANY}/filing-settings"
    boss = await person_token(api, CHEN)
    finance = await person_token(api, LIN)
    clerk = await granted_clerk(api, boss)
    async with httpx.AsyncClient(base_url=sim_base, timeout=20, trust_env=False) as sim:
        try:
            boss_member = await bound_member(api, boss)
            finance_member = await bound_member(api, finance)
            clerk_member = await bound_member(api, clerk)
            r = await sim.put(
                "/control/callback",
                json={"url": target.url, "token": target.token, "aes_key": target.aes_key},
            )
            assert r.status_code == 200, r.text
            r = await api.http.put(
                settings_path, json={"internal_approval_required": True}, headers=auth(boss)
            )
            assert r.status_code == 200, r.text

            # Approved by the finance head in WeCom.
            held = await filed(api, clerk, "cross_region_report", taxpayer_id=COMPANY)
            assert held["status"] == "pending_internal"
            info = await approval_of(sim, held["tracking_no"])
            assert info["applyer"]["userid"] == clerk_member
            assert [d["approver"]["userid"] for d in info["sp_record"][0]["details"]] == sorted(
                [boss_member, finance_member]
            )
            r = await sim.post(
                f"/control/approvals/{info['sp_no']}/approve",
                json={"approver": finance_member, "speech": "同意"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["callback"]["status"] == 200, r.json()
            approved = await detail(api, clerk, held["id"])
            assert approved["status"] == "submitted"
            assert [e["actor_kind"] for e in entries(approved, "submitted")] == ["wecom"]

            # Deciding again is refused by WeCom; the event again, on both workers at once,
            # is acknowledged and changes nothing.
            again = await sim.post(f"/control/approvals/{info['sp_no']}/approve", json={})
            assert again.status_code == 409, again.text
            decided = (await sim.get(f"/control/approvals/{info['sp_no']}")).json()["info"]
            answers = await deliver_at_once(target, change_event(decided))
            assert [a.status for a in answers] == [200] * PARALLEL, answers
            assert await detail(api, clerk, held["id"]) == approved

            # Rejected by the legal representative: returned with the comment as the reason.
            second = await filed(api, clerk, "cross_region_report", taxpayer_id=COMPANY)
            assert second["status"] == "pending_internal"
            sp_no = (await approval_of(sim, second["tracking_no"]))["sp_no"]
            r = await sim.post(
                f"/control/approvals/{sp_no}/reject",
                json={"approver": boss_member, "speech": "合同金额有误"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["callback"]["status"] == 200, r.json()
            returned = await detail(api, clerk, second["id"])
            assert returned["status"] == "returned"
            assert returned["result"]["reason"] == "合同金额有误"
            assert [e["actor_kind"] for e in entries(returned, "returned")] == ["wecom"]
            again = await sim.post(f"/control/approvals/{sp_no}/reject", json={})
            assert again.status_code == 409, again.text
            decided = (await sim.get(f"/control/approvals/{sp_no}")).json()["info"]
            answers = await deliver_at_once(target, change_event(decided))
            assert [a.status for a in answers] == [200] * PARALLEL, answers
            assert await detail(api, clerk, second["id"]) == returned

            # The first delivery itself raced: decided with the callback off, then the event
            # delivered many times at once, so both workers try to apply it.
            third = await filed(api, clerk, "cross_region_report", taxpayer_id=COMPANY)
            sp_no = (await approval_of(sim, third["tracking_no"]))["sp_no"]
            assert (await sim.delete("/control/callback")).status_code == 200
            r = await sim.post(
                f"/control/approvals/{sp_no}/approve", json={"approver": boss_member}
            )
            assert r.json()["callback"] == {"sent": False}, r.text
            decided = (await sim.get(f"/control/approvals/{sp_no}")).json()["info"]
            answers = await deliver_at_once(target, change_event(decided))
            assert [a.status for a in answers] == [200] * PARALLEL, answers
            raced = await detail(api, clerk, third["id"])
            assert raced["status"] == "submitted"
            assert len(entries(raced, "submitted")) == 1, raced["timeline"]

            # The very same signed request again (same nonce) is a replay, refused by whichever
            # worker takes it: the nonces live in Redis.
            signed = sign_and_encrypt(
                target,
                corp_id=SIM_WECOM_CORP_ID,
                agent_id=SIM_WECOM_AGENT_ID,
                plaintext=change_event(decided),
            )
            replies = [
                await api.http.post(
                    "/wecom/callback",
                    params=signed.params,
                    content=signed.body.encode(),
                    headers={"Content-Type": "text/xml; charset=utf-8"},
                )
                for _ in range(3)
            ]
            assert [r.status_code for r in replies] == [200, 401, 401], [r.text for r in replies]
            assert await detail(api, clerk, third["id"]) == raced
        finally:
            # The database is shared with later tests: no settings changed, no member bound.
            undone = [
                await api.http.put(
                    settings_path, json={"internal_approval_required": False}, headers=auth(boss)
                )
            ]
            for token in (boss, finance, clerk):
                undone.append(
                    await api.http.delete("/api/v1/mp/wecom-binding", headers=auth(token))
                )
    # Checked only when all went well, so a failure above is not hidden by one here.
    assert [r.status_code for r in undone] == [200, 204, 204, 204], [r.text for r in undone]
