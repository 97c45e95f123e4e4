"""The proxy-invoice tax engine (代开增值税发票, DOMAIN.md): what the tax office collects when it
issues a VAT invoice for a natural person, a small-scale taxpayer or an 个体工商户.

Every rate, threshold and relief comes from ``tax_rules.toml`` (data with effective dates and the
政策依据 a quote returns in ``basis``); this module holds only the arithmetic and the order the
rules apply in. Pure: no Sanic, no database, no clock (the issue date is an input).

Arithmetic, to the cent, ROUND_HALF_UP throughout:

* A line: 不含税 = round(含税 ÷ (1 + 征收率)); 税额 = 含税 − 不含税, so 不含税 + 税额 = 价税合计
  exactly (rounding 不含税 × 征收率 on its own would disagree by a cent on about 1.3% of amounts).
  A rate reduced from another (减按: 1.5% of 5%, 2% of 3%) is the other way round, as the law
  writes it: 税额 = round(含税 ÷ (1 + 原征收率) × 征收率); 不含税 = 含税 − 税额.
* Totals are the sums of the lines.
* VAT threshold (免征 / 起征点): the rule for the seller's filing period (按次 / 按月 / 按季).
  Per time, the invoice's own 不含税 total is measured; per month or quarter, the declared
  ``period_sales`` (不含税, this invoice included); unknown sales exempt nothing (the office
  collects at issue and a seller under the threshold reclaims it when filing). A 专票 is never
  exempt. An exempt invoice is still issued at its rate, so the lines keep their 不含税/税额
  split and the totals stay the sums of the lines, but nothing is collected: ``vat_payable``
  0.00, ``exempt`` true, and the exemption is listed among the reliefs with its basis.
* Surtaxes are levied on the VAT collected (``vat_payable``), each rounded on its own; then
  the reliefs in force, in order: an exemption (财税〔2016〕12号, needs ``period_sales``) takes
  the whole surtax; a reduction (公告2023年第12号 halving) takes round(surtax × share), so the
  odd cent of a halving is the taxpayer's, as on the 附加税费申报表. Each relief is a line of
  its own.
* Individual income tax on a natural person's 劳务报酬, only where the bureau collects it at issue
  (setting ``iit_at_issue``): income = 价税合计 − VAT collected, less the table's deduction, then
  the 预扣率表 bracket's rate and quick deduction.
* ``payable`` = VAT collected + surtaxes after reliefs (+ IIT when computed).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from functools import cache
from importlib import resources
from typing import Any, Literal, Protocol, TypeVar, get_args

SellerKind = Literal["natural_person", "small_scale", "individual_business"]
InvoiceKind = Literal["general", "special"]
Location = Literal["city", "county", "other"]
Period = Literal["per_time", "month", "quarter"]
SurtaxItem = Literal["urban_maintenance", "education", "local_education"]
RateRole = Literal["standard", "relief", "special"]
AtLimit = Literal["exempt", "taxed"]

SELLER_KINDS: tuple[SellerKind, ...] = get_args(SellerKind)
INVOICE_KINDS: tuple[InvoiceKind, ...] = get_args(InvoiceKind)
LOCATIONS: tuple[Location, ...] = get_args(Location)
PERIODS: tuple[Period, ...] = get_args(Period)
SURTAX_ITEMS: tuple[SurtaxItem, ...] = get_args(SurtaxItem)
RATE_ROLES: tuple[RateRole, ...] = get_args(RateRole)
AT_LIMITS: tuple[AtLimit, ...] = get_args(AtLimit)

SELLER_LABELS: dict[SellerKind, str] = {
    "natural_person": "自然人",
    "small_scale": "小规模纳税人",
    "individual_business": "个体工商户",
}
INVOICE_LABELS: dict[InvoiceKind, str] = {
    "general": "增值税普通发票",
    "special": "增值税专用发票",
}
PERIOD_LABELS: dict[Period, str] = {"per_time": "按次", "month": "按月", "quarter": "按季"}
# How a seller files when the request does not say: natural persons per time (按次), small-scale
# taxpayers and 个体工商户 by quarter (the usual 纳税期限 of a small-scale taxpayer).
DEFAULT_PERIOD: dict[SellerKind, Period] = {
    "natural_person": "per_time",
    "small_scale": "quarter",
    "individual_business": "quarter",
}

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# The invoice's amount fields (as forms/catalogue/proxy_invoice.toml) and a generous cap for a
# period's declared sales.
MAX_LINE_AMOUNT = Decimal("99999999.99")
MAX_PERIOD_SALES = Decimal("99999999999.99")

_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def round_cent(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money_text(value: Decimal) -> str:
    return str(round_cent(value))


def percent(rate: Decimal) -> str:
    """``Decimal("0.015")`` → ``"1.5%"``."""
    return f"{(rate * 100).normalize():f}%"


# --------------------------------------------------------------------------- parsing inputs


def parse_money(
    value: object, label: str = "含税金额", maximum: Decimal = MAX_LINE_AMOUNT
) -> Decimal:
    """A positive amount written as text with at most two decimals (the contract's money), or
    ``ValueError`` with the reason in Chinese. A JSON number is refused: it may already have lost
    a cent in a float."""
    if not isinstance(value, str):
        raise ValueError(f'{label}应以文本填写，如 "5050.00"')
    text = value.strip()
    if not text:
        raise ValueError(f"请填写{label}")
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{label}格式不正确，应为数字，如 5050.00")
    problem = money_problem(Decimal(text), label, maximum)
    if problem:
        raise ValueError(problem)
    return round_cent(Decimal(text))


def money_problem(amount: Decimal, label: str, maximum: Decimal) -> str | None:
    """Why ``amount`` is not a positive amount in cents up to ``maximum``, or None."""
    if not amount.is_finite():
        return f"{label}格式不正确，应为数字，如 5050.00"
    if amount <= 0:
        return f"{label}须大于 0"
    if amount > maximum:
        return f"{label}不能超过 {maximum}"
    if amount != amount.quantize(CENT):
        return f"{label}最多保留两位小数"
    return None


def parse_rate(value: object) -> Decimal:
    """A levy rate as text or a JSON number (``"0.01"``, ``0.015``), or ``ValueError``. Whether
    the seller may use it on the issue date is :func:`quote`'s question."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("征收率应为数字，如 0.01")
    # A float's repr is the shortest text that reads back as the same float: what the client wrote.
    text = (repr(value) if isinstance(value, float) else str(value)).strip()
    if not _NUMBER.fullmatch(text):
        raise ValueError("征收率格式不正确，应为数字，如 0.01")
    rate = Decimal(text)
    if not 0 < rate < 1:
        raise ValueError("征收率应大于 0 且小于 1，如 0.01")
    return rate


# --------------------------------------------------------------------------- the rule book


class RuleBookError(ValueError):
    """``tax_rules.toml`` is malformed or inconsistent; says which entry."""


@dataclass(frozen=True)
class Span:
    """Days a rule is in force, both ends included; ``valid_to`` None: until changed."""

    valid_from: date
    valid_to: date | None = None

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class LevyRate:
    code: str
    label: str
    rate: Decimal
    text: str
    role: RateRole
    seller_kinds: frozenset[SellerKind]
    invoice_kinds: frozenset[InvoiceKind]
    span: Span
    basis: str
    computed_on: Decimal | None = None
    alone: bool = False

    def split(self, amount_incl_tax: Decimal) -> tuple[Decimal, Decimal]:
        """(不含税, 税额) of one line; they add up to ``amount_incl_tax`` exactly."""
        with localcontext() as ctx:
            ctx.prec = 50
            if self.computed_on is None:
                # 不含税 = round-half-up(含税 ÷ (1 + 征收率)); 税额 = 含税 − 不含税.
                excl = round_cent(amount_incl_tax / (1 + self.rate))
                return excl, amount_incl_tax - excl
            # 减按: 税额 = round-half-up(含税 ÷ (1 + 原征收率) × 征收率); 不含税 = 含税 − 税额.
            tax = round_cent(amount_incl_tax / (1 + self.computed_on) * self.rate)
            return amount_incl_tax - tax, tax


@dataclass(frozen=True)
class VatThreshold:
    code: str
    label: str
    period: Period
    seller_kinds: frozenset[SellerKind]
    limit: Decimal
    at_limit: AtLimit
    span: Span
    basis: str

    def exempts(self, sales: Decimal) -> bool:
        """ "以下（含本数）" exempts the limit itself; a 起征点 taxes it (and everything above)."""
        return sales <= self.limit if self.at_limit == "exempt" else sales < self.limit


@dataclass(frozen=True)
class SpecialInvoiceRule:
    code: str
    span: Span
    basis: str


@dataclass(frozen=True)
class SurtaxRate:
    item: SurtaxItem
    label: str
    location: Location | None  # None: every location
    rate: Decimal
    text: str
    span: Span
    basis: str


@dataclass(frozen=True)
class SurtaxExemption:
    code: str
    label: str
    items: frozenset[SurtaxItem]
    limits: Mapping[Period, Decimal]  # sales up to and including the limit are exempt
    span: Span
    basis: str


@dataclass(frozen=True)
class SurtaxReduction:
    code: str
    label: str
    items: frozenset[SurtaxItem]
    seller_kinds: frozenset[SellerKind]
    share: Decimal  # the part of the surtax not collected
    span: Span
    basis: str


@dataclass(frozen=True)
class IitBracket:
    up_to: Decimal | None
    rate: Decimal
    text: str
    quick_deduction: Decimal


@dataclass(frozen=True)
class IitRule:
    code: str
    seller_kinds: frozenset[SellerKind]
    fixed_deduction_up_to: Decimal
    fixed_deduction: Decimal
    share_deduction: Decimal
    brackets: tuple[IitBracket, ...]
    span: Span
    basis: str


class _Dated(Protocol):
    @property
    def span(self) -> Span: ...


_D = TypeVar("_D", bound=_Dated)
_C = TypeVar("_C", bound=str)


def _in_force(rules: Iterable[_D], day: date) -> list[_D]:
    return [rule for rule in rules if day in rule.span]


@dataclass(frozen=True)
class RuleBook:
    covers_from: date
    levy_rates: tuple[LevyRate, ...]
    vat_thresholds: tuple[VatThreshold, ...]
    special_invoice: tuple[SpecialInvoiceRule, ...]
    surtax_rates: tuple[SurtaxRate, ...]
    surtax_exemptions: tuple[SurtaxExemption, ...]
    surtax_reductions: tuple[SurtaxReduction, ...]
    iit_rules: tuple[IitRule, ...]

    def rates_for(self, kind: SellerKind, day: date) -> list[LevyRate]:
        return [r for r in self.levy_rates if day in r.span and kind in r.seller_kinds]

    def rate_by_role(self, kind: SellerKind, day: date, role: RateRole) -> LevyRate | None:
        found = [r for r in self.rates_for(kind, day) if r.role == role]
        return found[0] if found else None

    def threshold(self, period: Period, kind: SellerKind, day: date) -> VatThreshold | None:
        found = [
            t
            for t in self.vat_thresholds
            if t.period == period and kind in t.seller_kinds and day in t.span
        ]
        return found[0] if found else None

    def special_invoice_rule(self, day: date) -> SpecialInvoiceRule | None:
        found = _in_force(self.special_invoice, day)
        return found[0] if found else None

    def surtax_rate(self, item: SurtaxItem, location: Location, day: date) -> SurtaxRate:
        found = [
            r
            for r in _in_force(self.surtax_rates, day)
            if r.item == item and r.location in (None, location)
        ]
        if len(found) != 1:  # check() makes this unreachable for days the table covers
            raise RuleBookError(f"{item}/{location} on {day}: {len(found)} surtax rates")
        return found[0]

    def iit_rule(self, kind: SellerKind, day: date) -> IitRule | None:
        found = [r for r in _in_force(self.iit_rules, day) if kind in r.seller_kinds]
        return found[0] if found else None

    def rate_texts(self) -> list[str]:
        """Every rate the table knows, smallest first."""
        seen = {r.rate: r.text for r in self.levy_rates}
        return [seen[rate] for rate in sorted(seen)]

    def check(self) -> None:
        """:class:`RuleBookError` unless, on every day from ``covers_from``, each seller kind has
        one standard rate, at most one relief rate, one rule per rate, a threshold for its default
        period and at most one per period; each surtax one rate per location; at most one 专票
        rule and one IIT rule per kind."""
        spans: list[Span] = [
            rule.span
            for group in (
                self.levy_rates,
                self.vat_thresholds,
                self.special_invoice,
                self.surtax_rates,
                self.surtax_exemptions,
                self.surtax_reductions,
                self.iit_rules,
            )
            for rule in group
        ]
        days = {self.covers_from}
        for span in spans:
            days.add(span.valid_from)
            if span.valid_to is not None:
                days.add(span.valid_to + timedelta(days=1))
        problems: list[str] = []
        for day in sorted(d for d in days if d >= self.covers_from):
            problems.extend(self._problems_on(day))
        if problems:
            raise RuleBookError("; ".join(problems))

    def _problems_on(self, day: date) -> list[str]:
        problems: list[str] = []
        for kind in SELLER_KINDS:
            rates = self.rates_for(kind, day)
            for role, most in (("standard", 1), ("relief", 1)):
                count = sum(1 for r in rates if r.role == role)
                if count > most or (role == "standard" and count == 0):
                    problems.append(f"{day} {kind}: {count} {role} rates")
            values = [r.rate for r in rates]
            if len(values) != len(set(values)):
                problems.append(f"{day} {kind}: a rate listed twice")
            for period in PERIODS:
                count = len(
                    [
                        t
                        for t in self.vat_thresholds
                        if t.period == period and kind in t.seller_kinds and day in t.span
                    ]
                )
                if count > 1 or (period == DEFAULT_PERIOD[kind] and count == 0):
                    problems.append(f"{day} {kind}: {count} {period} thresholds")
            if len([r for r in _in_force(self.iit_rules, day) if kind in r.seller_kinds]) > 1:
                problems.append(f"{day} {kind}: several IIT rules")
        for item in SURTAX_ITEMS:
            for location in LOCATIONS:
                count = len(
                    [
                        r
                        for r in _in_force(self.surtax_rates, day)
                        if r.item == item and r.location in (None, location)
                    ]
                )
                if count != 1:
                    problems.append(f"{day} {item}/{location}: {count} surtax rates")
        if len(_in_force(self.special_invoice, day)) > 1:
            problems.append(f"{day}: several special_invoice rules")
        return problems


class _Entry:
    """One table entry being read; errors name it."""

    def __init__(self, table: str, index: int, data: object) -> None:
        if not isinstance(data, dict):
            raise RuleBookError(f"{table}[{index}] is not a table")
        self.where = f"{table}[{index}]"
        self.data: dict[str, Any] = data

    def fail(self, message: str) -> RuleBookError:
        return RuleBookError(f"{self.where}: {message}")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{key} must be non-empty text")
        return value

    def decimal(self, key: str, data: Mapping[str, Any] | None = None) -> Decimal:
        value = (self.data if data is None else data).get(key)
        if not isinstance(value, str):
            raise self.fail(f"{key} must be a decimal written as text")
        try:
            number = Decimal(value)
        except InvalidOperation as exc:
            raise self.fail(f"{key}: {value!r} is not a decimal") from exc
        if not number.is_finite() or number < 0:
            raise self.fail(f"{key}: {value!r} must be a non-negative decimal")
        return number

    def rate(self, key: str, data: Mapping[str, Any] | None = None) -> Decimal:
        number = self.decimal(key, data)
        if not 0 < number < 1:
            raise self.fail(f"{key}: a rate must lie between 0 and 1")
        return number

    def day(self, key: str) -> date | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, date) or hasattr(value, "hour"):
            raise self.fail(f"{key} must be a TOML date (YYYY-MM-DD)")
        return value

    def span(self) -> Span:
        start, end = self.day("valid_from"), self.day("valid_to")
        if start is None:
            raise self.fail("valid_from is required")
        if end is not None and end < start:
            raise self.fail("valid_to is before valid_from")
        return Span(start, end)

    def choice(self, key: str, allowed: tuple[_C, ...], default: _C | None = None) -> _C:
        value = self.data.get(key, default)
        for option in allowed:
            if value == option:
                return option
        raise self.fail(f"{key}: {value!r} is not one of {list(allowed)}")

    def choices(
        self, key: str, allowed: tuple[_C, ...], default: tuple[_C, ...] | None = None
    ) -> frozenset[_C]:
        value = self.data.get(key, list(default) if default is not None else None)
        if not isinstance(value, list) or not value:
            raise self.fail(f"{key} must be a non-empty list")
        chosen: set[_C] = set()
        for item in value:
            matches = [option for option in allowed if item == option]
            if not matches:
                raise self.fail(f"{key}: {item!r} is not one of {list(allowed)}")
            chosen.add(matches[0])
        return frozenset(chosen)


