"""Appointments: booking slots, cancelling, and what queue events and time make of them.

Booking is one conditional UPDATE of the slot's counter (``booked = booked + 1 WHERE id = ? AND
booked < capacity - reserved``) and the appointment's INSERT in one transaction. The UPDATE is
atomic in the database, so no interleaving of requests on any worker or node overbooks; the
unique (person, active_slot_id) pair refuses a second active booking of one slot, and its error
rolls the counter back with the transaction.

Statuses: ``booked`` → ``checked_in`` (ticket taken) → ``done``; ``booked`` → ``cancelled`` (by
the person, before the slot starts) or ``no_show``. Only cancelling gives the place back: a place
that was used or missed stays counted. ``active_slot_id`` is NULL once an appointment has ended,
so the person may book that slot again after cancelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from auth import clock
from auth.authorizations import permissions_on
from auth.models import Person, Taxpayer
from auth.pii import Keyring
from hall.models import Appointment, Slot
from hall.slots import ends_at, has_started, slot_view

NOTE_MAX = 200
ENDED = ("cancelled", "done", "no_show")


class AppointmentRefused(Exception):
    """Why a booking, cancellation or invitation answer cannot be done, in the contract's terms."""

    status = 409
    code = "CONFLICT"
    message = "当前状态下不能进行此操作"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class SlotMissing(AppointmentRefused):
    status = 404
    code = "SLOT_NOT_FOUND"
    message = "找不到该时段"


class AppointmentMissing(AppointmentRefused):
    status = 404
    code = "NOT_FOUND"
    message = "找不到该预约"


class TaxpayerNotYours(AppointmentRefused):
    status = 404
    code = "TAXPAYER_NOT_FOUND"
    message = "找不到该纳税人，或您未获该纳税人授权"


class SlotFull(AppointmentRefused):
    code = "SLOT_FULL"
    message = "该时段已约满"


class SlotStarted(AppointmentRefused):
    code = "SLOT_STARTED"
    message = "该时段已开始，不能再预约或取消"


class AlreadyBooked(AppointmentRefused):
    code = "ALREADY_BOOKED"
    message = "您已预约该时段"


class NotCancellable(AppointmentRefused):
    code = "NOT_CANCELLABLE"
    message = "该预约当前状态不能取消"


@dataclass(frozen=True)
class Booked:
    appointment: Appointment
    slot: Slot


def open_note(keyring: Keyring, appointment: Appointment) -> str | None:
    if not appointment.note_sealed:
        return None
    return keyring.open(
        appointment.note_sealed, table="hall_appointment", column="note", row_id=appointment.id
    )


def appointment_view(
    appointment: Appointment, slot: Slot, keyring: Keyring, taxpayer_id: str | None = None
) -> dict[str, Any]:
    return {
        "appointment_id": appointment.id,
        "status": appointment.status,
        "source": appointment.source,
        "slot": slot_view(slot),
        "taxpayer_id": taxpayer_id,
        "note": open_note(keyring, appointment),
        "ticket_no": appointment.ticket_no,
        "created_at": appointment.created_at.isoformat() if appointment.created_at else None,
    }


async def taxpayer_for(person: Person, taxpayer_id: str | None, now: datetime) -> Taxpayer | None:
    """The taxpayer an appointment is made for: the person must hold a role on it, and one
    they hold none on is as unknown as one that does not exist."""
    if taxpayer_id is None:
        return None
    taxpayer = await Taxpayer.get_or_none(taxpayer_id=taxpayer_id)
    if taxpayer is None or not await permissions_on(person, taxpayer, now):
        raise TaxpayerNotYours
    return taxpayer


async def insert_appointment(
    *,
    slot: Slot,
    person: Person,
    taxpayer: Taxpayer | None,
    note: str | None,
    source: str,
    keyring: Keyring,
) -> Appointment:
    """The appointment row, inside the caller's transaction (which has already taken the place).
    :class:`AlreadyBooked` when the person holds an active one on the slot: raising it out of
    the transaction rolls the place back."""
    try:
        appointment = await Appointment.create(
            slot_id=slot.id,
            person_id=person.id,
            active_slot_id=slot.id,
            taxpayer_id=taxpayer.id if taxpayer else None,
            source=source,
        )
    except IntegrityError as exc:
        raise AlreadyBooked from exc
    text = (note or "").strip()[:NOTE_MAX]
    if text:
        # Sealed once the row has its id, which the ciphertext is bound to.
        appointment.note_sealed = keyring.seal(
            text, table="hall_appointment", column="note", row_id=appointment.id
        )
        await appointment.save(update_fields=["note_sealed"])
    return appointment


async def book(
    person: Person,
    slot_id: int,
    *,
    taxpayer_id: str | None,
    note: str | None,
    keyring: Keyring,
    now: datetime,
) -> Booked:
    """Book a self-service place of ``slot_id`` for a verified ``person``."""
    taxpayer = await taxpayer_for(person, taxpayer_id, now)
    slot = await Slot.get_or_none(id=slot_id)
    if slot is None:
        raise SlotMissing
    # Time only moves forward: a slot seen not started a moment ago is not started now in any
    # sense that matters, so this check needs no place in the UPDATE.
    if has_started(slot, now):
        raise SlotStarted
    if await Appointment.filter(person_id=person.id, active_slot_id=slot.id).exists():
        # The common case answered without touching the counter; the unique pair below is
        # what actually holds under concurrency.
        raise AlreadyBooked
    async with in_transaction():
        taken = await Slot.filter(id=slot.id, booked__lt=F("capacity") - F("reserved")).update(
            booked=F("booked") + 1
        )
        if taken != 1:
            raise SlotFull
        appointment = await insert_appointment(
            slot=slot, person=person, taxpayer=taxpayer, note=note, source="self", keyring=keyring
        )
    fresh = await Slot.get(id=slot.id)
    return Booked(appointment, fresh)


