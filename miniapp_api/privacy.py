"""A person's rights over their data (PIPL art. 45 export, art. 47 deletion), across every package:
identity (auth), filing (forms), the hall and WeCom. The routes are in routes/privacy.py.

What a deletion keeps, and why, is said once here (:data:`KEPT`), in the answer the person gets.

After a deletion the same WeChat user logging in again gets a fresh, unverified account: the old
accounts are deleted, so their openid is unknown. Verifying again creates a new person, because
the kept person row has lost its blind index; the kept filings stay with the old row, which staff
still see, and the public progress lookup (tracking number and the last four characters of the ID
number) still answers for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.expressions import Q

from auth import audit
from auth import retention as auth_retention
from auth.models import AuditEvent, Grant, Person, WeChatAccount
from auth.pii import Keyring
from auth.sessions import SessionStore
from forms import retention as forms_retention
from forms.models import Draft, Submission
from forms.submissions import open_data
from hall import appointments as hall_appointments
from hall import invitations as hall_invitations
from hall.appointments import AppointmentRefused
from hall.models import Appointment, Invitation
from miniapp_api.filing import detail
from wecom.models import WeComMember

CONFIRM_PHRASE = "删除我的个人信息"
AUDIT_LIMIT = 5000

KEPT: dict[str, str] = {
    "submissions": (
        "已提交的涉税文书及其办理记录、附件属于涉税资料，依《税收征收管理法实施细则》第二十九条"
        "保存十年，期满后删除；附件按保存期限另行删除"
    ),
    "identity": (
        "上述文书须载明申请人，故加密保存您的姓名与证件号码，仅供存档，不再用于查询或其他处理"
        "（《个人信息保护法》第四十七条第二款）"
    ),
    "grants": "已确认的办税授权是纳税人的授权记录，随纳税人档案保存",
    "audit_trail": "操作审计记录仅含编号、不含个人信息，用于安全审计，按规定保存",
}
NEXT_LOGIN = (
    "再次登录将作为新用户，需重新实名认证；已保存的文书不会关联到新账号，可凭受理编号查询办理进度"
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _opened(ring: Keyring, sealed: str | None, table: str, column: str, row_id: int) -> str | None:
    if sealed is None:
        return None
    return ring.open(sealed, table=table, column=column, row_id=row_id)


@dataclass(frozen=True)
class Subject:
    """Whom a request is about: the person (None for an account never verified), their WeChat
    accounts and their WeCom binding."""

    person: Person | None
    accounts: list[WeChatAccount]
    member: WeComMember | None

    @property
    def actor_refs(self) -> list[tuple[str, int]]:
        """(actor kind, id) under which the person acted: grants and audit events name these."""
        refs = [("mp", a.id) for a in self.accounts]
        if self.member is not None:
            refs.append(("wecom", self.member.id))
        return refs

    @property
    def targets(self) -> list[str]:
        found = [f"account:{a.id}" for a in self.accounts]
        if self.person is not None:
            found.append(f"person:{self.person.id}")
        return found

    @property
    def ref(self) -> str:
        return self.targets[-1] if self.targets else "anonymous"


async def subject_of(person: Person | None, account: WeChatAccount | None) -> Subject:
    if person is None:
        return Subject(None, [account] if account is not None else [], None)
    fresh = await Person.get(id=person.id)
    accounts = await auth_retention.accounts_of(person.id)
    member = await WeComMember.get_or_none(person_id=person.id)
    return Subject(fresh, accounts, member)


# --- Export --------------------------------------------------------------------------------------


async def export(subject: Subject, ring: Keyring, now: datetime) -> dict[str, Any]:
    """Everything held about the subject, unsealed for them."""
    person = subject.person
    return {
        "exported_at": now.isoformat(),
        "person": _person(person, ring),
        "wechat_accounts": [_account(a, ring) for a in subject.accounts],
        "wecom_binding": _member(subject.member),
        "grants_received": await _grants_received(person, ring),
        "grants_given": await _grants_given(subject),
        "drafts": await _drafts(person, ring),
        "submissions": await _submissions(person, ring),
        "appointments": await _appointments(person, ring),
        "invitations": await _invitations(person, ring),
        "audit_events": await _audit_events(subject),
    }


def _person(person: Person | None, ring: Keyring) -> dict[str, Any] | None:
    if person is None:
        return None
    return {
        "person_id": person.id,
        "name": _opened(ring, person.name_sealed, "person", "name", person.id),
        "id_type": person.id_type,
        "id_number": _opened(ring, person.id_number_sealed, "person", "id_number", person.id),
        "phone": _opened(ring, person.phone_sealed, "person", "phone", person.id),
        "verification": person.verification,
        "verified_at": _iso(person.verified_at),
        "created_at": _iso(person.created_at),
    }


def _account(account: WeChatAccount, ring: Keyring) -> dict[str, Any]:
    return {
        "account_id": account.id,
        "openid": account.openid,
        "unionid": account.unionid,
        "pending_phone": _opened(ring, account.phone_sealed, "wechat_account", "phone", account.id),
        "created_at": _iso(account.created_at),
        "last_login_at": _iso(account.last_login_at),
    }


def _member(member: WeComMember | None) -> dict[str, Any] | None:
    if member is None:
        return None
    return {
        "member_id": member.id,
        "userid": member.userid,
        "bound_at": _iso(member.bound_at),
        "last_login_at": _iso(member.last_login_at),
    }


def _grant(grant: Grant) -> dict[str, Any]:
    return {
        "grant_id": grant.id,
        "taxpayer_id": grant.taxpayer.taxpayer_id,
        "taxpayer_name": grant.taxpayer.name,
        "role": grant.role,
        "status": grant.status,
        "valid_from": _iso(grant.valid_from),
        "expires_at": _iso(grant.expires_at),
        "confirmed_at": _iso(grant.confirmed_at),
        "revoked_at": _iso(grant.revoked_at),
        "created_at": _iso(grant.created_at),
    }


async def _grants_received(person: Person | None, ring: Keyring) -> list[dict[str, Any]]:
    if person is None:
        return []
    named = Q(grantee_id=person.id)
    if person.id_number_index is not None:
        named |= Q(grantee_id_index=person.id_number_index)
    rows = await Grant.filter(named).prefetch_related("taxpayer").order_by("id")
    return [
        _grant(g)
        | {
            "grantee_name": ring.open(
                g.grantee_name_sealed, table="taxpayer_grant", column="grantee_name", row_id=g.id
            )
        }
        for g in rows
    ]


async def _grants_given(subject: Subject) -> list[dict[str, Any]]:
    # The grantee's name is someone else's personal data: the grant is shown without it.
    given = Q(id__lt=0)
    for kind, actor_id in subject.actor_refs:
        given |= Q(granted_by_kind=kind, granted_by_id=actor_id)
    rows = await Grant.filter(given).prefetch_related("taxpayer").order_by("id")
    return [_grant(g) for g in rows]


async def _drafts(person: Person | None, ring: Keyring) -> list[dict[str, Any]]:
    if person is None:
        return []
    rows = await Draft.filter(person_id=person.id).prefetch_related("taxpayer").order_by("id")
    return [
        {
            "draft_id": d.id,
            "form_code": d.form_code,
            "taxpayer_id": d.taxpayer.taxpayer_id if d.taxpayer else None,
            "data": open_data(ring, "form_draft", d.id, d.data_sealed),
            "version": d.version,
            "created_at": _iso(d.created_at),
            "updated_at": _iso(d.updated_at),
        }
        for d in rows
    ]


async def _submissions(person: Person | None, ring: Keyring) -> list[dict[str, Any]]:
    if person is None:
        return []
    rows = await Submission.filter(applicant_id=person.id).order_by("id")
    return [await detail(s, ring) for s in rows]


async def _appointments(person: Person | None, ring: Keyring) -> list[dict[str, Any]]:
    if person is None:
        return []
    rows = (
        await Appointment.filter(person_id=person.id)
        .prefetch_related("slot", "taxpayer")
        .order_by("id")
    )
    return [
        hall_appointments.appointment_view(
            a, a.slot, ring, a.taxpayer.taxpayer_id if a.taxpayer else None
        )
        for a in rows
    ]


async def _invitations(person: Person | None, ring: Keyring) -> list[dict[str, Any]]:
    if person is None:
        return []
    rows = await Invitation.filter(person_id=person.id).prefetch_related("slot").order_by("id")
    return [hall_invitations.invitation_view(i, i.slot, ring) for i in rows]


async def _audit_events(subject: Subject) -> list[dict[str, Any]]:
    about = Q(target__in=subject.targets) if subject.targets else Q(id__lt=0)
    for kind, actor_id in subject.actor_refs:
        about |= Q(actor_kind=kind, actor_id=str(actor_id))
    rows = await AuditEvent.filter(about).order_by("-id").limit(AUDIT_LIMIT)
    return [
        {
            "event_id": e.id,
            "at": _iso(e.at),
            "actor_kind": e.actor_kind,
            "actor_id": e.actor_id,
            "action": e.action,
            "target": e.target,
            "outcome": e.outcome,
            "details": e.details,
        }
        for e in reversed(rows)
    ]


# --- Deletion ------------------------------------------------------------------------------------


@dataclass
class Deletion:
    removed: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)

    def answer(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "kept": [
                {"what": what, "count": count, "why": KEPT[what]}
                for what, count in self.kept.items()
                if count
            ],
            "next_login": NEXT_LOGIN,
        }


async def delete(
    subject: Subject,
    *,
    sessions: SessionStore,
    redis: Any,
    actor: audit.Actor,
    now: datetime,
) -> Deletion:
    """Remove everything about the subject that the law does not require us to keep, keep the
    rest sealed for storage only, and end every session. Every step is safe to repeat, so a
    request cut short can be sent again while the session still works: the sessions end last."""
    person = subject.person
    done = Deletion()
    r = done.removed
    if person is not None:
        r |= await _leave_the_hall(person, now)
        r["drafts"] = await forms_retention.drop_drafts_of(person.id)
        grants = await auth_retention.drop_pending_grants(person, granted_by=subject.actor_refs)
        r["pending_grants_to_them"] = grants["to_them"]
        r["pending_grants_from_them"] = grants["from_them"]
        r["bind_codes"] = await auth_retention.drop_bind_code(redis, person.id)
    recipients = [a.openid for a in subject.accounts]
    if subject.member is not None:
        recipients.append(subject.member.userid)
        r["wecom_bindings"] = await WeComMember.filter(id=subject.member.id).delete()
    r["outbox_messages"] = await auth_retention.drop_outbox_to(recipients)
    if person is not None:
        submissions = await Submission.filter(applicant_id=person.id).count()
        confirmed = await Grant.filter(grantee_id=person.id).exclude(status="pending").count()
        await auth_retention.erase_identity(person, keep_identity=submissions > 0)
        done.kept = {
            "submissions": submissions,
            "identity": int(submissions > 0),
            "grants": confirmed,
            "audit_trail": 1,
        }
        r["phone"] = int(person.phone_sealed is not None)
        r["identity"] = int(submissions == 0)
    else:
        done.kept = {"audit_trail": 1}
    account_ids = [a.id for a in subject.accounts]
    r["pending_phones"] = sum(1 for a in subject.accounts if a.phone_sealed is not None)
    r["wechat_accounts"] = await auth_retention.unlink_accounts(account_ids)
    r["sessions"] = await auth_retention.end_sessions(
        sessions,
        account_ids=account_ids,
        member_id=subject.member.id if subject.member is not None else None,
    )
    details: dict[str, str | int | bool | None] = {f"removed_{k}": v for k, v in r.items()}
    details |= {f"kept_{k}": v for k, v in done.kept.items()}
    await audit.record("privacy.delete", actor, target=subject.ref, details=details, at=now)
    return done


async def _leave_the_hall(person: Person, now: datetime) -> dict[str, int]:
    """Cancel the person's future appointments and decline their pending invitations (each gives
    its place back with the hall's own conditional UPDATE), then delete the rows that have ended.
    An appointment whose slot has already started stays until the hall closes it (no-show sweep
    or check-in), with its note cleared."""
    cancelled = 0
    for appointment in await Appointment.filter(person_id=person.id, status="booked"):
        try:
            await hall_appointments.cancel(person, appointment.id, now=now)
        except AppointmentRefused:
            continue  # started, or changed meanwhile: not ours to undo
        cancelled += 1
    for invitation in await Invitation.filter(person_id=person.id, status="pending"):
        try:
            await hall_invitations.decline(person, invitation.id, now=now)
        except AppointmentRefused:
            continue  # expired (its place went back with it) or answered meanwhile
    invitations = await Invitation.filter(person_id=person.id).delete()
    # Counted before deleting: a DELETE's count may include the invitations it unlinks.
    ended: list[Any] = await Appointment.filter(
        person_id=person.id, status__in=hall_appointments.ENDED
    ).values_list("id", flat=True)
    await Appointment.filter(id__in=ended).delete()
    await Appointment.filter(person_id=person.id).update(note_sealed=None)
    return {
        "appointments_cancelled": cancelled,
        "appointments": len(ended),
        "invitations": int(invitations),
    }