def _entries(data: Mapping[str, Any], table: str) -> list[_Entry]:
    value = data.get(table, [])
    if not isinstance(value, list):
        raise RuleBookError(f"{table} must be an array of tables ([[{table}]])")
    return [_Entry(table, index, item) for index, item in enumerate(value)]


def _levy_rate(entry: _Entry) -> LevyRate:
    role = entry.choice("role", RATE_ROLES)
    computed_on = entry.rate("computed_on") if "computed_on" in entry.data else None
    if computed_on is not None and role != "special":
        raise entry.fail("only a special rate may be computed on another")
    alone = entry.data.get("alone", False)
    if not isinstance(alone, bool):
        raise entry.fail("alone must be true or false")
    return LevyRate(
        code=entry.text("code"),
        label=entry.text("label"),
        rate=entry.rate("rate"),
        text=entry.text("rate"),
        role=role,
        seller_kinds=entry.choices("seller_kinds", SELLER_KINDS),
        invoice_kinds=entry.choices("invoice_kinds", INVOICE_KINDS, INVOICE_KINDS),
        span=entry.span(),
        basis=entry.text("basis"),
        computed_on=computed_on,
        alone=alone,
    )


def _threshold(entry: _Entry) -> VatThreshold:
    return VatThreshold(
        code=entry.text("code"),
        label=entry.text("label"),
        period=entry.choice("period", PERIODS),
        seller_kinds=entry.choices("seller_kinds", SELLER_KINDS),
        limit=entry.decimal("limit"),
        at_limit=entry.choice("at_limit", AT_LIMITS),
        span=entry.span(),
        basis=entry.text("basis"),
    )


