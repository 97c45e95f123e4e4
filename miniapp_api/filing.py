"""What the filing routes share: the answer shapes of a submission, the status notice, and the
mapping of filing errors to the contract's errors."""

from __future__ import annotations

from typing import Any

from sanic import Request

from auth.models import Taxpayer
from auth.pii import Keyring
from forms import lifecycle
from forms.catalogue import FormSpec, catalogue
from forms.models import Attachment, Submission, SubmissionEvent
from forms.submissions import FilingRefused, open_data
from miniapp_api.errors import ApiError, NotFound, ValidationFailed
from miniapp_api.settings import Settings
from wecom import notify as wecom_notify


def form_or_404(code: str) -> FormSpec:
    spec = catalogue().get(code)
    if spec is None:
        raise NotFound("找不到该文书类型")
    return spec


def form_title(code: str) -> str:
    spec = catalogue().get(code)
    return spec.title if spec is not None else code


def notice_for(request: Request) -> lifecycle.Notice:
    return service_notice(request.app.ctx.settings)


def service_notice(settings: Settings) -> lifecycle.Notice:
    """How the service announces a status change: the applicant's subscribe message, and WeCom
    text cards to the taxpayer's bound members and to reviewers (wecom/notify.py)."""
    return lifecycle.Notice(
        template_id=settings.subscribe_template_status,
        form_title=form_title,
        also=wecom_notify.announcer(form_title, settings.public_link_base),
    )


def refused(exc: FilingRefused) -> ApiError:
    if exc.status == 422:
        return ValidationFailed(exc.fields or {}, exc.message)
    return ApiError(exc.status, exc.code, exc.message)


def lifecycle_error(exc: lifecycle.LifecycleError) -> ApiError:
    if isinstance(exc, lifecycle.SubmissionMissing):
        return NotFound(exc.message)
    details: dict[str, Any] = {}
    if isinstance(exc, lifecycle.StaleVersion):
        details = {"status": exc.current.status, "version": exc.current.version}
    elif isinstance(exc, lifecycle.IllegalTransition):
        details = {"status": exc.status}
    return ApiError(409, exc.code, exc.message, details=details)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def summary(submission: Submission, taxpayer: Taxpayer | None) -> dict[str, Any]:
    return {
        "id": submission.id,
        "tracking_no": submission.tracking_no,
        "form_code": submission.form_code,
        "form_title": form_title(submission.form_code),
        "status": submission.status,
        "status_label": lifecycle.STATUS_LABELS.get(submission.status, submission.status),
        "version": submission.version,
        "taxpayer_id": taxpayer.taxpayer_id if taxpayer else None,
        "taxpayer_name": taxpayer.name if taxpayer else None,
        "total_incl_tax": (
            f"{submission.total_incl_tax:.2f}" if submission.total_incl_tax is not None else None
        ),
        "submitted_at": _iso(submission.submitted_at),
        "updated_at": _iso(submission.updated_at),
    }


def timeline_entry(event: SubmissionEvent) -> dict[str, Any]:
    return {
        "status": event.status,
        "status_label": lifecycle.STATUS_LABELS.get(event.status, event.status),
        "action": event.action,
        "at": event.at.isoformat(),
        "actor_kind": event.actor_kind,
        "note": event.note,
    }


def attachment_view(attachment: Attachment, name: str) -> dict[str, Any]:
    return {
        "attachment_id": attachment.id,
        "name": name,
        "size": attachment.size,
        "content_type": attachment.content_type,
        "created_at": _iso(attachment.created_at),
    }


async def timeline_of(submission: Submission) -> list[dict[str, Any]]:
    events = await SubmissionEvent.filter(submission_id=submission.id).order_by("id")
    return [timeline_entry(e) for e in events]


async def detail(submission: Submission, keyring: Keyring) -> dict[str, Any]:
    taxpayer = await Taxpayer.get_or_none(id=submission.taxpayer_id)  # type: ignore[attr-defined]
    attachments = await Attachment.filter(submission_id=submission.id).order_by("id")
    return {
        **summary(submission, taxpayer),
        "data": open_data(keyring, "submission", submission.id, submission.data_sealed),
        "quote": submission.quote,
        "result": submission.result or None,
        "timeline": await timeline_of(submission),
        "attachments": [
            attachment_view(
                a,
                keyring.open(
                    a.name_sealed, table="submission_attachment", column="name", row_id=a.id
                ),
            )
            for a in attachments
        ],
    }
