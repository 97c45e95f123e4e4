"""POST /mp/invoice-quote: the proxy-invoice tax quote (forms/tax.py does the arithmetic).

Any logged-in mini-program user may ask (no real-name verification: it only computes). Besides
API.md's fields the body may carry ``period`` ("per_time" | "month" | "quarter", default by
seller kind), ``period_sales`` (the seller's declared sales excluding VAT for the period, this
invoice included, as text) and ``waive_relief`` (give up the 1% cut and the exemption to issue
a 3% 专票); ``issue_date`` defaults to today and ``invoice_kind`` to "general".
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from forms import tax
from miniapp_api.callers import mp_caller, utcnow
from miniapp_api.errors import ValidationFailed
from miniapp_api.openapi_docs import doc
from miniapp_api.validation import parse_body

bp = Blueprint("mp_quote", url_prefix="/mp")


@bp.before_server_start
async def check_tax_rules(app: Any) -> None:
    """Read and check forms/tax_rules.toml now: a broken table stops the start, not a request."""
    tax.rule_book()


def _amount(value: object) -> Decimal:
    return tax.parse_money(value)


def _rate(value: object) -> Decimal | None:
    return None if value is None else tax.parse_rate(value)


def _period_sales(value: object) -> Decimal | None:
    return None if value is None else tax.parse_money(value, "本期销售额", tax.MAX_PERIOD_SALES)


class QuoteLineBody(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    amount_incl_tax: Annotated[Decimal, BeforeValidator(_amount)]
    rate: Annotated[Decimal | None, BeforeValidator(_rate)] = None


class QuoteBody(BaseModel):
    seller_kind: tax.SellerKind
    invoice_kind: tax.InvoiceKind = "general"
    location: tax.Location
    issue_date: date | None = None
    # As many lines as a proxy invoice prints (forms/catalogue/proxy_invoice.toml).
    lines: list[QuoteLineBody] = Field(min_length=1, max_length=8)
    period: tax.Period | None = None
    period_sales: Annotated[Decimal | None, BeforeValidator(_period_sales)] = None
    waive_relief: bool = False

    def to_request(self, today: date) -> tax.QuoteRequest:
        return tax.QuoteRequest(
            seller_kind=self.seller_kind,
            invoice_kind=self.invoice_kind,
            location=self.location,
            issue_date=self.issue_date or today,
            lines=tuple(
                tax.QuoteLine(line.name, line.amount_incl_tax, line.rate) for line in self.lines
            ),
            period_sales=self.period_sales,
            period=self.period,
            waive_relief=self.waive_relief,
        )


@bp.post("/invoice-quote", name="invoice_quote")
@doc(
    "Quote VAT, surtaxes and payable of a proxy VAT invoice (代开增值税发票)",
    "forms",
    auth="person",
    body=QuoteBody,
)
async def invoice_quote(request: Request) -> HTTPResponse:
    await mp_caller(request)
    body = parse_body(request, QuoteBody)
    try:
        answer = tax.quote(
            body.to_request(today=utcnow().date()),
            iit_at_issue=request.app.ctx.settings.iit_at_issue,
        )
    except tax.QuoteRefused as exc:
        raise ValidationFailed(exc.fields) from exc
    return json(answer.as_json())
