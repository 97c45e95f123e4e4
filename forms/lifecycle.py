"""The submission state machine of API.md, enforced here and nowhere else.

``pending_internal`` → ``submitted`` → ``in_review`` → ``approved`` | ``rejected`` | ``returned``
(then ``submitted`` again) → ``completed``; ``withdrawn`` from any state before ``approved``.

Every change is one conditional UPDATE (``WHERE id = ? AND version = ? AND status IN (...)``) in a
transaction that also appends the timeline event and the outbox row announcing it: two staff
acting on the same version at once get one success and one :class:`StaleVersion`, and a change is
never visible without its event and its notification.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tortoise.transactions import in_transaction

from auth import clock
from auth.audit import Actor
from auth.models import WeChatAccount
from auth.outbox import enqueue_message
from forms.models import Submission, SubmissionEvent

Status = Literal[
    "pending_internal",
    "submitted",
    "in_review",
    "approved",
    "rejected",
    "returned",
    "completed",
    "withdrawn",
]

STATUS_LABELS: dict[str, str] = {
    "pending_internal": "待单位内部审批",
    "submitted": "已提交",
    "in_review": "审核中",
    "approved": "已通过",
    "rejected": "未通过",
    "returned": "退回补正",
    "completed": "已办结",
    "withdrawn": "已撤回",
}
# The subscribe message's status field (a WeChat `phrase` value: at most five characters).
STATUS_PHRASES: dict[str, str] = {
    "pending_internal": "待内部审批",
    "submitted": "已提交",
    "in_review": "审核中",
    "approved": "已通过",
    "rejected": "未通过",
    "returned": "退回补正",
    "completed": "已办结",
    "withdrawn": "已撤回",
}
ACTOR_LABELS: dict[str, str] = {
    "mp": "申请人",
    "wecom": "企业微信",
    "staff": "税务人员",
    "system": "系统",
    "anonymous": "—",
}
OPEN_STATUSES = ("pending_internal", "submitted", "in_review", "returned")
TAXPAYER_SIDE = frozenset({"mp", "wecom"})


@dataclass(frozen=True)
class Transition:
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    actor_kinds: frozenset[str]
    # Staff actions after the claim: only the reviewer holding the claim may take them.
    needs_claim: bool = False


TRANSITIONS: dict[str, Transition] = {
    "internal_approve": Transition(("pending_internal",), ("submitted",), TAXPAYER_SIDE),
    "internal_reject": Transition(("pending_internal",), ("returned",), TAXPAYER_SIDE),
    "claim": Transition(("submitted",), ("in_review",), frozenset({"staff"})),
    "approve": Transition(("in_review",), ("approved",), frozenset({"staff"}), needs_claim=True),
    "reject": Transition(("in_review",), ("rejected",), frozenset({"staff"}), needs_claim=True),
    "return": Transition(("in_review",), ("returned",), frozenset({"staff"}), needs_claim=True),
    "complete": Transition(("approved",), ("completed",), frozenset({"staff"}), needs_claim=True),
    # Back to the bureau, or to the enterprise's own approver when it asks for one.
    "resubmit": Transition(("returned",), ("submitted", "pending_internal"), TAXPAYER_SIDE),
    "withdraw": Transition(OPEN_STATUSES, ("withdrawn",), TAXPAYER_SIDE),
}


class LifecycleError(Exception):
    code = "CONFLICT"
    message = "当前状态下不能进行此操作"


class SubmissionMissing(LifecycleError):
    code = "NOT_FOUND"
    message = "找不到该文书"


class StaleVersion(LifecycleError):
    code = "STALE_VERSION"
    message = "文书已被更新，请刷新后重试"

    def __init__(self, current: Submission) -> None:
        super().__init__(self.message)
        self.current = current


class IllegalTransition(LifecycleError):
    code = "ILLEGAL_TRANSITION"

    def __init__(self, status: str, action: str) -> None:
        label = STATUS_LABELS.get(status, status)
        self.message = f"文书当前状态为「{label}」，不能{ACTION_LABELS.get(action, action)}"
        super().__init__(self.message)
        self.status = status
        self.action = action


class ClaimedByOther(LifecycleError):
    code = "CLAIMED_BY_OTHER"
    message = "该文书已由其他审核人员认领"


ACTION_LABELS: dict[str, str] = {
    "submit": "提交",
    "internal_approve": "内部审批通过",
    "internal_reject": "内部审批退回",
    "claim": "认领",
    "approve": "审核通过",
    "reject": "不予通过",
    "return": "退回补正",
    "complete": "办结",
    "resubmit": "重新提交",
    "withdraw": "撤回",
}


@dataclass(frozen=True)
class Notice:
    """How a status change is announced to the applicant (a subscribe message)."""

    template_id: str
    form_title: Callable[[str], str]
    page: str = "pages/progress/detail"
    # More announcements written in the same transaction (the WeCom bridge's app messages to
    # enterprise members and reviewers): given the changed submission and the time.
    also: Callable[[Submission, datetime], Awaitable[None]] | None = None


@dataclass
class Change:
    """What a transition writes besides status and version."""

    fields: dict[str, Any] = field(default_factory=dict)
    # Computed from the row's id inside the transaction (sealed data is bound to the row).
    fields_for: Callable[[Submission], Mapping[str, Any]] | None = None


def _event_note(note: str | None) -> str | None:
    return note.strip()[:2000] if note and note.strip() else None


async def record_event(
    submission: Submission,
    *,
    action: str,
    from_status: str | None,
    actor: Actor,
    at: datetime,
    note: str | None = None,
) -> SubmissionEvent:
    return await SubmissionEvent.create(
        submission_id=submission.id,
        action=action,
        from_status=from_status,
        status=submission.status,
        version=submission.version,
        at=at,
        actor_kind=actor.kind,
        actor_id=None if actor.id is None else str(actor.id),
        note=_event_note(note),
    )


async def announce(submission: Submission, notice: Notice, at: datetime) -> None:
    """Write the announcements of the submission's current status into the outbox (inside the
    caller's transaction): the applicant's subscribe message (none without a WeChat account), and
    whatever ``notice.also`` adds."""
    openid = await (
        WeChatAccount.filter(person_id=submission.applicant_id)  # type: ignore[attr-defined]
        .order_by("-last_login_at", "-id")
        .first()
        .values_list("openid", flat=True)
    )
    if openid:
        await _subscribe(submission, notice, at, str(openid))
    if notice.also is not None:
        await notice.also(submission, at)


async def _subscribe(submission: Submission, notice: Notice, at: datetime, openid: str) -> None:
    title = notice.form_title(submission.form_code)
    await enqueue_message(
        channel="subscribe",
        recipient=openid,
        template=notice.template_id,
        payload={
            "data": {
                "character_string1": submission.tracking_no,
                "thing2": title[:20],
                "phrase3": STATUS_PHRASES.get(submission.status, submission.status)[:5],
                "time4": clock.local(at).strftime("%Y-%m-%d %H:%M"),
            },
            "page": f"{notice.page}?id={submission.id}",
        },
        dedupe_key=f"submission:{submission.id}:v{submission.version}:applicant",
        now=at,
    )


async def transition(
    submission_id: int,
    action: str,
    *,
    expected_version: int,
    actor: Actor,
    notice: Notice,
    note: str | None = None,
    target: str | None = None,
    change: Change | None = None,
    now: datetime | None = None,
) -> Submission:
    """Move a submission by ``action``; the one place any status changes after filing."""
    rule = TRANSITIONS[action]
    to = target or rule.targets[0]
    if to not in rule.targets:
        raise ValueError(f"{action} cannot lead to {to}")
    at = clock.local(now) if now else clock.now()
    change = change or Change()
    async with in_transaction():
        current = await Submission.get_or_none(id=submission_id)
        if current is None:
            raise SubmissionMissing(SubmissionMissing.message)
        if actor.kind not in rule.actor_kinds or current.status not in rule.sources:
            if current.version != expected_version:
                raise StaleVersion(current)
            raise IllegalTransition(current.status, action)
        if rule.needs_claim and current.claimed_by_id != _int(actor.id):  # type: ignore[attr-defined]
            raise ClaimedByOther(ClaimedByOther.message)
        values: dict[str, Any] = dict(change.fields)
        if change.fields_for is not None:
            values.update(change.fields_for(current))
        if action == "claim":
            values["claimed_by_id"] = _int(actor.id)
        if to in ("submitted", "pending_internal"):
            values["submitted_at"] = at
        values.update(status=to, version=expected_version + 1, updated_at=at)
        filters: dict[str, Any] = {
            "id": submission_id,
            "version": expected_version,
            "status__in": list(rule.sources),
        }
        if rule.needs_claim:
            filters["claimed_by_id"] = _int(actor.id)
        # The read above only chose the error to give: this conditional UPDATE decides, so two
        # concurrent actors on one version cannot both pass.
        updated = await Submission.filter(**filters).update(**values)
        if updated == 0:
            fresh = await Submission.get(id=submission_id)
            raise StaleVersion(fresh)
        fresh = await Submission.get(id=submission_id)
        await record_event(
            fresh, action=action, from_status=current.status, actor=actor, at=at, note=note
        )
        await announce(fresh, notice, at)
    return fresh


def _int(value: int | str | None) -> int | None:
    return None if value is None else int(value)