def _surtax_rate(entry: _Entry) -> SurtaxRate:
    location = entry.choice("location", LOCATIONS) if "location" in entry.data else None
    return SurtaxRate(
        item=entry.choice("item", SURTAX_ITEMS),
        label=entry.text("label"),
        location=location,
        rate=entry.rate("rate"),
        text=entry.text("rate"),
        span=entry.span(),
        basis=entry.text("basis"),
    )


def _surtax_exemption(entry: _Entry) -> SurtaxExemption:
    raw = entry.data.get("limits")
    if not isinstance(raw, dict) or not raw:
        raise entry.fail("limits must be a table of period = amount")
    limits: dict[Period, Decimal] = {}
    for key in raw:
        period = _Entry(entry.where, 0, {"period": key}).choice("period", PERIODS)
        limits[period] = entry.decimal(key, raw)
    return SurtaxExemption(
        code=entry.text("code"),
        label=entry.text("label"),
        items=entry.choices("items", SURTAX_ITEMS),
        limits=limits,
        span=entry.span(),
        basis=entry.text("basis"),
    )


def _surtax_reduction(entry: _Entry) -> SurtaxReduction:
    return SurtaxReduction(
        code=entry.text("code"),
        label=entry.text("label"),
        items=entry.choices("items", SURTAX_ITEMS),
        seller_kinds=entry.choices("seller_kinds", SELLER_KINDS),
        share=entry.rate("share"),
        span=entry.span(),
        basis=entry.text("basis"),
    )


