"""Properties of the tax engine over generated requests: every line adds up, totals are the sums
of the lines, tax never falls as an amount grows, and any valid request is quoted.

Deterministic: a fixed number of examples, derandomized, no example database, so CI runs the same
cases every time.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from forms.tax import (
    INVOICE_KINDS,
    LOCATIONS,
    SELLER_KINDS,
    InvoiceKind,
    Location,
    QuoteLine,
    QuoteRequest,
    SellerKind,
    quote,
)

DETERMINISTIC = settings(max_examples=200, deadline=None, derandomize=True, database=None)

FIRST, LAST = date(2023, 1, 1), date(2030, 12, 31)
days = st.integers(0, (LAST - FIRST).days).map(lambda n: FIRST + timedelta(days=n))
amounts = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2, allow_nan=False
)
# The default rate in force, or 5% (销售、出租不动产: every seller, every date, both invoices).
rates = st.sampled_from([None, None, None, Decimal("0.05")])
kinds: st.SearchStrategy[SellerKind] = st.sampled_from(SELLER_KINDS)
invoices: st.SearchStrategy[InvoiceKind] = st.sampled_from(INVOICE_KINDS)
places: st.SearchStrategy[Location] = st.sampled_from(LOCATIONS)


@st.composite
def requests(draw: st.DrawFn, max_lines: int = 20) -> QuoteRequest:
    lines = draw(
        st.lists(
            st.builds(QuoteLine, name=st.just("明细"), amount_incl_tax=amounts, rate=rates),
            min_size=1,
            max_size=max_lines,
        )
    )
    invoice_kind = draw(invoices)
    return QuoteRequest(
        seller_kind=draw(kinds),
        invoice_kind=invoice_kind,
        location=draw(places),
        issue_date=draw(days),
        lines=tuple(lines),
        # Declared sales are at least the invoice's: the most it can be excluding VAT is all of it.
        period_sales=draw(
            st.one_of(
                st.none(),
                st.decimals(
                    min_value=sum(line.amount_incl_tax for line in lines),
                    max_value=Decimal("99999999999.99"),
                    places=2,
                    allow_nan=False,
                ),
            )
        ),
        waive_relief=invoice_kind == "special" and draw(st.booleans()),
    )


def money(text: str) -> Decimal:
    assert text == f"{Decimal(text):.2f}", text
    return Decimal(text)


def check_sums(a: dict[str, Any]) -> None:
    for line in a["lines"]:
        assert money(line["amount_excl_tax"]) + money(line["tax"]) == money(line["amount_incl_tax"])
        assert money(line["tax"]) >= 0
    for key, part in (
        ("total_incl_tax", "amount_incl_tax"),
        ("total_excl_tax", "amount_excl_tax"),
        ("total_tax", "tax"),
    ):
        assert money(a[key]) == sum(money(line[part]) for line in a["lines"])
    surtaxes = sum(money(v) for v in a["surtaxes"].values())
    iit = money(a["iit"]["tax"]) if "iit" in a else Decimal(0)
    assert money(a["payable"]) == money(a["vat_payable"]) + surtaxes + iit
    assert money(a["vat_payable"]) == (Decimal(0) if a["exempt"] else money(a["total_tax"]))
    for detail in a["surtax_detail"]:
        assert money(detail["amount"]) - money(detail["relief"]) == money(detail["payable"])
        assert a["surtaxes"][detail["item"]] == detail["payable"]
    assert a["basis"]
    assert all(isinstance(b, str) and b for b in a["basis"])


@DETERMINISTIC
@given(requests(), st.booleans())
def test_any_valid_request_is_quoted_and_adds_up(request: QuoteRequest, iit: bool) -> None:
    check_sums(quote(request, iit_at_issue=iit).as_json())


@DETERMINISTIC
@given(requests(max_lines=1))
def test_a_line_tax_is_its_amount_excluding_tax_times_the_rate_within_a_cent(
    request: QuoteRequest,
) -> None:
    line = quote(request).lines[0]
    if line.rate.computed_on is None:
        assert abs(line.tax - (line.amount_excl_tax * line.rate.rate)) <= Decimal("0.01")


@DETERMINISTIC
@given(
    kinds,
    invoices,
    places,
    days,
    rates,
    amounts,
    amounts,
    st.booleans(),
    st.one_of(st.none(), st.decimals(min_value=0, max_value=400000, places=2)),
)
def test_tax_never_decreases_as_the_amount_grows(
    seller_kind: SellerKind,
    invoice_kind: InvoiceKind,
    location: Location,
    day: date,
    rate: Decimal | None,
    first: Decimal,
    second: Decimal,
    iit: bool,
    extra_sales: Decimal | None,
) -> None:
    """Same seller, date, place and declared period sales (when given, enough to include the
    larger invoice); only the amount differs."""
    low, high = sorted((first, second))
    sales = None if extra_sales is None else high + extra_sales

    def quoted(amount: Decimal) -> dict[str, Any]:
        request = QuoteRequest(
            seller_kind=seller_kind,
            invoice_kind=invoice_kind,
            location=location,
            issue_date=day,
            lines=(QuoteLine("明细", amount, rate),),
            period_sales=sales,
        )
        return quote(request, iit_at_issue=iit).as_json()

    a, b = quoted(low), quoted(high)
    for key in ("total_tax", "vat_payable", "payable"):
        assert money(a[key]) <= money(b[key]), key
    for item in a["surtaxes"]:
        assert money(a["surtaxes"][item]) <= money(b["surtaxes"][item])


@DETERMINISTIC
@given(amounts, st.sampled_from(["0.01", "0.03", "0.05", "0.015", "0.02"]))
def test_one_cent_more_adds_at_most_one_cent_of_tax(amount: Decimal, rate: str) -> None:
    if amount == Decimal("99999999.99"):
        amount -= Decimal("0.01")
    seller: SellerKind = "individual_business"
    invoice: InvoiceKind = "special" if rate == "0.03" else "general"

    def tax(value: Decimal) -> Decimal:
        request = QuoteRequest(
            seller_kind=seller,
            invoice_kind=invoice,
            location="city",
            issue_date=date(2026, 6, 1),
            lines=(QuoteLine("明细", value, Decimal(rate)),),
        )
        return quote(request).total_tax

    step = tax(amount + Decimal("0.01")) - tax(amount)
    assert step in (Decimal("0.00"), Decimal("0.01"))