async def cancel(person: Person, appointment_id: int, *, now: datetime) -> Appointment:
    """Cancel the person's appointment before its slot starts; the place goes back to the
    counter it came from (``invited`` for one accepted from an invitation)."""
    appointment = await Appointment.get_or_none(id=appointment_id, person_id=person.id)
    if appointment is None:
        raise AppointmentMissing
    slot = await Slot.get(id=appointment.slot_id)  # type: ignore[attr-defined]
    if appointment.status != "booked":
        raise NotCancellable
    if has_started(slot, now):
        raise SlotStarted
    counter = "invited" if appointment.source == "invitation" else "booked"
    at = clock.local(now)
    async with in_transaction():
        moved = await Appointment.filter(id=appointment.id, status="booked").update(
            status="cancelled",
            active_slot_id=None,
            cancelled_at=at,
            updated_at=at,
            version=F("version") + 1,
        )
        if moved != 1:
            # Cancelled (or checked in) by a concurrent request: the place went back once.
            raise NotCancellable
        await Slot.filter(id=slot.id, **{f"{counter}__gt": 0}).update(**{counter: F(counter) - 1})
    return await Appointment.get(id=appointment.id)


async def appointments_of(person: Person) -> list[tuple[Appointment, Slot, str | None]]:
    """The person's appointments, newest slot first, with their slot and taxpayer id."""
    rows = (
        await Appointment.filter(person_id=person.id)
        .order_by("-id")
        .limit(200)
        .prefetch_related("slot", "taxpayer")
    )
    rows.sort(key=lambda a: (a.slot.date, a.slot.start.replace(tzinfo=None)), reverse=True)
    return [(a, a.slot, a.taxpayer.taxpayer_id if a.taxpayer else None) for a in rows]


# What a queue event does to an appointment: (statuses it applies to, the status it leads to).
TICKET_EVENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "taken": (("booked",), "checked_in"),
    "finished": (("booked", "checked_in"), "done"),
    "no_show": (("booked", "checked_in"), "no_show"),
}


async def _appointment_of_ticket(hall_id: str, ticket_no: str, day: Any) -> Appointment | None:
    slot_ids = await Slot.filter(hall_id=hall_id, date=day).values_list("id", flat=True)
    if not slot_ids:
        return None
    return await Appointment.filter(slot_id__in=list(slot_ids), ticket_no=ticket_no).first()


async def apply_ticket_event(
    *, hall_id: str, appointment_id: int | None, ticket_no: str, event: str, at: datetime
) -> None:
    """What a queue event means for an appointment: ``taken`` with an appointment id checks the
    person in, ``finished`` completes it, ``no_show`` marks it a no-show. Called by the queue
    event ingestion for every newly stored event."""
    rule = TICKET_EVENTS.get(event)
    if rule is None:
        return None
    sources, target = rule
    day = clock.local(at).date()
    if appointment_id is not None:
        appointment = await Appointment.get_or_none(id=appointment_id).prefetch_related("slot")
    elif event != "taken":
        # Later events of a booked ticket name only the ticket: the one checked in with it.
        appointment = await _appointment_of_ticket(hall_id, ticket_no, day)
        if appointment is not None:
            await appointment.fetch_related("slot")
    else:
        appointment = None
    if appointment is None:
        return None
    slot = appointment.slot
    # Another hall's queue, or a ticket of another day, must not move this appointment.
    if slot.hall_id != hall_id or slot.date != day:  # type: ignore[attr-defined]
        return None
    changes: dict[str, Any] = {"status": target, "updated_at": clock.local(at)}
    if event == "taken":
        changes["ticket_no"] = ticket_no
    else:
        changes["active_slot_id"] = None
    # Conditional on the statuses it may come from: a replayed or late event changes nothing.
    await Appointment.filter(id=appointment.id, status__in=list(sources)).update(
        **changes, version=F("version") + 1
    )
    return None


async def sweep_no_shows(now: datetime, *, grace: timedelta, limit: int = 1000) -> int:
    """Mark ``no_show`` every appointment still ``booked`` (never checked in) after its slot
    ended more than ``grace`` ago; returns how many. Idempotent and safe to run concurrently:
    each change is conditional on the status it leaves."""
    cutoff = clock.local(now) - grace
    candidates: Sequence[Appointment] = (
        await Appointment.filter(status="booked", slot__date__lte=cutoff.date())
        .order_by("id")
        .limit(limit)
        .prefetch_related("slot")
    )
    due = [a.id for a in candidates if ends_at(a.slot) <= cutoff]
    if not due:
        return 0
    marked: int = await Appointment.filter(id__in=due, status="booked").update(
        status="no_show",
        active_slot_id=None,
        updated_at=clock.local(now),
        version=F("version") + 1,
    )
    return marked