def _iit_rule(entry: _Entry) -> IitRule:
    raw = entry.data.get("brackets")
    if not isinstance(raw, list) or not raw:
        raise entry.fail("brackets must be a non-empty list")
    brackets: list[IitBracket] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise entry.fail(f"brackets[{index}] is not a table")
        last = index == len(raw) - 1
        if ("up_to" in item) == last:
            raise entry.fail("every bracket but the last needs up_to; the last has none")
        up_to = entry.decimal("up_to", item) if "up_to" in item else None
        previous = brackets[-1].up_to if brackets else None
        if up_to is not None and previous is not None and up_to <= previous:
            raise entry.fail("brackets must rise")
        brackets.append(
            IitBracket(
                up_to=up_to,
                rate=entry.rate("rate", item),
                text=str(item["rate"]),
                quick_deduction=entry.decimal("quick_deduction", item),
            )
        )
    return IitRule(
        code=entry.text("code"),
        seller_kinds=entry.choices("seller_kinds", SELLER_KINDS),
        fixed_deduction_up_to=entry.decimal("fixed_deduction_up_to"),
        fixed_deduction=entry.decimal("fixed_deduction"),
        share_deduction=entry.rate("share_deduction"),
        brackets=tuple(brackets),
        span=entry.span(),
        basis=entry.text("basis"),
    )


