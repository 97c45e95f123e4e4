"""Cross-field rules of the form catalogue, by name.

A catalogue file lists the rules its form obeys (``rules = ["contract_dates"]``); each is one
function here, registered under that name with a description the form's public schema shows.
Checks of a single field (types, lengths, ranges, options) are data in the catalogue files, not
rules.

A rule sees the *cleaned* data: only the fields that passed their own checks, normalised (IDs
upper-cased, money as "5050.00", dates as "YYYY-MM-DD"). A field that failed is absent, so a rule
skips what it cannot judge (a failed list item is ``None``, so later items keep their index),
and any message it gives on a path that already has an error (or under one) is dropped by the
caller: the field's own message says more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from stdnum.cn import ric, uscc

if TYPE_CHECKING:
    from forms.validation import FilingContext

RuleCheck = Callable[[Mapping[str, Any], "FilingContext"], dict[str, str]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: RuleCheck


RULES: dict[str, Rule] = {}


def rule(name: str, description: str) -> Callable[[RuleCheck], RuleCheck]:
    """Register ``check`` under ``name``; it answers ``{field path: 中文说明}``, empty if fine."""

    def register(check: RuleCheck) -> RuleCheck:
        if name in RULES:
            raise ValueError(f"rule {name!r} registered twice")
        RULES[name] = Rule(name, description, check)
        return check

    return register


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def is_natural_person_id(taxpayer_id: str) -> bool:
    """An 18-character identifier that is a resident ID number and not also a valid USCC.

    The two alphabets overlap on digits, so a rare string passes both checksums; it is taken as
    an organisation's code, since the registry assigns USCCs and a person typing their own ID
    number gets the ID-number reading almost always.
    """
    return len(taxpayer_id) == 18 and ric.is_valid(taxpayer_id) and not uscc.is_valid(taxpayer_id)


@rule(
    "no_special_invoice_to_natural_person",
    "不得向自然人开具增值税专用发票：开具专用发票须填写购买方纳税人识别号，且不能是身份证号码",
)
def no_special_invoice_to_natural_person(
    data: Mapping[str, Any], context: FilingContext
) -> dict[str, str]:
    # DOMAIN.md, 代开增值税发票: "No 专票 to a natural-person buyer". A buyer without a taxpayer
    # id is taken to be a natural person, so a 专票 needs one.
    if data.get("invoice_kind") != "special" or "buyer" not in data:
        return {}
    taxpayer_id = _object(data, "buyer").get("taxpayer_id")
    if taxpayer_id is None:
        return {"buyer.taxpayer_id": "开具增值税专用发票须填写购买方纳税人识别号"}
    if is_natural_person_id(taxpayer_id):
        return {"invoice_kind": "购买方为自然人，不能开具增值税专用发票"}
    return {}


def report_validity(start: date, end: date, today: date) -> tuple[date, date]:
    """The days a 跨区域涉税事项报告 covers: the contract period, but never before the day it is
    filed (a report cannot be back-dated)."""
    return max(start, today), end


@rule(
    "contract_dates",
    "合同有效期止须晚于有效期起，也须晚于今天；报告有效期自今天或合同有效期起（取较晚者）至合同有效期止",
)
def contract_dates(data: Mapping[str, Any], context: FilingContext) -> dict[str, str]:
    # 税总发〔2017〕103号: the report's validity follows the contract period. A contract that has
    # already started is common (the report is filed before going to work on it), so its start
    # may lie in the past and the report then runs from the filing day. Either way the report
    # must end after it starts, so the contract must end after today as well.
    contract = _object(data, "contract")
    start, end = contract.get("start"), contract.get("end")
    if end is None:
        return {}
    end_day = date.fromisoformat(end)
    if start is not None and end_day <= date.fromisoformat(start):
        return {"contract.end": "合同有效期止须晚于有效期起"}
    if end_day <= context.today:
        return {"contract.end": "合同有效期止须晚于今天"}
    return {}
