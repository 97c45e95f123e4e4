"""The proxy-invoice tax engine against DOMAIN.md's worked example, the threshold edges either side
of 2026-01-01, the dated rates, surtax rates and reliefs, the 专票 waiver, the reduced rates and the
optional individual income tax; and the rule table's own checks."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest

from forms.tax import (
    QuoteLine,
    QuoteRefused,
    QuoteRequest,
    RuleBookError,
    load_rule_book,
    parse_rule_book,
    quote,
    quote_for_proxy_invoice,
    rule_book,
)

D2025 = date(2025, 6, 15)
D2026 = date(2026, 3, 10)


def request(*amounts: str, rates: tuple[str | None, ...] = (), **changes: Any) -> QuoteRequest:
    rates = rates or (None,) * len(amounts)
    base = QuoteRequest(
        seller_kind="natural_person",
        invoice_kind="general",
        location="city",
        issue_date=D2026,
        lines=tuple(
            QuoteLine(f"服务{i}", Decimal(a), None if r is None else Decimal(r))
            for i, (a, r) in enumerate(zip(amounts or ("5050.00",), rates, strict=True))
        ),
    )
    return dataclasses.replace(base, **changes)


def answer(*amounts: str, iit: bool = False, **changes: Any) -> dict[str, Any]:
    return quote(request(*amounts, **changes), iit_at_issue=iit).as_json()


def refused(*amounts: str, **changes: Any) -> dict[str, str]:
    with pytest.raises(QuoteRefused) as caught:
        quote(request(*amounts, **changes))
    return caught.value.fields


def surtaxes(a: dict[str, Any]) -> tuple[str, str, str]:
    s = a["surtaxes"]
    return s["urban_maintenance"], s["education"], s["local_education"]


def has_basis(a: dict[str, Any], text: str) -> bool:
    return any(text in b for b in a["basis"])


# --------------------------------------------------------------------------- DOMAIN.md's example


def test_the_worked_example_to_the_cent() -> None:
    a = answer("5050.00")
    assert a["lines"] == [
        {
            "name": "服务0",
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
    assert a["vat_payable"] == "50.00"
    assert surtaxes(a) == ("1.75", "0.75", "0.50")
    assert a["payable"] == "53.00"
    assert a["exempt"] is False
    assert "iit" not in a
    detail = {s["item"]: (s["amount"], s["relief"], s["payable"]) for s in a["surtax_detail"]}
    assert detail == {
        "urban_maintenance": ("3.50", "1.75", "1.75"),
        "education": ("1.50", "0.75", "0.75"),
        "local_education": ("1.00", "0.50", "0.50"),
    }
    assert has_basis(a, "公告2023年第12号")
    assert has_basis(a, "城市维护建设税法")
    assert has_basis(a, "2026年第10号")


def test_the_worked_example_with_the_surcharge_exemption_is_51_75() -> None:
    a = answer("5050.00", period_sales=Decimal("5000.00"))
    assert surtaxes(a) == ("1.75", "0.00", "0.00")
    assert a["payable"] == "51.75"
    exemption = [r for r in a["reliefs"] if r["code"] == "small_sales_surcharges"]
    assert [(r["item"], r["amount"]) for r in exemption] == [
        ("education", "1.50"),
        ("local_education", "1.00"),
    ]
    assert all("财税〔2016〕12号" in r["basis"] for r in exemption)
    assert has_basis(a, "财税〔2016〕12号")
    # The halving is not applied again on an exempted surcharge.
    assert [r["item"] for r in a["reliefs"] if r["code"] == "small_business_halving"] == [
        "urban_maintenance"
    ]


def test_the_surcharge_exemption_ends_above_its_limit() -> None:
    assert surtaxes(answer("5050.00", period_sales=Decimal("100000.00"))) == (
        "1.75",
        "0.00",
        "0.00",
    )
    assert surtaxes(answer("5050.00", period_sales=Decimal("100000.01"))) == (
        "1.75",
        "0.75",
        "0.50",
    )


# --------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize(
    ("day", "sales", "exempt"),
    [
        # Before 2026: 月销售额10万元以下（含本数） exempt.
        (D2025, "99999.99", True),
        (D2025, "100000.00", True),
        (D2025, "100000.01", False),
        # From 2026: a 起征点; reaching it taxes the whole amount.
        (D2026, "99999.99", True),
        (D2026, "100000.00", False),
        (D2026, "100000.01", False),
        (date(2025, 12, 31), "100000.00", True),
        (date(2026, 1, 1), "100000.00", False),
    ],
)
def test_monthly_threshold_edges(day: date, sales: str, exempt: bool) -> None:
    a = answer(
        "1010.00",
        seller_kind="small_scale",
        period="month",
        period_sales=Decimal(sales),
        issue_date=day,
    )
    assert a["exempt"] is exempt
    assert a["total_tax"] == "10.00"  # the invoice keeps its split either way
    assert a["vat_payable"] == ("0.00" if exempt else "10.00")
    # VAT 10.00: 城建 0.35, 教育 0.15, 地方教育 0.10 after halving; up to 10万 the two
    # surcharges are exempt (财税〔2016〕12号) even where the VAT is due.
    surcharges_exempt = Decimal(sales) <= 100000
    assert a["payable"] == ("0.00" if exempt else "10.35" if surcharges_exempt else "10.60")
    assert has_basis(a, "2026年第10号" if day.year >= 2026 else "2023年第19号")


@pytest.mark.parametrize(
    ("day", "sales", "exempt"),
    [
        (D2025, "300000.00", True),
        (D2025, "300000.01", False),
        (D2026, "299999.99", True),
        (D2026, "300000.00", False),
    ],
)
def test_quarterly_threshold_edges(day: date, sales: str, exempt: bool) -> None:
    a = answer(
        "1010.00", seller_kind="individual_business", period_sales=Decimal(sales), issue_date=day
    )
    assert a["period"] == "quarter"  # the default for a 个体工商户
    assert a["exempt"] is exempt


def test_at_exactly_300000_in_2026_vat_is_due_but_the_surcharges_are_exempt() -> None:
    a = answer(
        "101000.00", seller_kind="small_scale", period_sales=Decimal("300000.00"), issue_date=D2026
    )
    assert a["exempt"] is False
    assert a["vat_payable"] == "1000.00"
    assert surtaxes(a) == ("35.00", "0.00", "0.00")


@pytest.mark.parametrize(
    ("day", "amount", "excl", "exempt"),
    [
        (D2026, "1009.99", "999.99", True),
        (D2026, "1010.00", "1000.00", False),
        (D2025, "504.99", "499.99", True),
        (D2025, "505.00", "500.00", False),
    ],
)
def test_per_time_threshold_of_a_natural_person(
    day: date, amount: str, excl: str, exempt: bool
) -> None:
    a = answer(amount, issue_date=day)
    assert a["period"] == "per_time"
    assert a["total_excl_tax"] == excl
    assert a["exempt"] is exempt


def test_an_exempt_invoice_keeps_its_split_and_collects_nothing() -> None:
    a = answer("909.00")
    assert a["exempt"] is True
    assert a["lines"][0]["amount_excl_tax"] == "900.00"
    assert a["lines"][0]["tax"] == "9.00"
    assert a["total_tax"] == "9.00"
    assert a["vat_payable"] == "0.00"
    assert surtaxes(a) == ("0.00", "0.00", "0.00")
    assert a["payable"] == "0.00"
    assert [(r["code"], r["item"], r["amount"]) for r in a["reliefs"]] == [
        ("per_time_2026", "vat", "9.00")
    ]
    assert has_basis(a, "起征点为每次（日）销售额1000元")
    # The surtax bases are not claimed for surtaxes that were not levied.
    assert not has_basis(a, "城市维护建设税法")


def test_unknown_period_sales_exempt_nothing_for_a_small_scale_taxpayer() -> None:
    a = answer("1010.00", seller_kind="small_scale")
    assert a["exempt"] is False
    assert a["payable"] == "10.60"


def test_a_special_invoice_is_never_exempt() -> None:
    for day in (D2025, D2026):
        a = answer(
            "1010.00",
            seller_kind="small_scale",
            invoice_kind="special",
            period="month",
            period_sales=Decimal("5000.00"),
            issue_date=day,
        )
        assert a["exempt"] is False
        assert a["lines"][0]["rate"] == "0.01"
        assert a["vat_payable"] == "10.00"
        assert has_basis(a, "2026年第4号" if day.year >= 2026 else "国家税务总局公告2023年第1号")


def test_period_sales_must_include_the_invoice() -> None:
    fields = refused("5050.00", period_sales=Decimal("4999.99"))
    assert fields == {"period_sales": "本期销售额应包含本张发票的不含税销售额 5000.00"}


def test_a_period_the_seller_kind_cannot_file_by_is_refused() -> None:
    assert "period" in refused("5050.00", period="month", issue_date=D2025)
    assert "period" in refused("5050.00", seller_kind="small_scale", period="per_time")
    assert answer("5050.00", period="month", period_sales=Decimal("5000.00"))["exempt"] is True


# --------------------------------------------------------------------------- rates by date


def test_3_percent_special_invoice_when_the_relief_is_waived() -> None:
    a = answer("5150.00", seller_kind="small_scale", invoice_kind="special", waive_relief=True)
    assert a["lines"][0] == {
        "name": "服务0",
        "amount_incl_tax": "5150.00",
        "amount_excl_tax": "5000.00",
        "rate": "0.03",
        "tax": "150.00",
    }
    assert surtaxes(a) == ("5.25", "2.25", "1.50")  # halving still applies
    assert a["payable"] == "159.00"
    assert has_basis(a, "国家税务总局公告2026年第4号")
    assert has_basis(a, "第十一条")  # the VAT Law's 3%


def test_a_3_percent_line_on_a_special_invoice_is_a_waiver_for_that_sale() -> None:
    a = answer("5150.00", rates=("0.03",), seller_kind="small_scale", invoice_kind="special")
    assert a["total_tax"] == "150.00"


def test_waiving_is_only_for_special_invoices_and_excludes_1_percent() -> None:
    assert refused("5050.00", waive_relief=True) == {
        "waive_relief": "放弃减免优惠须开具增值税专用发票"
    }
    assert refused("5050.00", rates=("0.03",)) == {
        "lines.0.rate": "开票日适用减按1%征收率，增值税普通发票应按 1% 开具；"
        "放弃减税须开具增值税专用发票"
    }
    assert refused("5050.00", rates=("0.01",), invoice_kind="special", waive_relief=True) == {
        "lines.0.rate": "已选择放弃减税，不能按 1% 开具"
    }


def test_the_1_percent_rate_ends_on_2027_12_31() -> None:
    last = answer("5050.00", issue_date=date(2027, 12, 31))
    assert last["lines"][0]["rate"] == "0.01"
    assert last["payable"] == "53.00"
    first = answer("5150.00", issue_date=date(2028, 1, 1))
    assert first["lines"][0]["rate"] == "0.03"
    assert first["total_tax"] == "150.00"
    # No halving after 2027 either: 7% + 3% + 2% of 150.00.
    assert surtaxes(first) == ("10.50", "4.50", "3.00")
    assert first["payable"] == "168.00"
    assert not has_basis(first, "公告2023年第12号")
    assert refused("5050.00", rates=("0.01",), issue_date=date(2028, 1, 1)) == {
        "lines.0.rate": "开票日 2028-01-01 不适用 1% 征收率"
    }
    # A 3% 普票 is fine once no relief is in force.
    assert answer("5150.00", rates=("0.03",), issue_date=date(2028, 1, 1))["total_tax"] == "150.00"


def test_2025_uses_the_2023_announcements_and_2026_the_vat_law() -> None:
    a2025 = answer("5050.00", issue_date=D2025)
    assert a2025["payable"] == "53.00"
    assert has_basis(a2025, "2023年第19号")
    assert has_basis(a2025, "实施细则》第三十七条")
    assert not has_basis(a2025, "2026年")
    assert has_basis(answer("5150.00", rates=("0.03",), issue_date=date(2028, 1, 1)), "增值税法")


def test_dates_before_the_table_are_refused() -> None:
    assert refused("5050.00", issue_date=date(2022, 12, 31)) == {
        "issue_date": "开票日期早于税费规则表的起始日期 2023-01-01，无法试算"
    }
    assert answer("5050.00", issue_date=date(2023, 1, 1))["payable"] == "53.00"


@pytest.mark.parametrize(
    ("location", "urban", "payable"),
    [("city", "1.75", "53.00"), ("county", "1.25", "52.50"), ("other", "0.25", "51.50")],
)
def test_urban_maintenance_tax_by_location(location: str, urban: str, payable: str) -> None:
    a = answer("5050.00", location=location)
    assert surtaxes(a) == (urban, "0.75", "0.50")
    assert a["payable"] == payable
    rate = {"city": "0.07", "county": "0.05", "other": "0.01"}[location]
    assert a["surtax_detail"][0]["rate"] == rate


def test_the_odd_cent_of_a_halving_is_the_taxpayers() -> None:
    # VAT 1.00: 城建 0.07 → reduction 0.04, payable 0.03; 教育 0.03 → 0.02 off, 0.01 due.
    a = answer("101.00", seller_kind="small_scale")
    assert a["vat_payable"] == "1.00"
    assert surtaxes(a) == ("0.03", "0.01", "0.01")
    assert a["payable"] == "1.05"


def test_lines_are_split_one_by_one_and_summed() -> None:
    a = answer("100.00", "100.00", "100.00", seller_kind="small_scale")
    # 100.00 ÷ 1.01 = 99.0099 → 99.01, tax 0.99 each; the totals are the lines' sums.
    assert [line["tax"] for line in a["lines"]] == ["0.99", "0.99", "0.99"]
    assert (a["total_excl_tax"], a["total_tax"]) == ("297.03", "2.97")


def test_an_exact_half_cent_rounds_up() -> None:
    # ÷ 1.01 or ÷ 1.03 never lands on a half cent; 0.35 ÷ 1.05 × 1.5% = 0.005 exactly.
    a = answer("0.35", rates=("0.015",))
    assert (a["lines"][0]["amount_excl_tax"], a["lines"][0]["tax"]) == ("0.34", "0.01")


# --------------------------------------------------------------------------- other rates


def test_housing_rental_is_5_percent_reduced_to_1_5() -> None:
    a = answer("10500.00", rates=("0.015",))
    # 10,500.00 ÷ 1.05 × 1.5% = 150.00; 不含税 = 含税 − 税额.
    assert a["lines"][0]["rate"] == "0.015"
    assert (a["lines"][0]["amount_excl_tax"], a["lines"][0]["tax"]) == ("10350.00", "150.00")
    assert has_basis(a, "减按1.5%")
    assert refused("10500.00", "100.00", rates=("0.015", None)) == {
        "lines.0.rate": "征收率 1.5%（个人出租住房减按1.5%）的明细须单独开具发票"
    }
    assert refused("10500.00", rates=("0.015",), seller_kind="small_scale") == {
        "lines.0.rate": "小规模纳税人不适用 1.5% 征收率（个人出租住房减按1.5%）"
    }


def test_used_fixed_assets_are_3_percent_reduced_to_2_on_general_invoices_only() -> None:
    a = answer("10300.00", rates=("0.02",), seller_kind="individual_business")
    assert (a["lines"][0]["amount_excl_tax"], a["lines"][0]["tax"]) == ("10100.00", "200.00")
    assert refused(
        "10300.00", rates=("0.02",), seller_kind="small_scale", invoice_kind="special"
    ) == {"lines.0.rate": "2% 征收率（销售自己使用过的固定资产、旧货减按2%）不能开具增值税专用发票"}
    assert "lines.0.rate" in refused("10300.00", rates=("0.02",))  # natural person


def test_real_estate_is_5_percent_for_everyone() -> None:
    a = answer("105000.00", rates=("0.05",), seller_kind="small_scale")
    assert (a["total_excl_tax"], a["total_tax"]) == ("100000.00", "5000.00")


def test_an_unknown_rate_names_the_known_ones() -> None:
    assert refused("5050.00", "100.00", rates=(None, "0.06")) == {
        "lines.1.rate": "征收率只能是 0.01、0.015、0.02、0.03、0.05 之一"
    }


def test_bad_amounts_are_refused_by_line() -> None:
    fields = refused("0.00", "1.001", "100000000.00", "-3.00")
    assert fields == {
        "lines.0.amount_incl_tax": "含税金额须大于 0",
        "lines.1.amount_incl_tax": "含税金额最多保留两位小数",
        "lines.2.amount_incl_tax": "含税金额不能超过 99999999.99",
        "lines.3.amount_incl_tax": "含税金额须大于 0",
    }
    assert refused("5050.00", lines=()) == {"lines": "请至少填写一行明细"}


# --------------------------------------------------------------------------- individual income tax


@pytest.mark.parametrize(
    ("amount", "income", "deduction", "rate", "iit"),
    [
        ("3030.00", "3000.00", "800.00", "0.2", "440.00"),
        ("4040.00", "4000.00", "800.00", "0.2", "640.00"),
        ("4040.01", "4000.01", "800.00", "0.2", "640.00"),  # 4000.01 × 80% = 3200.008
        ("5050.00", "5000.00", "1000.00", "0.2", "800.00"),
        ("25250.00", "25000.00", "5000.00", "0.2", "4000.00"),  # taxable 20,000: first bracket
        ("30300.00", "30000.00", "6000.00", "0.3", "5200.00"),
        ("63125.00", "62500.00", "12500.00", "0.3", "13000.00"),  # taxable 50,000
        ("101000.00", "100000.00", "20000.00", "0.4", "25000.00"),
    ],
)
def test_iit_on_service_fees_when_collected_at_issue(
    amount: str, income: str, deduction: str, rate: str, iit: str
) -> None:
    a = answer(amount, iit=True)
    assert a["iit"]["income"] == income
    assert a["iit"]["deduction"] == deduction
    assert a["iit"]["rate"] == rate
    assert a["iit"]["tax"] == iit
    without = answer(amount)
    assert Decimal(a["payable"]) == Decimal(without["payable"]) + Decimal(iit)
    assert has_basis(a, "国家税务总局公告2018年第61号")
    assert not has_basis(without, "国家税务总局公告2018年第61号")


def test_the_worked_example_with_iit_is_853() -> None:
    a = answer("5050.00", iit=True)
    assert a["iit"] == {
        "income": "5000.00",
        "deduction": "1000.00",
        "taxable": "4000.00",
        "rate": "0.2",
        "quick_deduction": "0.00",
        "tax": "800.00",
        "basis": a["iit"]["basis"],
    }
    assert a["payable"] == "853.00"


def test_iit_income_is_the_whole_amount_when_vat_is_exempt() -> None:
    a = answer("909.00", iit=True)
    assert a["exempt"] is True
    assert (a["iit"]["income"], a["iit"]["taxable"], a["iit"]["tax"]) == (
        "909.00",
        "109.00",
        "21.80",
    )
    assert a["payable"] == "21.80"
    tiny = answer("500.00", iit=True)
    assert (tiny["iit"]["deduction"], tiny["iit"]["tax"], tiny["payable"]) == (
        "500.00",
        "0.00",
        "0.00",
    )


def test_crossing_the_threshold_never_lowers_the_payable_even_with_iit() -> None:
    # Income falls by the VAT now collected, so the IIT drops a little; the VAT outweighs it.
    below, at = answer("1009.99", iit=True), answer("1010.00", iit=True)
    assert (below["exempt"], below["iit"]["tax"], below["payable"]) == (True, "42.00", "42.00")
    assert (at["exempt"], at["iit"]["tax"], at["payable"]) == (False, "40.00", "50.60")


def test_iit_is_only_for_natural_persons() -> None:
    assert "iit" not in answer("5050.00", iit=True, seller_kind="small_scale")
    assert "iit" not in answer("5050.00", iit=True, seller_kind="individual_business")


# --------------------------------------------------------------------------- form data


def proxy_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "invoice_kind": "general",
        "location": "city",
        "buyer": {"name": "广州示例采购有限公司", "taxpayer_id": "91350100M000100Y43"},
        "lines": [{"name": "维修服务", "amount_incl_tax": "5050.00"}],
    }
    data.update(changes)
    return data


def test_quote_for_proxy_invoice_reads_the_form_data() -> None:
    got = quote_for_proxy_invoice(
        proxy_data(), seller_kind="natural_person", issue_date=D2026, iit_at_issue=False
    )
    assert got == answer("5050.00") | {"lines": [got["lines"][0]]}
    assert got["lines"][0]["name"] == "维修服务"
    assert got["payable"] == "53.00"
    with_iit = quote_for_proxy_invoice(
        proxy_data(), seller_kind="natural_person", issue_date=D2026, iit_at_issue=True
    )
    assert with_iit["iit"]["tax"] == "800.00"
    special = quote_for_proxy_invoice(
        proxy_data(
            invoice_kind="special",
            lines=[{"name": "维修服务", "amount_incl_tax": "5150.00", "rate": "0.03"}],
        ),
        seller_kind="individual_business",
        issue_date=D2026,
        iit_at_issue=False,
    )
    assert special["total_tax"] == "150.00"


def test_quote_for_proxy_invoice_refuses_with_paths() -> None:
    with pytest.raises(QuoteRefused) as caught:
        quote_for_proxy_invoice(
            proxy_data(
                location="moon",
                lines=[
                    {"name": "a", "amount_incl_tax": 5050},
                    {"name": "b", "amount_incl_tax": "1.00", "rate": "abc"},
                    "x",
                ],
            ),
            seller_kind="natural_person",
            issue_date=D2026,
            iit_at_issue=False,
        )
    assert caught.value.fields == {
        "location": "不是允许的取值",
        "lines.0.amount_incl_tax": '含税金额应以文本填写，如 "5050.00"',
        "lines.1.rate": "征收率格式不正确，应为数字，如 0.01",
        "lines.2": "应为对象",
    }
    with pytest.raises(QuoteRefused) as caught:
        quote_for_proxy_invoice(
            proxy_data(lines=[{"name": "a", "amount_incl_tax": "100.00", "rate": "0.02"}]),
            seller_kind="natural_person",
            issue_date=D2026,
            iit_at_issue=False,
        )
    assert list(caught.value.fields) == ["lines.0.rate"]


# --------------------------------------------------------------------------- the rule table


def shipped() -> dict[str, Any]:
    text = resources.files("forms").joinpath("tax_rules.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def test_the_shipped_table_loads_and_every_rule_has_a_basis() -> None:
    book = rule_book()
    assert book.covers_from == date(2023, 1, 1)
    groups: list[Any] = [
        book.levy_rates,
        book.vat_thresholds,
        book.special_invoice,
        book.surtax_rates,
        book.surtax_exemptions,
        book.surtax_reductions,
        book.iit_rules,
    ]
    for group in groups:
        assert group
        for rule in group:
            assert len(rule.basis) > 10


def rate_entry(data: dict[str, Any], code: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(e for e in data["levy_rate"] if e["code"] == code)
    return entry


def test_the_table_check_finds_overlaps_and_gaps() -> None:
    overlap = shipped()
    del rate_entry(overlap, "small_scale_standard")["valid_to"]
    with pytest.raises(RuleBookError, match="2026-01-01 natural_person: 2 standard rates"):
        parse_rule_book(overlap)
    gap = shipped()
    rate_entry(gap, "simplified_standard")["valid_from"] = date(2026, 2, 1)
    with pytest.raises(RuleBookError, match="2026-01-01 natural_person: 0 standard rates"):
        parse_rule_book(gap)
    no_threshold = shipped()
    no_threshold["vat_threshold"] = [
        t for t in no_threshold["vat_threshold"] if t["code"] != "per_time_2026"
    ]
    with pytest.raises(RuleBookError, match="natural_person: 0 per_time thresholds"):
        parse_rule_book(no_threshold)
    float_rate = shipped()
    rate_entry(float_rate, "simplified_standard")["rate"] = 0.03
    with pytest.raises(RuleBookError, match=r"levy_rate\[1\]: rate must be a decimal"):
        parse_rule_book(float_rate)
    with pytest.raises(RuleBookError, match="not valid TOML"):
        load_rule_book("covers_from = ")


def test_a_changed_table_changes_the_quote_without_code() -> None:
    data = shipped()
    city = next(r for r in data["surtax_rate"] if r.get("location") == "city")
    city["rate"] = "0.06"
    a = quote(request("5050.00"), rules=parse_rule_book(data)).as_json()
    assert surtaxes(a) == ("1.50", "0.75", "0.50")
