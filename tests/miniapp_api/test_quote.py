"""POST /api/v1/mp/invoice-quote over HTTP: API.md's answer, the session it needs, and 422s that
name the field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from auth import clock
from miniapp_api.settings import Settings
from tests.conftest import LiveServer, serve_app
from tests.miniapp_api.test_mp_realname import auth, login

URL = "/api/v1/mp/invoice-quote"
API_KEYS = {
    "lines",
    "total_incl_tax",
    "total_excl_tax",
    "total_tax",
    "surtaxes",
    "payable",
    "exempt",
    "basis",
}
EXTRA_KEYS = {
    "issue_date",
    "seller_kind",
    "invoice_kind",
    "location",
    "period",
    "vat_payable",
    "surtax_detail",
    "reliefs",
}


def body(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "seller_kind": "natural_person",
        "invoice_kind": "general",
        "location": "city",
        "issue_date": "2026-03-10",
        "lines": [{"name": "设计服务", "amount_incl_tax": "5050.00"}],
    }
    data.update(changes)
    return data


def line(**changes: Any) -> dict[str, Any]:
    return {"name": "设计服务", "amount_incl_tax": "5050.00"} | changes


async def test_the_worked_example_in_the_contracts_shape(live: LiveServer) -> None:
    token = await login(live)  # no real-name verification needed to quote
    r = await live.http.post(URL, json=body(), headers=auth(token))
    assert r.status_code == 200, r.text
    a = r.json()
    assert set(a) == API_KEYS | EXTRA_KEYS
    assert a["lines"] == [
        {
            "name": "设计服务",
            "amount_incl_tax": "5050.00",
            "amount_excl_tax": "5000.00",
            "rate": "0.01",
            "tax": "50.00",
        }
    ]
    assert (a["total_incl_tax"], a["total_excl_tax"], a["total_tax"]) == (
        "5050.00",
        "5000.00",
        "50.00",
    )
    assert a["surtaxes"] == {
        "urban_maintenance": "1.75",
        "education": "0.75",
        "local_education": "0.50",
    }
    assert a["payable"] == "53.00"
    assert a["exempt"] is False
    assert a["basis"]
    assert all(isinstance(b, str) and b for b in a["basis"])
    assert "iit" not in a  # SUBAN_IIT_AT_ISSUE is off by default


async def test_declared_period_sales_give_the_surcharge_exemption(live: LiveServer) -> None:
    token = await login(live)
    r = await live.http.post(URL, json=body(period_sales="5000.00"), headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["payable"] == "51.75"
    assert any("财税〔2016〕12号" in b for b in r.json()["basis"])


async def test_a_3_percent_special_invoice_and_the_defaults(live: LiveServer) -> None:
    token = await login(live)
    r = await live.http.post(
        URL,
        json={
            "seller_kind": "individual_business",
            "invoice_kind": "special",
            "location": "county",
            "waive_relief": True,
            "lines": [line(amount_incl_tax="5150.00")],
        },
        headers=auth(token),
    )
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["lines"][0]["rate"] == "0.03"
    assert a["total_tax"] == "150.00"
    assert a["issue_date"] == clock.now().date().isoformat()  # today, in Shanghai
    # A 专票 for a natural-person seller is not the quote's to refuse (no buyer here).
    r = await live.http.post(URL, json=body(invoice_kind="special"), headers=auth(token))
    assert r.status_code == 200, r.text


async def test_without_a_session_it_is_401(live: LiveServer) -> None:
    r = await live.http.post(URL, json=body())
    assert r.status_code == 401
    assert r.json()["error"]["code"] in {"UNAUTHORIZED", "SESSION_EXPIRED"}
    r = await live.http.post(URL, json=body(), headers=auth("not-a-token"))
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("-1.00", "含税金额须大于 0"),
        ("1.001", "含税金额最多保留两位小数"),
        ("abc", "含税金额格式不正确，应为数字，如 5050.00"),
        (0, '含税金额应以文本填写，如 "5050.00"'),
        ("0", "含税金额须大于 0"),
        ("100000000.00", "含税金额不能超过 99999999.99"),
    ],
)
async def test_a_bad_amount_is_422_naming_the_line(
    live: LiveServer, amount: Any, message: str
) -> None:
    token = await login(live)
    r = await live.http.post(
        URL, json=body(lines=[line(), line(amount_incl_tax=amount)]), headers=auth(token)
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert error["fields"] == {"lines.1.amount_incl_tax": message}


async def test_a_rate_the_seller_may_not_use_is_422_on_the_rate(live: LiveServer) -> None:
    token = await login(live)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"lines": [line(rate="0.02")]}, "自然人不适用 2% 征收率"),
        ({"seller_kind": "small_scale", "lines": [line(rate=0.015)]}, "小规模纳税人不适用 1.5%"),
        ({"lines": [line(rate="0.03")]}, "增值税普通发票应按 1% 开具"),
        ({"issue_date": "2028-01-01", "lines": [line(rate="0.01")]}, "不适用 1% 征收率"),
        ({"lines": [line(rate="0.06")]}, "征收率只能是"),
        ({"lines": [line(rate="x")]}, "征收率格式不正确"),
    ]
    for changes, message in cases:
        r = await live.http.post(URL, json=body(**changes), headers=auth(token))
        assert r.status_code == 422, (changes, r.text)
        fields = r.json()["error"]["fields"]
        assert list(fields) == ["lines.0.rate"], fields
        assert message in fields["lines.0.rate"]


async def test_other_422s_name_their_field(live: LiveServer) -> None:
    token = await login(live)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"issue_date": "2022-12-31"}, "issue_date"),
        ({"issue_date": "2026-02-30"}, "issue_date"),
        ({"seller_kind": "general_taxpayer"}, "seller_kind"),
        ({"location": "moon"}, "location"),
        ({"lines": []}, "lines"),
        ({"lines": [line()] * 9}, "lines"),
        ({"waive_relief": True}, "waive_relief"),
        ({"period_sales": "10.00"}, "period_sales"),
        ({"period_sales": 5000}, "period_sales"),
        ({"period": "month", "issue_date": "2025-06-01"}, "period"),
    ]
    for changes, field in cases:
        r = await live.http.post(URL, json=body(**changes), headers=auth(token))
        assert r.status_code == 422, (changes, r.text)
        assert field in r.json()["error"]["fields"], (changes, r.text)
    r = await live.http.post(URL, content=b"{not json", headers=auth(token))
    assert r.status_code == 400


async def test_iit_is_quoted_when_the_bureau_collects_it(settings: Settings) -> None:
    async with serve_app(dataclasses.replace(settings, iit_at_issue=True)) as live:
        token = await login(live)
        r = await live.http.post(URL, json=body(), headers=auth(token))
        assert r.status_code == 200, r.text
        a = r.json()
        assert a["iit"]["tax"] == "800.00"
        assert a["payable"] == "853.00"
        company = await live.http.post(
            URL, json=body(seller_kind="small_scale"), headers=auth(token)
        )
        assert "iit" not in company.json()
