"""What staff decide: claim, approve, reject, return with reasons per field, complete.

Completing gives the office's number for the outcome: the 20-digit 数电 invoice number of a proxy
invoice (entered by the reviewer from the invoicing system, DOMAIN.md: 2 year + 2 province +
1 channel + 15 sequence) or the report number 税跨报〔YYYY〕N号 of a cross-region report, numbered
here in order within the year.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from auth import clock
from auth.audit import Actor
from forms import lifecycle
from forms.models import Submission
from forms.rules import report_validity

INVOICE_NUMBER = re.compile(r"\d{20}")
REPORT_PREFIX = "税跨报〔{year}〕"


class ReviewInvalid(Exception):
    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("invalid review input")
        self.fields = dict(fields)


def _reason(reason: str | None, field: str = "reason") -> str:
    text = (reason or "").strip()
    if not text:
        raise ReviewInvalid({field: "请填写理由"})
    if len(text) > 500:
        raise ReviewInvalid({field: "理由过长（上限 500 字）"})
    return text


def _field_reasons(fields: Mapping[str, str] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    problems: dict[str, str] = {}
    for path, why in (fields or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+){0,4}", path):
            problems[f"fields.{path}"[:80]] = "字段路径格式不正确"
        elif not str(why).strip() or len(str(why)) > 200:
            problems[f"fields.{path}"] = "请填写该字段的补正说明（200 字以内）"
        else:
            found[path] = str(why).strip()
    if problems:
        raise ReviewInvalid(problems)
    return found


async def decide(
    submission_id: int,
    action: str,
    *,
    version: int,
    staff: Actor,
    notice: lifecycle.Notice,
    comment: str | None = None,
    reason: str | None = None,
    fields: Mapping[str, str] | None = None,
    result: str | None = None,
    form_data: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Submission:
    """One staff action, checked and recorded; raises lifecycle errors or :class:`ReviewInvalid`."""
    if action in ("claim", "approve"):
        return await lifecycle.transition(
            submission_id,
            action,
            expected_version=version,
            actor=staff,
            notice=notice,
            note=comment,
            now=now,
        )
    if action == "reject":
        why = _reason(reason)
        return await lifecycle.transition(
            submission_id,
            "reject",
            expected_version=version,
            actor=staff,
            notice=notice,
            note=why,
            change=lifecycle.Change({"result": {"reason": why}}),
            now=now,
        )
    if action == "return":
        per_field = _field_reasons(fields)
        why = _reason(reason or ("；".join(f"{k}：{v}" for k, v in per_field.items()) or None))
        return await lifecycle.transition(
            submission_id,
            "return",
            expected_version=version,
            actor=staff,
            notice=notice,
            note=why,
            change=lifecycle.Change({"result": {"reason": why, "fields": per_field}}),
            now=now,
        )
    if action == "complete":
        return await _complete(
            submission_id, version, staff, notice, comment, result, form_data or {}, now
        )
    raise ValueError(f"unknown review action {action!r}")


async def _complete(
    submission_id: int,
    version: int,
    staff: Actor,
    notice: lifecycle.Notice,
    comment: str | None,
    result: str | None,
    form_data: Mapping[str, Any],
    now: datetime | None,
) -> Submission:
    submission = await Submission.get_or_none(id=submission_id)
    if submission is None:
        raise lifecycle.SubmissionMissing(lifecycle.SubmissionMissing.message)
    at = clock.local(now) if now else clock.now()
    for _ in range(5):
        number, extra = await _result_number(submission, result, at)
        extra |= _validity(submission, form_data, at)
        try:
            return await lifecycle.transition(
                submission_id,
                "complete",
                expected_version=version,
                actor=staff,
                notice=notice,
                note=comment or number,
                change=lifecycle.Change(
                    {"result": {"number": number, **extra}, "result_no": number}
                ),
                now=at,
            )
        except IntegrityError:
            if result is not None:
                raise ReviewInvalid({"result": "该编号已被使用"}) from None
            # Another report took the same number a moment ago: take the next one.
            continue
    raise RuntimeError("no free report number after five tries")


def _validity(submission: Submission, form_data: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The office part of a cross-region report: the days it covers (税总发〔2017〕103号)."""
    contract = form_data.get("contract")
    if submission.form_code != "cross_region_report" or not isinstance(contract, Mapping):
        return {}
    filed_on = clock.local(submission.submitted_at or at).date()
    start, end = date.fromisoformat(contract["start"]), date.fromisoformat(contract["end"])
    valid_from, valid_until = report_validity(start, end, filed_on)
    return {"valid_from": valid_from.isoformat(), "valid_until": valid_until.isoformat()}


async def _result_number(
    submission: Submission, given: str | None, at: datetime
) -> tuple[str, dict[str, Any]]:
    if submission.form_code == "proxy_invoice":
        number = (given or "").strip()
        if not INVOICE_NUMBER.fullmatch(number):
            raise ReviewInvalid({"result": "请填写 20 位数电发票号码"})
        if number[:2] != f"{at.year % 100:02d}":
            raise ReviewInvalid({"result": "发票号码前两位应为开具年份"})
        return number, {"kind": "invoice_number"}
    if submission.form_code == "cross_region_report":
        if given is not None:
            raise ReviewInvalid({"result": "跨区域涉税事项报告编号由系统按年度顺序编制"})
        prefix = REPORT_PREFIX.format(year=at.year)
        taken = await Submission.filter(result_no__startswith=prefix).count()
        return f"{prefix}{taken + 1}号", {"kind": "report_number"}
    # A form added later without its own numbering: the reviewer's reference, if any.
    return (given or submission.tracking_no).strip()[:32], {"kind": "reference"}
