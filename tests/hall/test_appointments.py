"""Appointments as domain functions (hall/slots.py, appointments.py, invitations.py,
reminders.py) against the backend under test: counters, conflicts, invitations, queue events,
no-shows and reminders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import time, timedelta

import pytest

from auth import clock
from auth.models import OutboxMessage
from auth.pii import Keyring
from hall import appointments, invitations, reminders
from hall.appointments import AlreadyBooked, AppointmentRefused, SlotFull, SlotStarted
from hall.models import Appointment, Invitation, Slot
from hall.slots import (
    DuplicateSlot,
    InvalidSlot,
    SlotSpec,
    create_slot,
    load_demo_slots,
    remaining,
    slots_of,
)
from tests.conftest import LiveServer
from tests.hall.appointment_helpers import at, in_days, make_slot, own_hall, verified_person


@pytest.fixture
async def hall_id(live: LiveServer) -> AsyncIterator[str]:
    async with own_hall() as hall_id:
        yield hall_id


@pytest.fixture
def ring(live: LiveServer) -> Keyring:
    keyring: Keyring = live.app.ctx.keyring
    return keyring


async def _book(person: object, slot: Slot, ring: Keyring, **kw: object) -> appointments.Booked:
    return await appointments.book(
        person,  # type: ignore[arg-type]
        slot.id,
        taxpayer_id=None,
        note=kw.get("note"),  # type: ignore[arg-type]
        keyring=ring,
        now=clock.now(),
    )


async def _counters(slot: Slot) -> tuple[int, int]:
    fresh = await Slot.get(id=slot.id)
    return fresh.booked, fresh.invited


async def test_booking_takes_self_service_places_until_full(hall_id: str, ring: Keyring) -> None:
    slot = await make_slot(hall_id, in_days(2), capacity=3, reserved=1)
    people = [(await verified_person(ring))[0] for _ in range(3)]
    first = await _book(people[0], slot, ring, note="带营业执照原件")
    assert first.appointment.status == "booked"
    assert first.appointment.active_slot_id == slot.id
    assert remaining(first.slot) == 1
    assert appointments.open_note(ring, first.appointment) == "带营业执照原件"
    assert "营业执照" not in (await Appointment.get(id=first.appointment.id)).note_sealed
    await _book(people[1], slot, ring)
    with pytest.raises(SlotFull):
        await _book(people[2], slot, ring)
    assert await _counters(slot) == (2, 0)


async def test_second_booking_of_one_slot_conflicts_and_leaves_the_counter(
    hall_id: str, ring: Keyring
) -> None:
    slot = await make_slot(hall_id, in_days(2), capacity=5)
    person, _ = await verified_person(ring)
    await _book(person, slot, ring)
    with pytest.raises(AlreadyBooked):
        await _book(person, slot, ring)
    # At once, so several pass the quick check and meet at the unique pair: the losers'
    # transactions roll their counter increments back.
    other, _ = await verified_person(ring)
    results = await asyncio.gather(
        *(_book(other, slot, ring) for _ in range(6)), return_exceptions=True
    )
    assert sum(isinstance(r, appointments.Booked) for r in results) == 1
    assert all(
        isinstance(r, AlreadyBooked) for r in results if not isinstance(r, appointments.Booked)
    )
    assert await _counters(slot) == (2, 0)
    assert await Appointment.filter(slot_id=slot.id).count() == 2


async def test_cancel_frees_the_place_and_only_once(hall_id: str, ring: Keyring) -> None:
    slot = await make_slot(hall_id, in_days(2), capacity=1)
    alice, _ = await verified_person(ring)
    bob, _ = await verified_person(ring)
    booked = await _book(alice, slot, ring)
    with pytest.raises(SlotFull):
        await _book(bob, slot, ring)
    with pytest.raises(appointments.AppointmentMissing):
        await appointments.cancel(bob, booked.appointment.id, now=clock.now())
    cancelled = await appointments.cancel(alice, booked.appointment.id, now=clock.now())
    assert (cancelled.status, cancelled.active_slot_id) == ("cancelled", None)
    assert await _counters(slot) == (0, 0)
    with pytest.raises(appointments.NotCancellable):
        await appointments.cancel(alice, booked.appointment.id, now=clock.now())
    assert await _counters(slot) == (0, 0)
    await _book(bob, slot, ring)
    # Cancelled, she may book the same slot again (the place is taken by now, though).
    with pytest.raises(SlotFull):
        await _book(alice, slot, ring)


async def test_no_booking_or_cancelling_once_the_slot_started(hall_id: str, ring: Keyring) -> None:
    day = in_days(1)
    slot = await make_slot(hall_id, day, time(9), time(10))
    person, _ = await verified_person(ring)
    booked = await _book(person, slot, ring)
    started = at(day, time(9, 1))
    with pytest.raises(SlotStarted):
        await appointments.cancel(person, booked.appointment.id, now=started)
    other, _ = await verified_person(ring)
    with pytest.raises(SlotStarted):
        await appointments.book(
            other, slot.id, taxpayer_id=None, note=None, keyring=ring, now=started
        )
    assert await _counters(slot) == (1, 0)


async def test_invitation_holds_a_reserved_place_and_accepting_keeps_it(
    hall_id: str, ring: Keyring
) -> None:
    slot = await make_slot(hall_id, in_days(2), capacity=2, reserved=1)
    guest, _ = await verified_person(ring)
    other, _ = await verified_person(ring)
    invitation = await _invite(slot, guest, ring, message="请携带发票专用章")
    assert await _counters(slot) == (0, 1)
    assert "发票" not in (invitation.message_sealed or "")
    assert invitations.open_message(ring, invitation) == "请携带发票专用章"
    with pytest.raises(invitations.NoReservedPlace):
        await _invite(slot, other, ring)
    # The reserved place is not for self-service: one books, the next finds it full.
    await _book(other, slot, ring)
    with pytest.raises(SlotFull):
        await _book((await verified_person(ring))[0], slot, ring)

    with pytest.raises(invitations.InvitationMissing):
        await invitations.accept(other, invitation.id, keyring=ring, now=clock.now())
    accepted = await invitations.accept(guest, invitation.id, keyring=ring, now=clock.now())
    assert (accepted.appointment.source, accepted.appointment.status) == ("invitation", "booked")
    assert await _counters(slot) == (1, 1)
    stored = await Invitation.get(id=invitation.id)
    assert (stored.status, stored.appointment_id) == ("accepted", accepted.appointment.id)  # type: ignore[attr-defined]
    with pytest.raises(invitations.InvitationAnswered):
        await invitations.decline(guest, invitation.id, now=clock.now())
    # Cancelling an accepted invitation gives the reserved place back, not a self-service one.
    await appointments.cancel(guest, accepted.appointment.id, now=clock.now())
    assert await _counters(slot) == (1, 0)
    notices = await OutboxMessage.filter(dedupe_key=f"invitation:{invitation.id}:notice")
    assert len(notices) == 1
    assert "发票专用章" not in str(notices[0].payload)


async def test_declining_and_expiry_give_the_place_back(hall_id: str, ring: Keyring) -> None:
    slot = await make_slot(hall_id, in_days(2), capacity=4, reserved=2)
    first, _ = await verified_person(ring)
    second, _ = await verified_person(ring)
    declined = await _invite(slot, first, ring)
    short = await _invite(slot, second, ring, expires_at=clock.now() + timedelta(hours=1))
    assert await _counters(slot) == (0, 2)
    await invitations.decline(first, declined.id, now=clock.now())
    assert await _counters(slot) == (0, 1)
    with pytest.raises(invitations.InvitationAnswered):
        await invitations.accept(first, declined.id, keyring=ring, now=clock.now())
    later = clock.now() + timedelta(hours=2)
    with pytest.raises(invitations.InvitationExpired):
        await invitations.accept(second, short.id, keyring=ring, now=later)
    assert await _counters(slot) == (0, 0)
    assert (await Invitation.get(id=short.id)).status == "expired"
    # The sweep does the same for invitations nobody looks at.
    third, _ = await verified_person(ring)
    lapsing = await _invite(slot, third, ring, expires_at=clock.now() + timedelta(minutes=5))
    assert await invitations.expire_due(clock.now() + timedelta(minutes=10)) >= 1
    assert (await Invitation.get(id=lapsing.id)).status == "expired"
    assert await invitations.expire_due(clock.now() + timedelta(minutes=10)) == 0
    assert await _counters(slot) == (0, 0)


async def test_counters_hold_under_concurrent_bookings_and_invitations(
    hall_id: str, ring: Keyring
) -> None:
    slot = await make_slot(hall_id, in_days(3), capacity=6, reserved=2)
    people = [(await verified_person(ring))[0] for _ in range(14)]
    bookings = [_book(p, slot, ring) for p in people[:9]]
    invites = [_invite(slot, p, ring) for p in people[9:]]
    results = await asyncio.gather(*bookings, *invites, return_exceptions=True)
    booked, invited = results[:9], results[9:]
    assert sum(isinstance(r, appointments.Booked) for r in booked) == 4
    assert sum(isinstance(r, Invitation) for r in invited) == 2
    assert all(
        isinstance(r, (appointments.Booked, Invitation, AppointmentRefused)) for r in results
    ), results
    assert await _counters(slot) == (4, 2)
    fresh = await Slot.get(id=slot.id)
    assert fresh.booked <= fresh.capacity - fresh.reserved
    assert fresh.invited <= fresh.reserved


async def test_queue_events_check_in_complete_and_mark_no_shows(
    hall_id: str, ring: Keyring
) -> None:
    day = in_days(1)
    slot = await make_slot(hall_id, day, time(10), time(11), capacity=3)
    people = [(await verified_person(ring))[0] for _ in range(3)]
    done, missed, foreign = [(await _book(p, slot, ring)).appointment for p in people]
    morning = at(day, time(9, 50))

    async def event(
        name: str, appointment_id: int | None, ticket: str, hall: str = hall_id
    ) -> None:
        await appointments.apply_ticket_event(
            hall_id=hall, appointment_id=appointment_id, ticket_no=ticket, event=name, at=morning
        )

    await event("taken", done.id, "A001")
    await event("taken", done.id, "A009")  # replayed with another number: no change
    await event("taken", foreign.id, "B001", hall="liwan")  # another hall's queue
    await event("taken", missed.id, "A002")
    got = await Appointment.get(id=done.id)
    assert (got.status, got.ticket_no) == ("checked_in", "A001")
    assert (await Appointment.get(id=foreign.id)).status == "booked"
    await event("finished", None, "A001")  # by ticket number alone
    await event("no_show", missed.id, "A002")
    await event("finished", missed.id, "A002")  # too late: a no-show stays one
    assert (await Appointment.get(id=done.id)).status == "done"
    got = await Appointment.get(id=missed.id)
    assert (got.status, got.active_slot_id) == ("no_show", None)
    # Places that were used stay counted.
    assert await _counters(slot) == (3, 0)

    # The sweep: the third never came; not before the grace period is over.
    grace = timedelta(minutes=30)
    await appointments.sweep_no_shows(at(day, time(11, 20)), grace=grace)
    assert (await Appointment.get(id=foreign.id)).status == "booked"
    assert await appointments.sweep_no_shows(at(day, time(11, 31)), grace=grace) >= 1
    assert (await Appointment.get(id=foreign.id)).status == "no_show"
    assert (await Appointment.get(id=done.id)).status == "done"


async def test_reminders_are_claimed_once_by_concurrent_runs(hall_id: str, ring: Keyring) -> None:
    tomorrow, later = in_days(1), in_days(3)
    slot = await make_slot(hall_id, tomorrow, capacity=5)
    far = await make_slot(hall_id, later, capacity=5)
    mine = [
        (await _book((await verified_person(ring))[0], slot, ring)).appointment for _ in range(3)
    ]
    await _book((await verified_person(ring))[0], far, ring)
    due = await Appointment.filter(
        status="booked", reminded_at__isnull=True, slot__date=tomorrow
    ).count()
    runs = await asyncio.gather(
        *(reminders.send_reminders(template_id="tmpl-r", now=clock.now()) for _ in range(3))
    )
    assert sum(runs) == due
    for appointment in mine:
        rows = await OutboxMessage.filter(dedupe_key=f"appointment:{appointment.id}:reminder")
        assert len(rows) == 1
        assert rows[0].template == "tmpl-r"
        assert (await Appointment.get(id=appointment.id)).reminded_at is not None
    assert await Appointment.filter(slot_id=far.id, reminded_at__isnull=False).count() == 0
    assert await reminders.send_reminders(template_id="tmpl-r", now=clock.now()) == 0


async def test_create_slot_validates_and_refuses_duplicates(hall_id: str) -> None:
    day = in_days(2)
    spec = SlotSpec(
        day=day, start=time(9), end=time(10), category="invoice", capacity=8, reserved=2
    )
    slot = await create_slot(hall_id, spec, created_by=None, now=clock.now())
    assert (slot.capacity, slot.reserved, slot.window) == (8, 2, "")
    with pytest.raises(DuplicateSlot):
        await create_slot(hall_id, spec, created_by=None, now=clock.now())
    bad = SlotSpec(day=in_days(-1), start=time(10), end=time(9), category="nope", capacity=0)
    with pytest.raises(InvalidSlot) as caught:
        await create_slot(hall_id, bad, created_by=None, now=clock.now())
    assert set(caught.value.fields or {}) == {"date", "end", "category", "capacity"}
    too_many = SlotSpec(
        day=day, start=time(9), end=time(10), category="invoice", capacity=3, reserved=4
    )
    with pytest.raises(InvalidSlot) as caught:
        await create_slot(hall_id, too_many, created_by=None, now=clock.now())
    assert set(caught.value.fields or {}) == {"reserved"}
    listed = await slots_of(hall_id, day, "invoice")
    assert [s.id for s in listed] == [slot.id]


async def test_slots_outside_opening_hours_are_refused(live: LiveServer) -> None:
    # The demo hall: weekdays 09:00–12:00 and 13:00–17:00.
    day = in_days(1)
    while day.isoweekday() > 5:
        day += timedelta(days=1)
    lunch = SlotSpec(day=day, start=time(11, 30), end=time(13, 30), category="invoice", capacity=5)
    with pytest.raises(InvalidSlot) as caught:
        await create_slot("liwan", lunch, created_by=None, now=clock.now())
    assert set(caught.value.fields or {}) == {"start"}
    saturday = day + timedelta(days=(6 - day.isoweekday()) % 7)
    weekend = SlotSpec(day=saturday, start=time(9), end=time(10), category="invoice", capacity=5)
    with pytest.raises(InvalidSlot):
        await create_slot("liwan", weekend, created_by=None, now=clock.now())


async def test_demo_slots_load_once_and_add_new_days(hall_id: str) -> None:
    today = in_days(0)
    first = await load_demo_slots(hall_id, today=today, days=3)
    count = await Slot.filter(hall_id=hall_id).count()
    # Open all day, every day, two categories: 23 whole hours a day.
    assert count == 3 * 23 * 2
    assert first.startswith(f"{count} new slots")
    assert (await load_demo_slots(hall_id, today=today, days=3)).startswith("0 new slots")
    assert (await load_demo_slots(hall_id, today=today + timedelta(days=1), days=3)).startswith(
        f"{23 * 2} new slots"
    )
    # And the demo hall has its 14 days, loaded by `suban demo`.
    assert await Slot.filter(hall_id="liwan", date__gte=today).exists()


async def _invite(slot: Slot, person: object, ring: Keyring, **kw: object) -> Invitation:
    return await invitations.invite(
        slot_id=slot.id,
        person=person,  # type: ignore[arg-type]
        message=kw.get("message"),  # type: ignore[arg-type]
        expires_at=kw.get("expires_at"),  # type: ignore[arg-type]
        staff_id=None,
        keyring=ring,
        template_id="tmpl-i",
        now=clock.now(),
    )
