"""Filing through HTTP: both forms end to end, idempotency, who may file and read, resubmission,
withdrawal, internal approval, and every status change on the timeline and in the outbox."""

from __future__ import annotations

import asyncio
import uuid

from auth.models import AuditEvent, OutboxMessage
from forms.models import Submission, SubmissionEvent
from forms.tracking import normalize_tracking_no
from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import (
    COMPANY,
    SHOP,
    cross_region_data,
    file,
    filed,
    granted_clerk,
    internal_approval_on,
    person_token,
    proxy_invoice_data,
    reviewer_token,
    staff_act,
)
from tests.miniapp_api.test_mp_grants import fresh_id
from tests.miniapp_api.test_mp_realname import LIN, auth, login

API = "/api/v1/mp/submissions"


async def test_a_proxy_invoice_is_filed_quoted_reviewed_and_completed(live: LiveServer) -> None:
    chen = await person_token(live)
    created = await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP)
    assert created["status"] == "submitted"
    assert created["version"] == 1
    assert normalize_tracking_no(created["tracking_no"]) == created["tracking_no"]

    detail = (await live.http.get(f"{API}/{created['id']}", headers=auth(chen))).json()
    assert detail["form_title"] == "代开增值税发票缴纳税款申报单"
    assert detail["taxpayer_id"] == SHOP
    assert detail["data"]["lines"][0]["amount_incl_tax"] == "5050.00"
    assert detail["quote"]["total_tax"] == "50.00"
    assert detail["total_incl_tax"] == "5050.00"
    assert [e["status"] for e in detail["timeline"]] == ["submitted"]
    assert detail["timeline"][0]["actor_kind"] == "mp"

    staff = await reviewer_token(live)
    sid = created["id"]
    r = await staff_act(live, staff, sid, "claim", version=1)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_review"
    r = await staff_act(live, staff, sid, "approve", version=2, comment="资料齐全")
    assert r.status_code == 200, r.text
    year = str(__import__("datetime").date.today().year)[2:]
    r = await staff_act(live, staff, sid, "complete", version=3, result=f"{year}44" + "0" * 16)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    assert r.json()["result"]["number"] == f"{year}44" + "0" * 16

    detail = (await live.http.get(f"{API}/{sid}", headers=auth(chen))).json()
    assert [(e["status"], e["actor_kind"]) for e in detail["timeline"]] == [
        ("submitted", "mp"),
        ("in_review", "staff"),
        ("approved", "staff"),
        ("completed", "staff"),
    ]
    # One subscribe message per status, each written with its change.
    messages = await OutboxMessage.filter(
        channel="subscribe", dedupe_key__startswith=f"submission:{sid}:"
    ).order_by("id")
    assert [m.payload["data"]["phrase3"] for m in messages] == [  # type: ignore[index]
        "已提交",
        "审核中",
        "已通过",
        "已办结",
    ]
    assert all(m.recipient.startswith("o-fl-") for m in messages)


async def test_a_cross_region_report_gets_a_report_number(live: LiveServer) -> None:
    lin = await person_token(live, LIN)
    created = await filed(live, lin, "cross_region_report", taxpayer_id=COMPANY)
    staff = await reviewer_token(live)
    sid = created["id"]
    for version, action in enumerate(("claim", "approve"), start=1):
        assert (await staff_act(live, staff, sid, action, version=version)).status_code == 200
    r = await staff_act(live, staff, sid, "complete", version=3)
    assert r.status_code == 200, r.text
    number = r.json()["result"]["number"]
    year = __import__("datetime").date.today().year
    assert number.startswith(f"税跨报〔{year}〕")
    assert number.endswith("号")
    # The office part: the report covers the contract period, from the filing day at the earliest.
    contract = cross_region_data()["contract"]
    assert r.json()["result"]["valid_from"] == contract["start"]
    assert r.json()["result"]["valid_until"] == contract["end"]
    # A reviewer cannot make up a report number.
    second = await filed(live, lin, "cross_region_report", taxpayer_id=COMPANY)
    for version, action in enumerate(("claim", "approve"), start=1):
        await staff_act(live, staff, second["id"], action, version=version)
    r = await staff_act(
        live, staff, second["id"], "complete", version=3, result="税跨报〔2000〕1号"
    )
    assert r.status_code == 422
    r = await staff_act(live, staff, second["id"], "complete", version=3)
    assert r.json()["result"]["number"] != number


