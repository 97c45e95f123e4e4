"""Two-way appointments: staff invite a person into a slot's reserved places; the person accepts
(an appointment is made) or declines.

The place is held when the invitation is made (``invited = invited + 1 WHERE invited <
reserved``), not when it is accepted. Staff invite someone for a purpose and a time they chose;
an invitation that might find its place gone on acceptance would promise what it cannot keep,
and staff could hand out more invitations than places. So a pending invitation holds a place,
an accepted one passes it on to its appointment (still counted in ``invited``), and declining,
expiry or cancelling the appointment gives it back. With self-bookings held to ``booked <
capacity - reserved`` by their own conditional UPDATE, a slot never holds more than its capacity:
``booked <= capacity - reserved`` and ``invited <= reserved`` under any interleaving.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from auth import clock
from auth.documents import InvalidDocument, check_document
from auth.masking import mask_name
from auth.models import Person
from auth.pii import Keyring
from auth.taxpayers import ID_NUMBER_INDEX
from hall.appointments import (
    AlreadyBooked,
    AppointmentRefused,
    Booked,
    SlotMissing,
    SlotStarted,
    insert_appointment,
)
from hall.models import Appointment, Invitation, Slot
from hall.reminders import INVITATIONS_PAGE, announce
from hall.slots import has_started, slot_view, starts_at

MESSAGE_MAX = 500


class InvalidInvitation(AppointmentRefused):
    status = 422
    code = "VALIDATION_FAILED"
    message = "提交的内容有误"

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__()
        self.fields = fields


class PersonMissing(AppointmentRefused):
    status = 404
    code = "PERSON_NOT_FOUND"
    message = "找不到已完成实名认证的该人员"


class InvitationMissing(AppointmentRefused):
    status = 404
    code = "NOT_FOUND"
    message = "找不到该邀请"


class NoReservedPlace(AppointmentRefused):
    code = "RESERVED_FULL"
    message = "该时段的预留名额已用完"


class AlreadyInvited(AppointmentRefused):
    code = "ALREADY_INVITED"
    message = "已邀请该人员预约此时段，等待其答复"


class InvitationAnswered(AppointmentRefused):
    code = "INVITATION_ANSWERED"
    message = "该邀请已答复"


class InvitationExpired(AppointmentRefused):
    code = "INVITATION_EXPIRED"
    message = "该邀请已过期"


def open_message(keyring: Keyring, invitation: Invitation) -> str | None:
    if not invitation.message_sealed:
        return None
    return keyring.open(
        invitation.message_sealed, table="hall_invitation", column="message", row_id=invitation.id
    )


def invitation_view(invitation: Invitation, slot: Slot, keyring: Keyring) -> dict[str, Any]:
    return {
        "invitation_id": invitation.id,
        "status": invitation.status,
        "message": open_message(keyring, invitation),
        "expires_at": invitation.expires_at.isoformat(),
        "answered_at": invitation.answered_at.isoformat() if invitation.answered_at else None,
        "appointment_id": invitation.appointment_id,  # type: ignore[attr-defined]
        "slot": slot_view(slot),
    }


def staff_invitation_view(
    invitation: Invitation, slot: Slot, person: Person, keyring: Keyring
) -> dict[str, Any]:
    name = (
        keyring.open(person.name_sealed, table="person", column="name", row_id=person.id)
        if person.name_sealed
        else ""
    )
    return {
        **invitation_view(invitation, slot, keyring),
        "person": {"person_id": person.id, "name_masked": mask_name(name)},
        "staff_id": invitation.staff_id,  # type: ignore[attr-defined]
    }


async def verified_person(id_type: str, id_number: str, keyring: Keyring, now: datetime) -> Person:
    """The real-name verified person holding this ID number, found by its blind index."""
    try:
        number = check_document(id_type, id_number, today=clock.local(now).date())
    except InvalidDocument as exc:
        raise InvalidInvitation({"id_number": str(exc)}) from exc
    index = keyring.blind_index(number, purpose=ID_NUMBER_INDEX)
    person = await Person.get_or_none(id_number_index=index, verified_at__isnull=False)
    if person is None:
        raise PersonMissing
    return person


async def invite(
    *,
    slot_id: int,
    person: Person,
    message: str | None,
    expires_at: datetime | None,
    staff_id: int | None,
    keyring: Keyring,
    template_id: str,
    now: datetime,
) -> Invitation:
    """Invite ``person`` into a reserved place of ``slot_id``, holding the place, and write the
    notice to the person in the same transaction. Expires at ``expires_at`` (at the latest, and
    by default, when the slot starts)."""
    at = clock.local(now)
    slot = await Slot.get_or_none(id=slot_id)
    if slot is None:
        raise SlotMissing
    if has_started(slot, at):
        raise SlotStarted
    until = clock.local(expires_at) if expires_at is not None else starts_at(slot)
    if until <= at or until > starts_at(slot):
        raise InvalidInvitation({"expires_at": "有效期应晚于现在，且不晚于时段开始"})
    if await Appointment.filter(person_id=person.id, active_slot_id=slot.id).exists():
        raise AlreadyBooked("该人员已预约此时段")
    if await Invitation.filter(
        slot_id=slot.id, person_id=person.id, status="pending", expires_at__gt=at
    ).exists():
        raise AlreadyInvited
    async with in_transaction():
        held = await Slot.filter(id=slot.id, invited__lt=F("reserved")).update(
            invited=F("invited") + 1
        )
        if held != 1:
            raise NoReservedPlace
        invitation = await Invitation.create(
            slot_id=slot.id, person_id=person.id, staff_id=staff_id, expires_at=until
        )
        text = (message or "").strip()[:MESSAGE_MAX]
        if text:
            # Sealed once the row has its id, which the ciphertext is bound to.
            invitation.message_sealed = keyring.seal(
                text, table="hall_invitation", column="message", row_id=invitation.id
            )
            await invitation.save(update_fields=["message_sealed"])
        await announce(
            person_id=person.id,
            template_id=template_id,
            slot=slot,
            status_phrase="邀请预约",
            page=f"{INVITATIONS_PAGE}?id={invitation.id}",
            dedupe_key=f"invitation:{invitation.id}:notice",
            now=at,
        )
    return invitation


async def _release(invitation: Invitation, to: str, at: datetime) -> bool:
    """Move a pending invitation to ``to`` and give its place back, in one transaction; False
    if it was no longer pending (answered or expired by someone else meanwhile)."""
    async with in_transaction():
        moved = await Invitation.filter(id=invitation.id, status="pending").update(
            status=to, answered_at=at if to == "declined" else None
        )
        if moved != 1:
            return False
        await Slot.filter(id=invitation.slot_id, invited__gt=0).update(  # type: ignore[attr-defined]
            invited=F("invited") - 1
        )
    return True


async def _pending(person: Person, invitation_id: int, at: datetime) -> Invitation:
    invitation = await Invitation.get_or_none(id=invitation_id, person_id=person.id)
    if invitation is None:
        raise InvitationMissing
    if invitation.status == "expired":
        raise InvitationExpired
    if invitation.status != "pending":
        raise InvitationAnswered
    if invitation.expires_at <= at:
        await _release(invitation, "expired", at)
        raise InvitationExpired
    return invitation


async def accept(person: Person, invitation_id: int, *, keyring: Keyring, now: datetime) -> Booked:
    """Accept the person's pending invitation: an appointment (source ``invitation``) takes the
    place the invitation held."""
    at = clock.local(now)
    invitation = await _pending(person, invitation_id, at)
    slot = await Slot.get(id=invitation.slot_id)  # type: ignore[attr-defined]
    if has_started(slot, at):
        raise SlotStarted
    async with in_transaction():
        moved = await Invitation.filter(
            id=invitation.id, status="pending", expires_at__gt=at
        ).update(status="accepted", answered_at=at)
        if moved != 1:
            raise InvitationAnswered
        appointment = await insert_appointment(
            slot=slot, person=person, taxpayer=None, note=None, source="invitation", keyring=keyring
        )
        await Invitation.filter(id=invitation.id).update(appointment_id=appointment.id)
    return Booked(appointment, await Slot.get(id=slot.id))


async def decline(person: Person, invitation_id: int, *, now: datetime) -> Invitation:
    at = clock.local(now)
    invitation = await _pending(person, invitation_id, at)
    if not await _release(invitation, "declined", at):
        raise InvitationAnswered
    return await Invitation.get(id=invitation.id)


async def expire_due(now: datetime, *, limit: int = 1000) -> int:
    """Expire pending invitations past their time and give their places back; returns how
    many. Safe to run concurrently with itself and with answers (each move is conditional)."""
    at = clock.local(now)
    due = await Invitation.filter(status="pending", expires_at__lte=at).order_by("id").limit(limit)
    return sum([await _release(invitation, "expired", at) for invitation in due])


async def invitations_of(person: Person) -> list[tuple[Invitation, Slot]]:
    rows = (
        await Invitation.filter(person_id=person.id)
        .order_by("-id")
        .limit(200)
        .prefetch_related("slot")
    )
    return [(row, row.slot) for row in rows]


async def invitations_of_slot(slot_id: int) -> tuple[Slot, list[tuple[Invitation, Person]]]:
    slot = await Slot.get_or_none(id=slot_id)
    if slot is None:
        raise SlotMissing
    rows = await Invitation.filter(slot_id=slot.id).order_by("id").prefetch_related("person")
    return slot, [(row, row.person) for row in rows]