def parse_rule_book(data: Mapping[str, Any]) -> RuleBook:
    """The table as read from TOML, checked (:class:`RuleBookError` names what is wrong)."""
    covers_from = data.get("covers_from")
    if not isinstance(covers_from, date) or hasattr(covers_from, "hour"):
        raise RuleBookError("covers_from must be a TOML date")
    book = RuleBook(
        covers_from=covers_from,
        levy_rates=tuple(_levy_rate(e) for e in _entries(data, "levy_rate")),
        vat_thresholds=tuple(_threshold(e) for e in _entries(data, "vat_threshold")),
        special_invoice=tuple(
            SpecialInvoiceRule(e.text("code"), e.span(), e.text("basis"))
            for e in _entries(data, "special_invoice")
        ),
        surtax_rates=tuple(_surtax_rate(e) for e in _entries(data, "surtax_rate")),
        surtax_exemptions=tuple(_surtax_exemption(e) for e in _entries(data, "surtax_exemption")),
        surtax_reductions=tuple(_surtax_reduction(e) for e in _entries(data, "surtax_reduction")),
        iit_rules=tuple(_iit_rule(e) for e in _entries(data, "iit_service_fee")),
    )
    book.check()
    return book


def load_rule_book(text: str) -> RuleBook:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleBookError(f"not valid TOML: {exc}") from exc
    return parse_rule_book(data)


@cache
def rule_book() -> RuleBook:
    """The shipped ``forms/tax_rules.toml``, read and checked once."""
    return load_rule_book(
        resources.files("forms").joinpath("tax_rules.toml").read_text(encoding="utf-8")
    )


# --------------------------------------------------------------------------- requests and quotes


