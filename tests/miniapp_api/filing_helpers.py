"""What the filing tests share: form data that passes, filing through HTTP, a reviewer's token."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.miniapp_api.test_mp_grants import fresh_id, grant, in_days
from tests.miniapp_api.test_mp_realname import CHEN, auth, claim, login, verify

COMPANY = "91440103MA59D8QK16"
SHOP = "92440103MA5C3RTN8C"
BUYER_USCC = "91350100M000100Y43"


def proxy_invoice_data(amount: str = "5050.00", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "invoice_kind": "general",
        "location": "city",
        "buyer": {"name": "广州示例采购有限公司", "taxpayer_id": BUYER_USCC},
        "lines": [{"name": "维修服务", "amount_incl_tax": amount}],
    }
    data.update(changes)
    return data


def cross_region_data(**changes: Any) -> dict[str, Any]:
    today = date.today()
    data: dict[str, Any] = {
        "address": "深圳市南山区示例路 8 号",
        "business_mode": "建筑安装",
        "contract": {
            "name": "示例大厦装修工程合同",
            "number": "HT-2026-001",
            "amount": "500000.00",
            "start": (today + timedelta(days=3)).isoformat(),
            "end": (today + timedelta(days=120)).isoformat(),
            "counterparty_name": "深圳示例建设有限公司",
            "counterparty_id": BUYER_USCC,
        },
        "contact": {"name": "林芳", "phone": "13800138000"},
    }
    data.update(changes)
    return data


async def person_token(live: LiveServer, who: tuple[str, str] = CHEN) -> str:
    token = await login(live, f"o-fl-{uuid.uuid4().hex[:12]}")
    r = await verify(live, token, claim(*who))
    assert r.status_code == 200, r.text
    return token


async def file(
    live: LiveServer,
    token: str,
    form_code: str,
    data: dict[str, Any],
    taxpayer_id: str | None = None,
    key: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"form_code": form_code, "data": data}
    if taxpayer_id is not None:
        body["taxpayer_id"] = taxpayer_id
    headers = auth(token) | {"Idempotency-Key": key or f"k-{uuid.uuid4().hex}"}
    return await live.http.post("/api/v1/mp/submissions", json=body, headers=headers)


async def filed(live: LiveServer, token: str, form_code: str = "proxy_invoice", **kw: Any) -> Any:
    data = kw.pop("data", None) or (
        proxy_invoice_data() if form_code == "proxy_invoice" else cross_region_data()
    )
    r = await file(live, token, form_code, data, **kw)
    assert r.status_code == 201, r.text
    return r.json()


async def reviewer_token(live: LiveServer) -> str:
    r = await live.http.post(
        "/api/v1/staff/login", json={"username": "reviewer", "password": "suban-demo"}
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


async def staff_act(
    live: LiveServer, token: str, submission_id: int, action: str, **body: Any
) -> httpx.Response:
    return await live.http.post(
        f"/api/v1/staff/submissions/{submission_id}/{action}", json=body, headers=auth(token)
    )


async def granted_clerk(
    live: LiveServer, boss: str, name: str = "钱办税", role: str = "tax_clerk"
) -> str:
    """A verified person holding a confirmed ``role`` on COMPANY, granted by ``boss``."""
    clerk_id = fresh_id()
    body = {"name": name, "id_number": clerk_id, "role": role, "expires_at": in_days(30)}
    r = await grant(live, boss, body)
    assert r.status_code == 201, r.text
    clerk = await person_token(live, (name, clerk_id))
    confirmed = await live.http.post(
        f"/api/v1/mp/grants/{r.json()['grant_id']}/confirm", headers=auth(clerk)
    )
    assert confirmed.status_code == 200, confirmed.text
    return clerk


@asynccontextmanager
async def internal_approval_on(live: LiveServer, approver: str) -> AsyncIterator[str]:
    """COMPANY requires internal approval while inside; yields the settings path."""
    path = f"/api/v1/mp/taxpayers/{COMPANY}/filing-settings"
    r = await live.http.put(path, json={"internal_approval_required": True}, headers=auth(approver))
    assert r.status_code == 200, r.text
    try:
        yield path
    finally:
        await live.http.put(
            path, json={"internal_approval_required": False}, headers=auth(approver)
        )
