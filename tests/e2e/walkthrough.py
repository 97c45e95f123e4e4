"""File both forms with the demo data and decide them as the demo reviewer, over HTTP.

Run it against `make run` (the embedded default, simulator mounted):

    .venv/bin/python -m tests.e2e.walkthrough http://127.0.0.1:8000

It prints each step; tests/e2e/test_walkthrough.py runs it against a real `suban serve`.
"""

from __future__ import annotations

import sys
import uuid
from datetime import date, timedelta
from typing import Any

import httpx

CHEN = ("陈明", "44010319850612301X")  # legal rep of both demo taxpayers (API.md, demo data)
SHOP = "92440103MA5C3RTN8C"
COMPANY = "91440103MA59D8QK16"


def _ok(r: httpx.Response, *expected: int) -> Any:
    if r.status_code not in (expected or (200,)):
        raise SystemExit(f"{r.request.method} {r.request.url.path} → {r.status_code}: {r.text}")
    return (
        r.json()
        if r.content and r.headers.get("content-type", "").startswith("application/json")
        else None
    )


def walk(
    base_url: str,
    reviewer_password: str = "suban-demo",  # noqa: S107 - the documented demo password
    say: Any = print,
) -> dict[str, Any]:
    """The whole walk; returns the two completed submissions' final answers."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        openid = f"o-walk-{uuid.uuid4().hex[:8]}"
        token = _ok(http.post("/api/v1/mp/login", json={"code": f"sim:{openid}"}))["token"]
        me = {"Authorization": f"Bearer {token}"}
        name, id_number = CHEN
        _ok(
            http.post(
                "/api/v1/mp/realname",
                json={
                    "name": name,
                    "id_type": "resident_id",
                    "id_number": id_number,
                    "verify_result": f"sim:{name}:{id_number}",
                },
                headers=me,
            )
        )
        say("logged in and verified as 陈明 (legal representative of both demo taxpayers)")
        quote = _ok(
            http.post(
                "/api/v1/mp/invoice-quote",
                json={
                    "seller_kind": "individual_business",
                    "invoice_kind": "general",
                    "location": "city",
                    "issue_date": date.today().isoformat(),
                    "lines": [{"name": "维修服务", "amount_incl_tax": "5050.00"}],
                },
                headers=me,
            )
        )
        say(f"quote for 5050.00: VAT {quote['total_tax']}, payable {quote['payable']}")
        invoice = {
            "invoice_kind": "general",
            "location": "city",
            "buyer": {"name": "广州示例采购有限公司", "taxpayer_id": "91350100M000100Y43"},
            "lines": [{"name": "维修服务", "amount_incl_tax": "5050.00"}],
        }
        today = date.today()
        report = {
            "address": "深圳市南山区示例路 8 号",
            "business_mode": "建筑安装",
            "contract": {
                "name": "示例大厦装修工程合同",
                "number": "HT-2026-001",
                "amount": "500000.00",
                "start": (today + timedelta(days=3)).isoformat(),
                "end": (today + timedelta(days=120)).isoformat(),
                "counterparty_name": "深圳示例建设有限公司",
                "counterparty_id": "91350100M000100Y43",
            },
            "contact": {"name": "陈明", "phone": "13800138000"},
        }
        filed = []
        for form_code, taxpayer_id, data in (
            ("proxy_invoice", SHOP, invoice),
            ("cross_region_report", COMPANY, report),
        ):
            created = _ok(
                http.post(
                    "/api/v1/mp/submissions",
                    json={"form_code": form_code, "taxpayer_id": taxpayer_id, "data": data},
                    headers=me | {"Idempotency-Key": f"walk-{uuid.uuid4().hex}"},
                ),
                201,
            )
            say(f"filed {form_code}: {created['tracking_no']} ({created['status']})")
            filed.append(created)

        staff_token = _ok(
            http.post(
                "/api/v1/staff/login",
                json={"username": "reviewer", "password": reviewer_password},
            )
        )["token"]
        staff = {"Authorization": f"Bearer {staff_token}"}
        done: dict[str, Any] = {}
        for created in filed:
            sid, version = created["id"], created["version"]
            for action in ("claim", "approve"):
                version = _ok(
                    http.post(
                        f"/api/v1/staff/submissions/{sid}/{action}",
                        json={"version": version},
                        headers=staff,
                    )
                )["version"]
            result: dict[str, Any] = {"version": version}
            if created["tracking_no"] and filed.index(created) == 0:
                # The reviewer enters the 数电 invoice number from the invoicing system.
                result["result"] = f"{today.year % 100:02d}44" + uuid.uuid4().int.__str__()[:16]
            final = _ok(
                http.post(f"/api/v1/staff/submissions/{sid}/complete", json=result, headers=staff)
            )
            say(f"reviewer completed {final['tracking_no']}: {final['result']['number']}")
            lookup = _ok(
                http.get(
                    "/api/v1/progress",
                    params={"tracking_no": final["tracking_no"], "check": id_number[-4:]},
                )
            )
            say(f"public progress of {final['tracking_no']}: {lookup['status_label']}")
            done[final["form_code"]] = final
        return done


if __name__ == "__main__":
    walk(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
