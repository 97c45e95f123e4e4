"""Staff review of submissions (API.md "Staff"): the queue, a submission, and the decisions.

Every decision names the version it was made on: two reviewers acting on one version get one
success and one 409. After the claim only the claiming reviewer decides.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from auth import audit
from auth.audit import Actor
from auth.models import StaffUser, Taxpayer
from forms import lifecycle, review
from forms.models import Submission
from forms.submissions import open_data
from miniapp_api import filing
from miniapp_api.callers import keyring
from miniapp_api.errors import NotFound, ValidationFailed
from miniapp_api.openapi_docs import ATTACHMENT_TYPES, BINARY, doc
from miniapp_api.request_context import request_id_of
from miniapp_api.routes.attachments import serve_attachment
from miniapp_api.routes.submissions import TAXPAYER_ID_PATTERN, after_change
from miniapp_api.sessions_setup import require_staff
from miniapp_api.validation import MAX_INT, parse_body, parse_query

bp = Blueprint("staff_review", url_prefix="/staff")
PERMISSION = "submissions.review"

StatusFilter = Literal[
    "all",
    "pending_internal",
    "submitted",
    "in_review",
    "approved",
    "rejected",
    "returned",
    "completed",
    "withdrawn",
]


class QueueQuery(BaseModel):
    status: StatusFilter = "submitted"
    form_code: str | None = Field(default=None, max_length=48)
    taxpayer_id: str | None = Field(default=None, pattern=TAXPAYER_ID_PATTERN)
    claimed: Literal["mine", "unclaimed"] | None = None
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)


class DecisionBody(BaseModel):
    version: int = Field(ge=1, le=MAX_INT)
    comment: str | None = Field(default=None, max_length=500)
    reason: str | None = Field(default=None, max_length=500)
    fields: dict[str, str] | None = Field(default=None, max_length=50)
    result: str | None = Field(default=None, max_length=32)


async def _staff(request: Request) -> tuple[Actor, StaffUser]:
    _session, user = await require_staff(request, PERMISSION)
    return Actor("staff", user.id, request_id_of(request)), user


def _with_claim(view: dict[str, Any], submission: Submission, me: StaffUser) -> dict[str, Any]:
    claimed = submission.claimed_by_id  # type: ignore[attr-defined]
    view["claimed_by_me"] = claimed is not None and claimed == me.id
    view["claimed"] = claimed is not None
    return view


@bp.get("/submissions", name="staff_queue")
@doc("The review queue, filtered and paged", "staff", auth="staff", query=QueueQuery)
async def queue(request: Request) -> HTTPResponse:
    _actor, me = await _staff(request)
    query = parse_query(request, QueueQuery)
    rows = Submission.all()
    if query.status != "all":
        rows = rows.filter(status=query.status)
    if query.form_code:
        rows = rows.filter(form_code=query.form_code)
    if query.taxpayer_id:
        rows = rows.filter(taxpayer__taxpayer_id=query.taxpayer_id)
    if query.claimed == "mine":
        rows = rows.filter(claimed_by_id=me.id)
    elif query.claimed == "unclaimed":
        rows = rows.filter(claimed_by_id__isnull=True)
    total = await rows.count()
    # Oldest first: a queue is worked from its front.
    page = (
        await rows.order_by("submitted_at", "id")
        .offset((query.page - 1) * query.page_size)
        .limit(query.page_size)
        .prefetch_related("taxpayer")
    )
    return json(
        {
            "items": [_with_claim(filing.summary(s, s.taxpayer), s, me) for s in page],
            "page": query.page,
            "page_size": query.page_size,
            "total": total,
        }
    )


async def _submission(submission_id: int) -> Submission:
    submission = await Submission.get_or_none(id=submission_id)
    if submission is None:
        raise NotFound("找不到该文书")
    return submission


@bp.get("/submissions/<submission_id:int>", name="staff_submission")
@doc("A submission with its data, attachments and timeline", "staff", auth="staff")
async def get_one(request: Request, submission_id: int) -> HTTPResponse:
    actor, me = await _staff(request)
    submission = await _submission(submission_id)
    view = await filing.detail(submission, keyring(request))
    # Staff see the form's personal data in full to decide on it: each look is on record.
    await audit.record("submission.view", actor, target=f"submission:{submission.id}")
    return json(_with_claim(view, submission, me))


async def _decide(request: Request, submission_id: int, action: str) -> HTTPResponse:
    actor, me = await _staff(request)
    body = parse_body(request, DecisionBody)
    form_data = None
    if action == "complete":
        current = await _submission(submission_id)
        form_data = open_data(keyring(request), "submission", current.id, current.data_sealed)
    try:
        submission = await review.decide(
            submission_id,
            action,
            version=body.version,
            staff=actor,
            notice=filing.notice_for(request),
            comment=body.comment,
            reason=body.reason,
            fields=body.fields,
            result=body.result,
            form_data=form_data,
        )
    except review.ReviewInvalid as exc:
        raise ValidationFailed(exc.fields) from exc
    except lifecycle.LifecycleError as exc:
        raise filing.lifecycle_error(exc) from exc
    await audit.record(
        f"submission.{action}",
        actor,
        target=f"submission:{submission.id}",
        details={"status": submission.status, "version": submission.version},
    )
    await after_change(request, submission)
    taxpayer = await Taxpayer.get_or_none(id=submission.taxpayer_id)  # type: ignore[attr-defined]
    view = filing.summary(submission, taxpayer)
    view["result"] = submission.result or None
    view["timeline"] = await filing.timeline_of(submission)
    return json(_with_claim(view, submission, me))


@bp.post("/submissions/<submission_id:int>/claim", name="staff_claim")
@doc(
    "Claim a submission for review (one reviewer at a time)",
    "staff",
    auth="staff",
    body=DecisionBody,
    errors=(409,),
)
async def claim(request: Request, submission_id: int) -> HTTPResponse:
    return await _decide(request, submission_id, "claim")


@bp.post("/submissions/<submission_id:int>/approve", name="staff_approve")
@doc("Approve a claimed submission", "staff", auth="staff", body=DecisionBody, errors=(409,))
async def approve(request: Request, submission_id: int) -> HTTPResponse:
    return await _decide(request, submission_id, "approve")


@bp.post("/submissions/<submission_id:int>/reject", name="staff_reject")
@doc(
    "Reject a claimed submission (reason required)",
    "staff",
    auth="staff",
    body=DecisionBody,
    errors=(409,),
)
async def reject(request: Request, submission_id: int) -> HTTPResponse:
    return await _decide(request, submission_id, "reject")


@bp.post("/submissions/<submission_id:int>/return", name="staff_return")
@doc(
    "Return for correction, with reasons per field",
    "staff",
    auth="staff",
    body=DecisionBody,
    errors=(409,),
)
async def return_(request: Request, submission_id: int) -> HTTPResponse:
    return await _decide(request, submission_id, "return")


@bp.post("/submissions/<submission_id:int>/complete", name="staff_complete")
@doc(
    "Complete an approved submission with its result",
    "staff",
    auth="staff",
    body=DecisionBody,
    errors=(409,),
)
async def complete(request: Request, submission_id: int) -> HTTPResponse:
    return await _decide(request, submission_id, "complete")


@bp.get(
    "/submissions/<submission_id:int>/attachments/<attachment_id:int>",
    name="staff_attachment",
)
@doc(
    "Download an attachment of a submission (staff)",
    "staff",
    auth="staff",
    answer=BINARY,
    media=ATTACHMENT_TYPES,
)
async def attachment(request: Request, submission_id: int, attachment_id: int) -> HTTPResponse:
    actor, _me = await _staff(request)
    submission = await _submission(submission_id)
    await audit.record(
        "attachment.view", actor, target=f"submission:{submission.id}:attachment:{attachment_id}"
    )
    return await serve_attachment(request, submission, attachment_id)