async def test_a_natural_person_files_a_proxy_invoice_for_themself(live: LiveServer) -> None:
    someone = await person_token(live, ("欧阳明月", fresh_id()))
    created = await filed(live, someone, "proxy_invoice")
    detail = (await live.http.get(f"{API}/{created['id']}", headers=auth(someone))).json()
    assert detail["taxpayer_id"] is None
    assert detail["quote"]["payable"] == "53.00"


async def test_the_same_idempotency_key_gives_the_same_submission(live: LiveServer) -> None:
    chen = await person_token(live)
    key = f"same-{uuid.uuid4().hex}"
    first = await file(live, chen, "proxy_invoice", proxy_invoice_data(), SHOP, key=key)
    again = await file(live, chen, "proxy_invoice", proxy_invoice_data(), SHOP, key=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["tracking_no"] == first.json()["tracking_no"]
    other_body = await file(
        live, chen, "proxy_invoice", proxy_invoice_data("100.00"), SHOP, key=key
    )
    assert other_body.status_code == 409
    assert other_body.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # Ten parallel retries of one key: one submission.
    key = f"par-{uuid.uuid4().hex}"
    answers = await asyncio.gather(
        *(file(live, chen, "proxy_invoice", proxy_invoice_data(), SHOP, key=key) for _ in range(10))
    )
    assert sorted(a.status_code for a in answers).count(201) == 1
    assert {a.json()["id"] for a in answers if a.status_code in (200, 201)} == {
        answers[0].json()["id"]
    }
    assert await Submission.filter(idempotency_key=key).count() == 1


async def test_a_filing_and_its_audit_event_are_written_together(live: LiveServer) -> None:
    chen = await person_token(live)
    key = f"audit-{uuid.uuid4().hex}"
    first = await file(live, chen, "proxy_invoice", proxy_invoice_data(), SHOP, key=key)
    again = await file(live, chen, "proxy_invoice", proxy_invoice_data(), SHOP, key=key)
    assert (first.status_code, again.status_code) == (201, 200)
    sid = first.json()["id"]
    events = await AuditEvent.filter(action="submission.file", target=f"submission:{sid}")
    # One event, written in the filing's transaction (a replay adds none).
    assert len(events) == 1
    assert events[0].actor_kind == "mp"
    assert events[0].details == {"form": "proxy_invoice", "status": "submitted"}
    submission = await Submission.get(id=sid)
    assert events[0].at == submission.submitted_at
    # Sealed before the row was written, bound to the row's id: it opens as that row's data.
    detail = (await live.http.get(f"{API}/{sid}", headers=auth(chen))).json()
    assert detail["data"] == proxy_invoice_data()


async def test_the_idempotency_key_is_required_and_checked(live: LiveServer) -> None:
    chen = await person_token(live)
    body = {"form_code": "proxy_invoice", "taxpayer_id": SHOP, "data": proxy_invoice_data()}
    r = await live.http.post(API, json=body, headers=auth(chen))
    assert r.status_code == 400
    r = await live.http.post(API, json=body, headers=auth(chen) | {"Idempotency-Key": "short"})
    assert r.status_code == 400


async def test_invalid_data_gets_every_field_error_at_once(live: LiveServer) -> None:
    chen = await person_token(live)
    data = proxy_invoice_data("-5")
    data["buyer"] = {"name": "", "taxpayer_id": "123"}
    r = await file(live, chen, "proxy_invoice", data, SHOP)
    assert r.status_code == 422, r.text
    fields = r.json()["error"]["fields"]
    assert "lines.0.amount_incl_tax" in fields
    assert "buyer.taxpayer_id" in fields
    assert await Submission.filter(idempotency_key__startswith="k-", status="x").count() == 0
    r = await file(live, chen, "no_such_form", {}, SHOP)
    assert r.status_code == 422
    assert r.json()["error"]["fields"] == {"form_code": "没有该文书类型"}


async def test_filing_needs_the_permission_and_reading_needs_a_relation(live: LiveServer) -> None:
    chen = await person_token(live)
    created = await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP)
    stranger = await person_token(live, ("路人甲", fresh_id()))
    # No role on the taxpayer: 403 on filing, for a real and for an unknown taxpayer alike.
    r = await file(live, stranger, "proxy_invoice", proxy_invoice_data(), SHOP)
    assert r.status_code == 403
    r = await file(live, stranger, "proxy_invoice", proxy_invoice_data(), "91110000000000000X")
    assert r.status_code in (403, 422)
    # Someone else's submission: 404 on reading, as for one that does not exist.
    for path in (f"{API}/{created['id']}", f"{API}/99999999"):
        r = await live.http.get(path, headers=auth(stranger))
        assert r.status_code == 404, path
    r = await live.http.post(
        f"{API}/{created['id']}/withdraw", json={"version": 1}, headers=auth(stranger)
    )
    assert r.status_code == 404
    # Before real-name verification nothing can be filed.
    fresh = await login(live, f"o-fl-{uuid.uuid4().hex[:8]}")
    assert (await file(live, fresh, "proxy_invoice", proxy_invoice_data())).status_code == 403
    assert (await live.http.post(API, json={})).status_code == 401