class QuoteRefused(ValueError):
    """The request cannot be quoted; ``fields`` maps paths (``lines.0.rate``) to Chinese
    messages, as the contract's 422 answer carries them."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = dict(fields)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.fields.items()))


@dataclass(frozen=True)
class QuoteLine:
    name: str
    amount_incl_tax: Decimal
    rate: Decimal | None = None  # None: the levy rate in force on the issue date


@dataclass(frozen=True)
class QuoteRequest:
    seller_kind: SellerKind
    invoice_kind: InvoiceKind
    location: Location
    issue_date: date
    lines: tuple[QuoteLine, ...]
    # The seller's declared sales excluding VAT (不含税销售额) for the period, this invoice
    # included. Per month / quarter it decides the VAT exemption; for every period it decides the
    # 财税〔2016〕12号 surcharge exemption (a seller filing per time declares the month's sales).
    # None: unknown, so nothing is exempted on its strength (a natural person filing per time is
    # still measured by this invoice alone).
    period_sales: Decimal | None = None
    # How the seller files; None: DEFAULT_PERIOD by seller kind (natural persons per time,
    # small-scale and 个体工商户 by quarter).
    period: Period | None = None
    # Waive the 1% cut (and the exemption) to issue a 3% 专票 (公告2023年第1号, 公告2026年第4号).
    waive_relief: bool = False


@dataclass(frozen=True)
class LineQuote:
    name: str
    amount_incl_tax: Decimal
    amount_excl_tax: Decimal
    tax: Decimal
    rate: LevyRate


@dataclass(frozen=True)
class Relief:
    code: str
    label: str
    item: str  # "vat" or a surtax item
    amount: Decimal
    basis: str


@dataclass(frozen=True)
class SurtaxQuote:
    item: SurtaxItem
    label: str
    base: Decimal
    rate: SurtaxRate
    amount: Decimal  # before reliefs
    relief: Decimal

    @property
    def payable(self) -> Decimal:
        return self.amount - self.relief


@dataclass(frozen=True)
class IitQuote:
    income: Decimal
    deduction: Decimal
    taxable: Decimal
    bracket: IitBracket
    tax: Decimal
    basis: str


@dataclass(frozen=True)
class Quote:
    request: QuoteRequest
    period: Period
    lines: tuple[LineQuote, ...]
    exempt: bool
    vat_payable: Decimal
    surtaxes: tuple[SurtaxQuote, ...]
    reliefs: tuple[Relief, ...]
    iit: IitQuote | None
    basis: tuple[str, ...]

    @property
    def total_incl_tax(self) -> Decimal:
        return sum((line.amount_incl_tax for line in self.lines), ZERO)

    @property
    def total_excl_tax(self) -> Decimal:
        return sum((line.amount_excl_tax for line in self.lines), ZERO)

    @property
    def total_tax(self) -> Decimal:
        return sum((line.tax for line in self.lines), ZERO)

    @property
    def surtax_total(self) -> Decimal:
        return sum((s.payable for s in self.surtaxes), ZERO)

    @property
    def payable(self) -> Decimal:
        """VAT collected + surtaxes after reliefs (+ IIT when collected at issue)."""
        iit = self.iit.tax if self.iit is not None else ZERO
        return self.vat_payable + self.surtax_total + iit

    def as_json(self) -> dict[str, Any]:
        """API.md's answer of POST /mp/invoice-quote, money as "0.00" text, rates as "0.01",
        plus: the inputs it was computed for, ``vat_payable`` (VAT collected), ``surtax_detail``,
        ``reliefs`` (each with its basis) and, when computed, ``iit``."""
        answer: dict[str, Any] = {
            "issue_date": self.request.issue_date.isoformat(),
            "seller_kind": self.request.seller_kind,
            "invoice_kind": self.request.invoice_kind,
            "location": self.request.location,
            "period": self.period,
            "lines": [
                {
                    "name": line.name,
                    "amount_incl_tax": money_text(line.amount_incl_tax),
                    "amount_excl_tax": money_text(line.amount_excl_tax),
                    "rate": line.rate.text,
                    "tax": money_text(line.tax),
                }
                for line in self.lines
            ],
            "total_incl_tax": money_text(self.total_incl_tax),
            "total_excl_tax": money_text(self.total_excl_tax),
            "total_tax": money_text(self.total_tax),
            "vat_payable": money_text(self.vat_payable),
            "surtaxes": {s.item: money_text(s.payable) for s in self.surtaxes},
            "surtax_detail": [
                {
                    "item": s.item,
                    "label": s.label,
                    "base": money_text(s.base),
                    "rate": s.rate.text,
                    "amount": money_text(s.amount),
                    "relief": money_text(s.relief),
                    "payable": money_text(s.payable),
                }
                for s in self.surtaxes
            ],
            "payable": money_text(self.payable),
            "exempt": self.exempt,
            "reliefs": [
                {
                    "code": r.code,
                    "label": r.label,
                    "item": r.item,
                    "amount": money_text(r.amount),
                    "basis": r.basis,
                }
                for r in self.reliefs
            ],
            "basis": list(self.basis),
        }
        if self.iit is not None:
            answer["iit"] = {
                "income": money_text(self.iit.income),
                "deduction": money_text(self.iit.deduction),
                "taxable": money_text(self.iit.taxable),
                "rate": self.iit.bracket.text,
                "quick_deduction": money_text(self.iit.bracket.quick_deduction),
                "tax": money_text(self.iit.tax),
                "basis": self.iit.basis,
            }
        return answer


# --------------------------------------------------------------------------- the quote


def quote(
    request: QuoteRequest, *, iit_at_issue: bool = False, rules: RuleBook | None = None
) -> Quote:
    """The quote of ``request`` under the rules in force on its issue date, or
    :class:`QuoteRefused` naming every field that stops it."""
    book = rules if rules is not None else rule_book()
    day = request.issue_date
    if day < book.covers_from:
        raise QuoteRefused(
            {"issue_date": f"开票日期早于税费规则表的起始日期 {book.covers_from}，无法试算"}
        )
    errors: dict[str, str] = {}
    period = request.period or DEFAULT_PERIOD[request.seller_kind]
    threshold = book.threshold(period, request.seller_kind, day)
    if threshold is None:
        errors["period"] = (
            f"{SELLER_LABELS[request.seller_kind]}在开票日不适用{PERIOD_LABELS[period]}纳税"
        )
    if request.waive_relief and request.invoice_kind != "special":
        errors["waive_relief"] = "放弃减免优惠须开具增值税专用发票"
    if request.period_sales is not None:
        problem = money_problem(request.period_sales, "本期销售额", MAX_PERIOD_SALES)
        if problem:
            errors["period_sales"] = problem
    if not request.lines:
        errors["lines"] = "请至少填写一行明细"
    rates = _line_rates(request, book, errors)
    if errors:
        raise QuoteRefused(errors)
    assert threshold is not None  # noqa: S101 - refused above otherwise

    lines = tuple(
        LineQuote(line.name, line.amount_incl_tax, *rate.split(line.amount_incl_tax), rate=rate)
        for line, rate in zip(request.lines, rates, strict=True)
    )
    basis: list[str] = [rate.basis for rate in rates]
    total_excl = sum((line.amount_excl_tax for line in lines), ZERO)
    total_tax = sum((line.tax for line in lines), ZERO)
    sales = request.period_sales
    if sales is not None and sales < total_excl:
        raise QuoteRefused(
            {"period_sales": f"本期销售额应包含本张发票的不含税销售额 {money_text(total_excl)}"}
        )

    special = book.special_invoice_rule(day)
    if special is not None and request.invoice_kind == "special":
        basis.append(special.basis)

    measured = total_excl if period == "per_time" else sales
    exempt = (
        request.invoice_kind == "general" and measured is not None and threshold.exempts(measured)
    )
    if measured is not None and request.invoice_kind == "general":
        basis.append(threshold.basis)
    reliefs: list[Relief] = []
    if exempt and total_tax > 0:
        reliefs.append(Relief(threshold.code, threshold.label, "vat", total_tax, threshold.basis))
    vat_payable = ZERO if exempt else total_tax

    surtaxes = _surtaxes(request, book, period, vat_payable, reliefs)
    basis.extend(s.rate.basis for s in surtaxes if s.amount > 0)
    basis.extend(r.basis for r in reliefs)
    iit = _iit(request, book, vat_payable) if iit_at_issue else None
    if iit is not None:
        basis.append(iit.basis)
    return Quote(
        request=request,
        period=period,
        lines=lines,
        exempt=exempt,
        vat_payable=vat_payable,
        surtaxes=surtaxes,
        reliefs=tuple(reliefs),
        iit=iit,
        basis=tuple(dict.fromkeys(basis)),
    )


def _line_rates(request: QuoteRequest, book: RuleBook, errors: dict[str, str]) -> list[LevyRate]:
    """Each line's levy rate rule; problems go into ``errors`` under the line's path."""
    day, kind = request.issue_date, request.seller_kind
    standard = book.rate_by_role(kind, day, "standard")
    relief = book.rate_by_role(kind, day, "relief")
    waive = request.waive_relief and request.invoice_kind == "special"
    default = relief if relief is not None and not waive else standard
    assert default is not None  # noqa: S101 - RuleBook.check: one standard rate every day
    chosen: list[LevyRate] = []
    for index, line in enumerate(request.lines):
        problem = money_problem(line.amount_incl_tax, "含税金额", MAX_LINE_AMOUNT)
        if problem:
            errors[f"lines.{index}.amount_incl_tax"] = problem
        if line.rate is None:
            chosen.append(default)
            continue
        rate, problem = _rate_rule(line.rate, request, book, relief, waive)
        if problem:
            errors[f"lines.{index}.rate"] = problem
        chosen.append(rate or default)
    if len(chosen) > 1:
        for index, rate in enumerate(chosen):
            if rate.alone:
                errors.setdefault(
                    f"lines.{index}.rate",
                    f"征收率 {percent(rate.rate)}（{rate.label}）的明细须单独开具发票",
                )
    return chosen


def _rate_rule(
    value: Decimal,
    request: QuoteRequest,
    book: RuleBook,
    relief: LevyRate | None,
    waive: bool,
) -> tuple[LevyRate | None, str | None]:
    day, kind = request.issue_date, request.seller_kind
    known = [r for r in book.levy_rates if r.rate == value]
    if not known:
        return None, f"征收率只能是 {'、'.join(book.rate_texts())} 之一"
    current = [r for r in known if day in r.span]
    if not current:
        return None, f"开票日 {day} 不适用 {percent(value)} 征收率"
    mine = [r for r in current if kind in r.seller_kinds]
    if not mine:
        return None, f"{SELLER_LABELS[kind]}不适用 {percent(value)} 征收率（{current[0].label}）"
    rate = mine[0]
    if request.invoice_kind not in rate.invoice_kinds:
        invoice = INVOICE_LABELS[request.invoice_kind]
        return None, f"{percent(value)} 征收率（{rate.label}）不能开具{invoice}"
    if rate.role == "relief" and waive:
        return None, f"已选择放弃减税，不能按 {percent(value)} 开具"
    if rate.role == "standard" and relief is not None and request.invoice_kind == "general":
        return None, (
            f"开票日适用{relief.label}，增值税普通发票应按 {percent(relief.rate)} 开具；"
            "放弃减税须开具增值税专用发票"
        )
    return rate, None


def _surtaxes(
    request: QuoteRequest,
    book: RuleBook,
    period: Period,
    vat: Decimal,
    reliefs: list[Relief],
) -> tuple[SurtaxQuote, ...]:
    """Each surtax on ``vat``, after the reliefs in force (appended to ``reliefs``)."""
    day = request.issue_date
    sales = request.period_sales
    exemptions = [
        e
        for e in book.surtax_exemptions
        if day in e.span and sales is not None and period in e.limits and sales <= e.limits[period]
    ]
    reductions = [
        r for r in book.surtax_reductions if day in r.span and request.seller_kind in r.seller_kinds
    ]
    out: list[SurtaxQuote] = []
    for item in SURTAX_ITEMS:
        rate = book.surtax_rate(item, request.location, day)
        amount = round_cent(vat * rate.rate)
        left = amount
        for exemption in (e for e in exemptions if item in e.items):
            if left > 0:
                reliefs.append(Relief(exemption.code, exemption.label, item, left, exemption.basis))
                left = ZERO
        for reduction in (r for r in reductions if item in r.items):
            cut = round_cent(left * reduction.share)
            if cut > 0:
                reliefs.append(Relief(reduction.code, reduction.label, item, cut, reduction.basis))
                left -= cut
        out.append(SurtaxQuote(item, rate.label, vat, rate, amount, amount - left))
    return tuple(out)


def _iit(request: QuoteRequest, book: RuleBook, vat: Decimal) -> IitQuote | None:
    rule = book.iit_rule(request.seller_kind, request.issue_date)
    if rule is None:
        return None
    income = sum((line.amount_incl_tax for line in request.lines), ZERO) - vat
    if income <= rule.fixed_deduction_up_to:
        deduction = min(rule.fixed_deduction, income)
    else:
        deduction = round_cent(income * rule.share_deduction)
    taxable = income - deduction
    bracket = next(b for b in rule.brackets if b.up_to is None or taxable <= b.up_to)
    tax = max(ZERO, round_cent(taxable * bracket.rate - bracket.quick_deduction))
    return IitQuote(income, deduction, taxable, bracket, tax, rule.basis)


# --------------------------------------------------------------------------- form data


def quote_for_proxy_invoice(
    data: Mapping[str, Any], *, seller_kind: SellerKind, issue_date: date, iit_at_issue: bool
) -> dict[str, Any]:
    """The quote stored with a ``proxy_invoice`` submission (API.md "Form data": amounts as text,
    ``rate`` optional; ``period``, ``period_sales`` and ``waive_relief`` read when present), as
    :meth:`Quote.as_json`; :class:`QuoteRefused` with paths into ``data``."""
    errors: dict[str, str] = {}
    kind = _pick(seller_kind, SELLER_KINDS)
    if kind is None:
        errors["seller_kind"] = "不是允许的取值"
    invoice_kind = _pick(data.get("invoice_kind", "general"), INVOICE_KINDS)
    if invoice_kind is None:
        errors["invoice_kind"] = "不是允许的取值"
    location = _pick(data.get("location"), LOCATIONS)
    if location is None:
        errors["location"] = "不是允许的取值"
    period: Period | None = None
    if data.get("period") is not None:
        period = _pick(data.get("period"), PERIODS)
        if period is None:
            errors["period"] = "不是允许的取值"
    period_sales: Decimal | None = None
    if data.get("period_sales") is not None:
        try:
            period_sales = parse_money(data["period_sales"], "本期销售额", MAX_PERIOD_SALES)
        except ValueError as exc:
            errors["period_sales"] = str(exc)
    waive = data.get("waive_relief", False)
    if not isinstance(waive, bool):
        errors["waive_relief"] = "应为 true 或 false"
    lines = _form_lines(data.get("lines"), errors)
    if errors:
        raise QuoteRefused(errors)
    assert kind is not None  # noqa: S101 - refused above otherwise
    assert invoice_kind is not None  # noqa: S101
    assert location is not None  # noqa: S101
    request = QuoteRequest(
        seller_kind=kind,
        invoice_kind=invoice_kind,
        location=location,
        issue_date=issue_date,
        lines=lines,
        period_sales=period_sales,
        period=period,
        waive_relief=bool(waive),
    )
    return quote(request, iit_at_issue=iit_at_issue).as_json()


def _pick(value: object, allowed: tuple[_C, ...]) -> _C | None:
    for option in allowed:
        if value == option:
            return option
    return None


def _form_lines(raw: object, errors: dict[str, str]) -> tuple[QuoteLine, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        errors["lines"] = "请至少填写一行明细"
        return ()
    lines: list[QuoteLine] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            errors[f"lines.{index}"] = "应为对象"
            continue
        amount = ZERO
        try:
            amount = parse_money(item.get("amount_incl_tax"))
        except ValueError as exc:
            errors[f"lines.{index}.amount_incl_tax"] = str(exc)
        rate: Decimal | None = None
        if item.get("rate") is not None:
            try:
                rate = parse_rate(item["rate"])
            except ValueError as exc:
                errors[f"lines.{index}.rate"] = str(exc)
        lines.append(QuoteLine(str(item.get("name") or ""), amount, rate))
    return tuple(lines)
