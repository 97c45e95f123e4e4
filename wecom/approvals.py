"""An enterprise's internal approval of a clerk's filing, run as a WeCom OA approval.

When a submission starts in ``pending_internal`` and its applicant is a bound WeCom member, the
service files an OA approval (oa/applyevent) as that member, with the taxpayer's legal
representative and finance head (their bound members) as approvers. WeCom's
``sys_approval_change`` callback then moves the submission: approved → ``submitted``, rejected →
``returned`` with the approver's comment as the reason, withdrawn → ``withdrawn``.

The event is never trusted on its own: the approval is read back with oa/getapprovaldetail before
anything changes, and the same event twice changes nothing (the approval's row moves from
``applying`` once, and the submission's transition is version-checked). Without a bound applicant
or approver nothing is filed in WeCom and the approver decides in the mini-program instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from auth import clock
from auth.audit import Actor
from auth.models import Person, Taxpayer
from forms import lifecycle
from forms.models import Submission
from wecom.models import WeComApproval, WeComMember

log = logging.getLogger("suban.wecom.approvals")

# getapprovaldetail's sp_status values that decide a submission.
SP_APPROVED = 2
SP_REJECTED = 3
SP_WITHDRAWN = 6
OUTCOMES = {SP_APPROVED: "approved", SP_REJECTED: "rejected", SP_WITHDRAWN: "withdrawn"}


class OaClient(Protocol):
    async def apply_event(self, payload: dict[str, Any]) -> str: ...

    async def get_approval_detail(self, sp_no: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ApprovalRequest:
    """What the OA form shows: title, tracking number, amount and a link to the submission."""

    template_id: str
    form_title: str
    link: str


async def approvers_for(taxpayer: Taxpayer) -> list[str]:
    """The bound WeCom members of the taxpayer's legal representative and finance head."""
    indexes = [i for i in (taxpayer.legal_rep_index, taxpayer.finance_head_index) if i]
    if not indexes:
        return []
    person_ids = await Person.filter(
        id_number_index__in=indexes, verified_at__isnull=False
    ).values_list("id", flat=True)
    userids = await WeComMember.filter(person_id__in=list(person_ids)).values_list(
        "userid", flat=True
    )
    return sorted(str(u) for u in userids)


def apply_data(submission: Submission, request: ApprovalRequest) -> dict[str, Any]:
    amount = f"{submission.total_incl_tax:.2f} 元" if submission.total_incl_tax is not None else "—"

    def text(control_id: str, value: str) -> dict[str, Any]:
        return {"control": "Text", "id": control_id, "value": {"text": value}}

    return {
        "contents": [
            text("Text-form", request.form_title),
            text("Text-tracking", submission.tracking_no),
            text("Text-amount", amount),
            text("Text-link", request.link),
        ]
    }


async def request_approval(
    submission: Submission, client: OaClient, request: ApprovalRequest
) -> WeComApproval | None:
    """File the OA approval for a ``pending_internal`` submission; None when WeCom cannot take it
    (no bound applicant, no bound approver other than the applicant), so the mini-program's
    approval applies."""
    if submission.status != "pending_internal" or submission.taxpayer_id is None:  # type: ignore[attr-defined]
        return None
    applicant = await WeComMember.get_or_none(person_id=submission.applicant_id)  # type: ignore[attr-defined]
    if applicant is None:
        return None
    taxpayer = await Taxpayer.get(id=submission.taxpayer_id)  # type: ignore[attr-defined]
    approvers = [u for u in await approvers_for(taxpayer) if u != applicant.userid]
    if not approvers:
        return None
    payload: dict[str, Any] = {
        "creator_userid": applicant.userid,
        "template_id": request.template_id,
        "use_template_approver": 0,
        # 或签: either the legal representative or the finance head decides.
        "approver": [{"attr": 2, "userid": approvers}],
        "apply_data": apply_data(submission, request),
        "summary_list": [
            {
                "summary_info": [
                    {"text": f"{request.form_title} {submission.tracking_no}", "lang": "zh_CN"}
                ]
            }
        ],
    }
    sp_no = await client.apply_event(payload)
    return await WeComApproval.create(
        sp_no=sp_no, submission_id=submission.id, applicant_userid=applicant.userid
    )


def _deciding_detail(info: dict[str, Any], status: int) -> tuple[str | None, str]:
    """The approver who gave the deciding answer and their comment (speech)."""
    for node in info.get("sp_record") or []:
        for detail in node.get("details") or []:
            if int(detail.get("sp_status") or 0) == status:
                approver = (detail.get("approver") or {}).get("userid")
                return (str(approver) if approver else None), str(detail.get("speech") or "")
    return None, ""


async def apply_change(
    sp_no: str,
    client: OaClient,
    notice: lifecycle.Notice,
    *,
    request_id: str | None = None,
    now: datetime | None = None,
) -> Submission | None:
    """Act on a ``sys_approval_change`` for ``sp_no``: the changed submission, or None when there
    is nothing to do (not ours, still pending, already acted on, or moved meanwhile)."""
    approval = await WeComApproval.get_or_none(sp_no=sp_no)
    if approval is None or approval.status != "applying":
        return None
    info = await client.get_approval_detail(sp_no)
    status = int(info.get("sp_status") or 0)
    outcome = OUTCOMES.get(status)
    if outcome is None:
        return None
    submission = await Submission.get_or_none(id=approval.submission_id)
    if submission is None:
        return None
    approver, speech = _deciding_detail(info, status)
    note: str | None = speech or None
    change = None
    if outcome == "approved":
        action, actor = "internal_approve", Actor("wecom", approver, request_id)
    elif outcome == "rejected":
        action, actor = "internal_reject", Actor("wecom", approver, request_id)
        note = speech or "单位内部审批未通过"
        change = lifecycle.Change({"result": {"reason": note}})
    else:
        action, actor = "withdraw", Actor("wecom", approval.applicant_userid, request_id)
    at = clock.local(now) if now else clock.now()
    # Claimed once: of two deliveries of one event, only one goes on.
    claimed = await WeComApproval.filter(id=approval.id, status="applying").update(
        status=outcome, decided_at=at
    )
    if not claimed:
        log.debug("approval %s already applied by another delivery", sp_no)
        return None
    try:
        return await lifecycle.transition(
            submission.id,
            action,
            expected_version=submission.version,
            actor=actor,
            notice=notice,
            note=note,
            change=change,
            now=at,
        )
    except lifecycle.LifecycleError as exc:
        # Decided in the mini-program (or withdrawn) meanwhile: WeCom's answer comes too late.
        log.info("approval %s not applied to submission %s: %s", sp_no, submission.id, exc.code)
        return None