async def test_a_clerk_with_a_grant_files_and_the_legal_rep_sees_it(live: LiveServer) -> None:
    chen = await person_token(live)
    clerk = await granted_clerk(live, chen, "吴办税")
    # A tax clerk may file forms but may not ask for proxy invoices (购票员's permission).
    assert (
        await file(live, clerk, "proxy_invoice", proxy_invoice_data(), COMPANY)
    ).status_code == 403
    created = await filed(live, clerk, "cross_region_report", taxpayer_id=COMPANY)
    seen = await live.http.get(f"{API}/{created['id']}", headers=auth(chen))
    assert seen.status_code == 200
    listed = await live.http.get(API, params={"taxpayer_id": COMPANY}, headers=auth(chen))
    assert created["id"] in [s["id"] for s in listed.json()["items"]]
    # The legal rep may read it but only the applicant withdraws it.
    r = await live.http.post(
        f"{API}/{created['id']}/withdraw", json={"version": 1}, headers=auth(chen)
    )
    assert r.status_code == 403


async def test_internal_approval_holds_clerks_filings_until_an_approver_decides(
    live: LiveServer,
) -> None:
    chen = await person_token(live)
    clerk = await granted_clerk(live, chen, "郑办税")
    # Only an approver may turn it on.
    r = await live.http.put(
        f"/api/v1/mp/taxpayers/{COMPANY}/filing-settings",
        json={"internal_approval_required": True},
        headers=auth(clerk),
    )
    assert r.status_code == 403
    async with internal_approval_on(live, chen):
        held = await filed(live, clerk, "cross_region_report", taxpayer_id=COMPANY)
        assert held["status"] == "pending_internal"
        # The legal rep's own filing does not wait for himself.
        own = await filed(live, chen, "cross_region_report", taxpayer_id=COMPANY)
        assert own["status"] == "submitted"
        # Staff cannot claim what the enterprise has not let go.
        staff = await reviewer_token(live)
        assert (await staff_act(live, staff, held["id"], "claim", version=1)).status_code == 409
        # The clerk cannot approve their own filing.
        r = await live.http.post(
            f"{API}/{held['id']}/internal-approve", json={"version": 1}, headers=auth(clerk)
        )
        assert r.status_code == 403
        r = await live.http.post(
            f"{API}/{held['id']}/internal-approve", json={"version": 1}, headers=auth(chen)
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "submitted"
        assert (await staff_act(live, staff, held["id"], "claim", version=2)).status_code == 200
        # And the other way: returned with a reason, which the clerk corrects and resubmits.
        second = await filed(live, clerk, "cross_region_report", taxpayer_id=COMPANY)
        r = await live.http.post(
            f"{API}/{second['id']}/internal-reject", json={"version": 1}, headers=auth(chen)
        )
        assert r.status_code == 422  # a reason is required
        r = await live.http.post(
            f"{API}/{second['id']}/internal-reject",
            json={"version": 1, "reason": "合同金额有误"},
            headers=auth(chen),
        )
        assert r.json()["status"] == "returned"
        r = await live.http.put(
            f"{API}/{second['id']}",
            json={"version": 2, "data": cross_region_data()},
            headers=auth(clerk),
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "pending_internal"


async def test_return_resubmit_and_withdraw(live: LiveServer) -> None:
    chen = await person_token(live)
    created = await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP)
    sid = created["id"]
    staff = await reviewer_token(live)
    await staff_act(live, staff, sid, "claim", version=1)
    r = await staff_act(
        live,
        staff,
        sid,
        "return",
        version=2,
        reason="购买方信息需补正",
        fields={"buyer.name": "请填写购买方全称"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "returned"
    detail = (await live.http.get(f"{API}/{sid}", headers=auth(chen))).json()
    assert detail["result"]["fields"] == {"buyer.name": "请填写购买方全称"}
    assert detail["timeline"][-1]["note"] == "购买方信息需补正"

    corrected = proxy_invoice_data("2020.00")
    corrected["buyer"]["name"] = "广州示例采购有限公司（全称）"
    stale = await live.http.put(
        f"{API}/{sid}", json={"version": 2, "data": corrected}, headers=auth(chen)
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "STALE_VERSION"
    bad = await live.http.put(
        f"{API}/{sid}", json={"version": 3, "data": proxy_invoice_data("0")}, headers=auth(chen)
    )
    assert bad.status_code == 422
    r = await live.http.put(
        f"{API}/{sid}", json={"version": 3, "data": corrected}, headers=auth(chen)
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "submitted"
    assert r.json()["data"]["buyer"]["name"].endswith("（全称）")
    assert r.json()["quote"]["total_incl_tax"] == "2020.00"
    assert r.json()["result"] is None

    r = await live.http.post(f"{API}/{sid}/withdraw", json={"version": 4}, headers=auth(chen))
    assert r.status_code == 200
    assert r.json()["status"] == "withdrawn"
    # Withdrawn is the end: nothing moves it again.
    r = await live.http.post(f"{API}/{sid}/withdraw", json={"version": 5}, headers=auth(chen))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "ILLEGAL_TRANSITION"
    r = await staff_act(live, staff, sid, "claim", version=5)
    assert r.status_code == 409


async def test_nothing_is_withdrawn_after_approval(live: LiveServer) -> None:
    chen = await person_token(live)
    sid = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["id"]
    staff = await reviewer_token(live)
    await staff_act(live, staff, sid, "claim", version=1)
    await staff_act(live, staff, sid, "approve", version=2)
    r = await live.http.post(f"{API}/{sid}/withdraw", json={"version": 3}, headers=auth(chen))
    assert r.status_code == 409
    events = await SubmissionEvent.filter(submission_id=sid).count()
    assert events == 3


async def test_my_list_is_paged_and_filtered(live: LiveServer) -> None:
    someone = await person_token(live, ("上官列表", fresh_id()))
    ids = [(await filed(live, someone, "proxy_invoice"))["id"] for _ in range(3)]
    page = await live.http.get(API, params={"page_size": 2}, headers=auth(someone))
    body = page.json()
    assert body["total"] == 3
    assert [s["id"] for s in body["items"]] == ids[::-1][:2]
    second = await live.http.get(API, params={"page_size": 2, "page": 2}, headers=auth(someone))
    assert [s["id"] for s in second.json()["items"]] == [ids[0]]
    none = await live.http.get(API, params={"status": "completed"}, headers=auth(someone))
    assert none.json()["total"] == 0
    assert (
        await live.http.get(API, params={"page": "x"}, headers=auth(someone))
    ).status_code == 422
