"""A person's rights over their data (PIPL art. 45, 47): export and deletion requests.

Both act on the caller's own person (or, never verified, their own account), so there is no id to
guess. The work is in miniapp_api/privacy.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from auth import audit
from auth.ratelimit import Limit
from miniapp_api import privacy
from miniapp_api.callers import keyring, limiter, mp_caller, too_many, utcnow
from miniapp_api.errors import ValidationFailed
from miniapp_api.openapi_docs import doc
from miniapp_api.validation import parse_body

bp = Blueprint("privacy", url_prefix="/mp")

# An export unseals everything about a person in one answer: a stolen session should not be
# able to pull it over and over, and nobody needs it more than a few times an hour.
EXPORT_LIMIT = Limit(limit=3, window=3600)


class DeletionBody(BaseModel):
    confirm: str = Field(max_length=64, description=f"exactly “{privacy.CONFIRM_PHRASE}”")


class ExportedPerson(BaseModel):
    person_id: int
    name: str | None
    id_type: str
    id_number: str | None
    phone: str | None
    verification: str
    verified_at: datetime | None
    created_at: datetime | None


class Export(BaseModel):
    """miniapp_api/privacy.py ``export``: every list holds the rows as they are stored, unsealed."""

    exported_at: datetime
    person: ExportedPerson | None = Field(description="None for an account never verified")
    wechat_accounts: list[dict[str, Any]]
    wecom_binding: dict[str, Any] | None
    grants_received: list[dict[str, Any]]
    grants_given: list[dict[str, Any]]
    drafts: list[dict[str, Any]]
    submissions: list[dict[str, Any]]
    appointments: list[dict[str, Any]]
    invitations: list[dict[str, Any]]
    audit_events: list[dict[str, Any]]


class KeptData(BaseModel):
    what: str
    count: int = Field(ge=1)
    why: str = Field(description="the law that requires keeping it")


class DeletionDone(BaseModel):
    removed: dict[str, int] = Field(description="rows removed, by kind")
    kept: list[KeptData]
    next_login: str


@bp.get("/me/export", name="privacy_export")
@doc(
    "Download everything held about me, unsealed (JSON; 3 per hour)",
    "mini-program",
    auth="person",
    answer=Export,
    description="An attachment (`Content-Disposition`); a fourth export within the hour is 429.",
)
async def export(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    subject = await privacy.subject_of(caller.person, caller.wechat_account)
    verdict = await limiter(request).hit("privacy-export", [subject.ref], EXPORT_LIMIT)
    if not verdict.allowed:
        await audit.record(
            "privacy.export",
            caller.actor,
            target=subject.ref,
            outcome="denied",
            details={"reason": "rate_limited"},
        )
        raise too_many(verdict.retry_after, "导出过于频繁，请稍后再试")
    now = utcnow()
    body = await privacy.export(subject, keyring(request), now)
    await audit.record("privacy.export", caller.actor, target=subject.ref, at=now)
    filename = f"suban-export-{now:%Y%m%d}.json"
    return json(
        body,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@bp.post("/me/deletion", name="privacy_deletion")
@doc(
    "Delete my personal data (what tax law requires is kept, sealed); ends every session",
    "mini-program",
    auth="person",
    body=DeletionBody,
    ok=202,
    answer=DeletionDone,
    description=f"`confirm` other than “{privacy.CONFIRM_PHRASE}” is 422. Safe to repeat while "
    "the session lasts; afterwards every session of the person is gone (401).",
)
async def deletion(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    body = parse_body(request, DeletionBody)
    if body.confirm != privacy.CONFIRM_PHRASE:
        raise ValidationFailed({"confirm": f"请输入“{privacy.CONFIRM_PHRASE}”以确认"}, "请确认删除")
    subject = await privacy.subject_of(caller.person, caller.wechat_account)
    done = await privacy.delete(
        subject,
        sessions=request.app.ctx.sessions,
        redis=request.app.ctx.redis,
        actor=caller.actor,
        now=utcnow(),
    )
    # The session that asked may not be in the index revoke_all reads (it expires on its own
    # schedule): end it by name as well.
    await request.app.ctx.sessions.revoke(caller.session)
    return json(done.answer(), status=202)
