"""WeCom app messages about submissions, written into the outbox with the status change itself
(installed as ``Notice.also``, see forms/lifecycle.py): a text card to each bound member of the
taxpayer's people (legal representative, finance head, confirmed grantees) on every change, and
to reviewers with a WeCom account when a submission enters the review queue.

Cards carry the form, tracking number and status only: no names, numbers or amounts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from auth import clock
from auth.models import Grant, Person, StaffUser, Taxpayer
from auth.outbox import enqueue_message
from auth.roles import staff_permissions
from forms.lifecycle import STATUS_LABELS
from forms.models import Submission
from wecom.models import WeComMember

REVIEW_PERMISSION = "submissions.review"


async def members_of_taxpayer(taxpayer: Taxpayer, now: datetime) -> list[str]:
    """Bound WeCom members of everyone who acts for the taxpayer now."""
    indexes = [i for i in (taxpayer.legal_rep_index, taxpayer.finance_head_index) if i]
    person_ids: set[int] = set()
    if indexes:
        found: list[int] = await Person.filter(  # type: ignore[assignment]
            id_number_index__in=indexes, verified_at__isnull=False
        ).values_list("id", flat=True)
        person_ids.update(found)
    now = clock.local(now)
    granted: list[int | None] = await Grant.filter(  # type: ignore[assignment]
        taxpayer_id=taxpayer.id, status="active", valid_from__lte=now, expires_at__gt=now
    ).values_list("grantee_id", flat=True)
    person_ids.update(p for p in granted if p is not None)
    if not person_ids:
        return []
    userids = await WeComMember.filter(person_id__in=sorted(person_ids)).values_list(
        "userid", flat=True
    )
    return sorted(str(u) for u in userids)


async def reviewers_on_wecom() -> list[str]:
    rows = await StaffUser.filter(active=True, wecom_userid__isnull=False).values_list(
        "wecom_userid", "roles"
    )
    return sorted(
        str(userid) for userid, roles in rows if REVIEW_PERMISSION in staff_permissions(roles)
    )


def announcer(
    form_title: Callable[[str], str], link_base: str
) -> Callable[[Submission, datetime], Awaitable[None]]:
    """The ``Notice.also`` of the service: ``link_base`` is where people open the service."""

    async def announce(submission: Submission, at: datetime) -> None:
        title = form_title(submission.form_code)
        label = STATUS_LABELS.get(submission.status, submission.status)
        when = clock.local(at).strftime("%Y-%m-%d %H:%M")

        async def card(userid: str, kind: str, heading: str, url: str) -> None:
            await enqueue_message(
                channel="wecom",
                recipient=userid,
                template="textcard",
                payload={
                    "title": heading,
                    "description": f"{title}\n受理编号 {submission.tracking_no}\n"
                    f"当前状态 {label}\n{when}",
                    "url": url,
                    "btntxt": "详情",
                },
                dedupe_key=f"submission:{submission.id}:v{submission.version}:{kind}:{userid}",
                now=at,
            )

        if submission.taxpayer_id is not None:  # type: ignore[attr-defined]
            taxpayer = await Taxpayer.get(id=submission.taxpayer_id)  # type: ignore[attr-defined]
            for userid in await members_of_taxpayer(taxpayer, at):
                await card(
                    userid,
                    "member",
                    f"文书状态更新：{label}",
                    f"{link_base}/h5/#/submissions/{submission.id}",
                )
        if submission.status == "submitted":
            for userid in await reviewers_on_wecom():
                await card(
                    userid,
                    "queue",
                    "新的待审文书",
                    f"{link_base}/console/#/submissions/{submission.id}",
                )

    return announce
