"""Submissions of the mini-program: file, list, detail, resubmit, withdraw, internal approval,
receipt; and a taxpayer's filing setting (internal approval required).

Filing without the form's permission on the taxpayer is 403; a submission that is not yours to
see is 404, whether or not it exists.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json, raw

from auth import audit
from auth.authorizations import NotPermitted, TaxpayerUnknown, require_permission
from auth.masking import mask_name
from auth.models import Person, Taxpayer
from forms import lifecycle, progress
from forms.catalogue import catalogue
from forms.models import Submission, SubmissionEvent
from forms.receipt import ReceiptView, TimelineEntry, render_receipt
from forms.submissions import (
    APPROVER_PERMISSION,
    FilingRefused,
    body_hash,
    check_form,
    file_submission,
    filer_for,
    find_same_key,
    may_decide_internally,
    readable_by,
    seal_data,
)
from miniapp_api import filing
from miniapp_api.callers import MpCaller, keyring, mp_caller, utcnow
from miniapp_api.errors import ApiError, BadRequest, NotFound, ValidationFailed
from miniapp_api.jobs import enqueue
from miniapp_api.openapi_docs import BINARY, doc, header
from miniapp_api.validation import MAX_ID, MAX_INT, parse_body, parse_query
from wecom import approvals as wecom_approvals

log = logging.getLogger("suban.filing")
bp = Blueprint("mp_submissions", url_prefix="/mp")

TAXPAYER_ID_PATTERN = r"^[0-9A-Z]{15,20}$"
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:\-]{8,128}")


class SubmissionBody(BaseModel):
    form_code: str = Field(min_length=1, max_length=48)
    taxpayer_id: str | None = Field(default=None, pattern=TAXPAYER_ID_PATTERN)
    data: dict[str, Any]
    draft_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class ResubmitBody(BaseModel):
    data: dict[str, Any]
    version: int = Field(ge=1, le=MAX_INT)


class VersionBody(BaseModel):
    version: int = Field(ge=1, le=MAX_INT)
    comment: str | None = Field(default=None, max_length=500)
    reason: str | None = Field(default=None, max_length=500)


class ListQuery(BaseModel):
    taxpayer_id: str | None = Field(default=None, pattern=TAXPAYER_ID_PATTERN)
    status: str | None = Field(default=None, max_length=24)
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)


class FilingSettingsBody(BaseModel):
    internal_approval_required: bool


async def after_change(
    request: Request, submission: Submission, timeline: Sequence[SubmissionEvent] | None = None
) -> None:
    """After a change committed: refresh the public progress answer (from ``timeline`` when the
    caller holds the whole of it), file the WeCom approval of a filing that waits for one, and
    ask the worker to deliver what the change wrote into the outbox (the periodic run delivers it
    anyway if this nudge is lost)."""
    await progress.refresh(request.app.ctx.redis, submission, timeline)
    if submission.status == "pending_internal":
        await ask_wecom_approval(request, submission)
    try:
        await enqueue(request.app, "deliver_outbox")
    except Exception:  # a lost nudge delays a message by a minute at most, never loses it
        log.warning("could not ask for outbox delivery now", exc_info=True)


async def ask_wecom_approval(request: Request, submission: Submission) -> None:
    """File the enterprise's internal approval in WeCom OA. A failure loses nothing: the
    filing stays in ``pending_internal`` and an approver can decide in the mini-program."""
    settings = request.app.ctx.settings
    ask = wecom_approvals.ApprovalRequest(
        template_id=settings.wecom_approval_template,
        form_title=filing.form_title(submission.form_code),
        link=f"{settings.public_link_base}/h5/#/submissions/{submission.id}",
    )
    try:
        await wecom_approvals.request_approval(submission, request.app.ctx.wechat.wecom, ask)
    except Exception:
        log.warning("WeCom approval not filed for submission %s", submission.id, exc_info=True)


def _idempotency_key(request: Request) -> str:
    key = (request.headers.get("idempotency-key") or "").strip()
    if not key:
        raise BadRequest("缺少 Idempotency-Key 请求头")
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequest("Idempotency-Key 应为 8–128 位字母、数字或 _ . : -")
    return key


def _created(submission: Submission) -> dict[str, Any]:
    return {
        "id": submission.id,
        "tracking_no": submission.tracking_no,
        "status": submission.status,
        "version": submission.version,
    }


@bp.post("/submissions", name="submission_create")
@doc(
    "File a form (Idempotency-Key header required)",
    "forms",
    auth="person",
    body=SubmissionBody,
    parameters=[header("Idempotency-Key", {"type": "string", "pattern": IDEMPOTENCY_KEY.pattern})],
    ok=(200, 201),
    errors=(409,),
)
async def create(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    person = caller.verified_person
    key = _idempotency_key(request)
    body = parse_body(request, SubmissionBody)
    digest = body_hash(body.form_code, body.taxpayer_id, body.data)
    try:
        existing = await find_same_key(person, key, digest)
    except FilingRefused as exc:
        raise filing.refused(exc) from exc
    if existing is not None:
        return json({**_created(existing), "replayed": True}, status=200)
    spec = catalogue().get(body.form_code)
    if spec is None:
        raise ValidationFailed({"form_code": "没有该文书类型"})
    now = utcnow()
    settings = request.app.ctx.settings
    try:
        filer = await filer_for(person, spec, body.taxpayer_id, now)
        checked = check_form(
            spec, filer, body.data, today=now.date(), iit_at_issue=settings.iit_at_issue
        )
        filed = await file_submission(
            spec=spec,
            filer=filer,
            checked=checked,
            idempotency_key=key,
            digest=digest,
            draft_id=body.draft_id,
            actor=caller.actor,
            keyring=keyring(request),
            notice=filing.notice_for(request),
            now=now,
        )
    except FilingRefused as exc:
        raise filing.refused(exc) from exc
    if filed.created:
        await after_change(request, filed.submission, filed.timeline)
    return json(
        {**_created(filed.submission), "replayed": not filed.created},
        status=201 if filed.created else 200,
    )


@bp.get("/submissions", name="submission_list")
@doc("My submissions, or a taxpayer's (taxpayer.view)", "forms", auth="person", query=ListQuery)
async def list_submissions(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    person = caller.verified_person
    query = parse_query(request, ListQuery)
    rows = Submission.all()
    if query.taxpayer_id is not None:
        taxpayer = await _viewable_taxpayer(person, query.taxpayer_id)
        rows = rows.filter(taxpayer_id=taxpayer.id)
    else:
        rows = rows.filter(applicant_id=person.id)
    if query.status:
        rows = rows.filter(status=query.status)
    total = await rows.count()
    page = (
        await rows.order_by("-id")
        .offset((query.page - 1) * query.page_size)
        .limit(query.page_size)
        .prefetch_related("taxpayer")
    )
    return json(
        {
            "items": [filing.summary(s, s.taxpayer) for s in page],
            "page": query.page,
            "page_size": query.page_size,
            "total": total,
        }
    )


async def _viewable_taxpayer(person: Person, taxpayer_id: str) -> Taxpayer:
    try:
        return await require_permission(person, taxpayer_id, "taxpayer.view", utcnow())
    except (TaxpayerUnknown, NotPermitted) as exc:
        raise NotFound("找不到该纳税人") from exc


async def readable(caller: MpCaller, submission_id: int) -> Submission:
    """The submission if the caller may see it; 404 otherwise (no telling whether it exists)."""
    person = caller.verified_person
    submission = await Submission.get_or_none(id=submission_id)
    if submission is None or not await readable_by(person, submission, utcnow()):
        raise NotFound("找不到该文书")
    return submission


async def own(caller: MpCaller, submission_id: int) -> Submission:
    """The submission if the caller filed it: 404 when it cannot be seen, 403 when it can but
    only the applicant may do this."""
    submission = await readable(caller, submission_id)
    if submission.applicant_id != caller.verified_person.id:  # type: ignore[attr-defined]
        raise ApiError(403, "FORBIDDEN", "只有申请人可以进行此操作")
    return submission


@bp.get("/submissions/<submission_id:int>", name="submission_detail")
@doc("A submission with its data, quote and timeline", "forms", auth="person")
async def get_one(request: Request, submission_id: int) -> HTTPResponse:
    caller = await mp_caller(request)
    submission = await readable(caller, submission_id)
    return json(await filing.detail(submission, keyring(request)))


@bp.put("/submissions/<submission_id:int>", name="submission_resubmit")
@doc(
    "Correct and resubmit after it was returned",
    "forms",
    auth="person",
    body=ResubmitBody,
    errors=(409,),
)
async def resubmit(request: Request, submission_id: int) -> HTTPResponse:
    caller = await mp_caller(request)
    submission = await own(caller, submission_id)
    body = parse_body(request, ResubmitBody)
    spec = filing.form_or_404(submission.form_code)
    taxpayer = await Taxpayer.get_or_none(id=submission.taxpayer_id)  # type: ignore[attr-defined]
    now = utcnow()
    ring = keyring(request)
    try:
        filer = await filer_for(
            caller.verified_person, spec, taxpayer.taxpayer_id if taxpayer else None, now
        )
        checked = check_form(
            spec,
            filer,
            body.data,
            today=now.date(),
            iit_at_issue=request.app.ctx.settings.iit_at_issue,
        )
    except FilingRefused as exc:
        raise filing.refused(exc) from exc
    change = lifecycle.Change(
        {"quote": checked.quote, "total_incl_tax": checked.total, "result": {}},
        fields_for=lambda s: {"data_sealed": seal_data(ring, "submission", s.id, checked.data)},
    )
    try:
        updated = await lifecycle.transition(
            submission.id,
            "resubmit",
            expected_version=body.version,
            actor=caller.actor,
            notice=filing.notice_for(request),
            target="pending_internal" if filer.needs_internal_approval else "submitted",
            change=change,
            now=now,
        )
    except lifecycle.LifecycleError as exc:
        raise filing.lifecycle_error(exc) from exc
    await after_change(request, updated)
    return json(await filing.detail(updated, ring))


@bp.post("/submissions/<submission_id:int>/withdraw", name="submission_withdraw")
@doc(
    "Withdraw a submission before it is approved",
    "forms",
    auth="person",
    body=VersionBody,
    errors=(409,),
)
async def withdraw(request: Request, submission_id: int) -> HTTPResponse:
    caller = await mp_caller(request)
    submission = await own(caller, submission_id)
    body = parse_body(request, VersionBody)
    try:
        updated = await lifecycle.transition(
            submission.id,
            "withdraw",
            expected_version=body.version,
            actor=caller.actor,
            notice=filing.notice_for(request),
            note=body.comment or body.reason,
        )
    except lifecycle.LifecycleError as exc:
        raise filing.lifecycle_error(exc) from exc
    await after_change(request, updated)
    return json(await filing.detail(updated, keyring(request)))


async def _internal(request: Request, submission_id: int, action: str) -> HTTPResponse:
    caller = await mp_caller(request)
    submission = await readable(caller, submission_id)
    if not await may_decide_internally(caller.verified_person, submission, utcnow()):
        raise ApiError(403, "FORBIDDEN", "只有本单位的审批人可以审批")
    body = parse_body(request, VersionBody)
    note = body.comment
    change = None
    if action == "internal_reject":
        note = (body.reason or body.comment or "").strip()
        if not note:
            raise ValidationFailed({"reason": "请填写退回理由"})
        change = lifecycle.Change({"result": {"reason": note}})
    try:
        updated = await lifecycle.transition(
            submission.id,
            action,
            expected_version=body.version,
            actor=caller.actor,
            notice=filing.notice_for(request),
            note=note,
            change=change,
        )
    except lifecycle.LifecycleError as exc:
        raise filing.lifecycle_error(exc) from exc
    await after_change(request, updated)
    return json(await filing.detail(updated, keyring(request)))


@bp.post("/submissions/<submission_id:int>/internal-approve", name="submission_internal_approve")
@doc(
    "The enterprise's approver sends a clerk's filing on",
    "forms",
    auth="person",
    body=VersionBody,
    errors=(409,),
)
async def internal_approve(request: Request, submission_id: int) -> HTTPResponse:
    return await _internal(request, submission_id, "internal_approve")


@bp.post("/submissions/<submission_id:int>/internal-reject", name="submission_internal_reject")
@doc(
    "The enterprise's approver returns a clerk's filing",
    "forms",
    auth="person",
    body=VersionBody,
    errors=(409,),
)
async def internal_reject(request: Request, submission_id: int) -> HTTPResponse:
    return await _internal(request, submission_id, "internal_reject")


@bp.get("/submissions/<submission_id:int>/receipt.pdf", name="submission_receipt")
@doc(
    "The submission's receipt (回执) as PDF",
    "forms",
    auth="person",
    answer=BINARY,
    media="application/pdf",
)
async def receipt(request: Request, submission_id: int) -> HTTPResponse:
    caller = await mp_caller(request)
    submission = await readable(caller, submission_id)
    settings = request.app.ctx.settings
    view = await receipt_view(request, submission)
    pdf = await asyncio.to_thread(render_receipt, view, font_path=settings.receipt_font)
    return raw(
        pdf,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="receipt-{submission.tracking_no}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


async def receipt_view(request: Request, submission: Submission) -> ReceiptView:
    ring = keyring(request)
    await submission.fetch_related("applicant", "taxpayer")
    applicant: Person = submission.applicant
    name = ring.open(
        applicant.name_sealed or "", table="person", column="name", row_id=applicant.id
    )
    taxpayer: Taxpayer | None = submission.taxpayer
    timeline = await filing.timeline_of(submission)
    base = request.app.ctx.settings.public_link_base
    result = submission.result or {}
    result_lines: tuple[tuple[str, str], ...] = ()
    if result.get("number"):
        label = "发票号码" if result.get("kind") == "invoice_number" else "文书编号"
        result_lines = ((label, str(result["number"])),)
    return ReceiptView(
        tracking_no=submission.tracking_no,
        form_title=filing.form_title(submission.form_code),
        taxpayer_name=taxpayer.name if taxpayer else None,
        taxpayer_id=taxpayer.taxpayer_id if taxpayer else None,
        applicant_name_masked=mask_name(name),
        status_label=lifecycle.STATUS_LABELS.get(submission.status, submission.status),
        submitted_at=submission.submitted_at,
        timeline=tuple(
            TimelineEntry(
                at=datetime.fromisoformat(e["at"]),
                status_label=e["status_label"],
                actor_label=lifecycle.ACTOR_LABELS.get(e["actor_kind"], e["actor_kind"]),
                note=e["note"],
            )
            for e in timeline
        ),
        progress_url=f"{base}/h5/#/progress?tracking_no={submission.tracking_no}",
        issued_at=utcnow(),
        result_lines=result_lines,
    )


@bp.put(r"/taxpayers/<taxpayer_id:[0-9A-Z]{15,20}>/filing-settings", name="filing_settings")
@doc(
    "Turn internal approval of clerks' filings on or off",
    "forms",
    auth="person",
    body=FilingSettingsBody,
)
async def filing_settings(request: Request, taxpayer_id: str) -> HTTPResponse:
    caller = await mp_caller(request)
    person = caller.verified_person
    try:
        taxpayer = await require_permission(person, taxpayer_id, APPROVER_PERMISSION, utcnow())
    except TaxpayerUnknown as exc:
        raise NotFound("找不到该纳税人") from exc
    except NotPermitted as exc:
        raise ApiError(403, "FORBIDDEN", "只有法定代表人或财务负责人可以更改此设置") from exc
    body = parse_body(request, FilingSettingsBody)
    taxpayer.internal_approval_required = body.internal_approval_required
    await taxpayer.save(update_fields=["internal_approval_required", "updated_at"])
    await audit.record(
        "taxpayer.filing_settings",
        caller.actor,
        target=f"taxpayer:{taxpayer.taxpayer_id}",
        details={"internal_approval_required": body.internal_approval_required},
    )
    return json(
        {
            "taxpayer_id": taxpayer.taxpayer_id,
            "internal_approval_required": taxpayer.internal_approval_required,
        }
    )
