"""What the appointment tests share: a hall of their own (open every day, so they pass on any
day of the week), verified people made directly, slots, and cleaning all of it away."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta

from auth import clock
from auth.models import OutboxMessage, Person, WeChatAccount
from auth.pii import Keyring
from auth.taxpayers import ID_NUMBER_INDEX
from hall.halls import upsert_hall
from hall.models import Appointment, Hall, Invitation, Slot
from hall.slots import NO_WINDOW, hall_time

ALL_WEEK = [1, 2, 3, 4, 5, 6, 7]
OPEN_ALL_DAY: list[dict[str, object]] = [{"weekdays": ALL_WEEK, "start": "00:00", "end": "23:59"}]
_ids = itertools.count(1)
_serials = itertools.count(uuid.uuid4().int % 10_000_000)


def resident_id() -> str:
    """A valid resident ID number, different on every call within a run."""
    n = next(_serials)
    born = date(1950, 1, 1) + timedelta(days=(n // 1000) % 20_000)
    body = f"110101{born:%Y%m%d}{n % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


async def verified_person(keyring: Keyring, name: str = "测试人") -> tuple[Person, str]:
    """A real-name verified person (sealed like auth/realname.py does) with a mini-program
    account, and its ID number."""
    number = resident_id()
    person = await Person.create(
        id_number_index=keyring.blind_index(number, purpose=ID_NUMBER_INDEX),
        verified_at=clock.now(),
        id_type="resident_id",
    )
    person.name_sealed = keyring.seal(name, table="person", column="name", row_id=person.id)
    await person.save(update_fields=["name_sealed"])
    await WeChatAccount.create(openid=f"o-appt-{uuid.uuid4().hex[:16]}", person=person)
    return person, number


async def make_slot(
    hall_id: str,
    day: date,
    start: time = time(10),
    end: time = time(11),
    *,
    capacity: int = 5,
    reserved: int = 0,
    category: str = "invoice",
) -> Slot:
    """A slot written directly (any date, past ones too), as the counters' tests need."""
    return await Slot.create(
        hall_id=hall_id,
        category=category,
        date=day,
        start=hall_time(start),
        end=hall_time(end),
        window=NO_WINDOW,
        capacity=capacity,
        reserved=reserved,
    )


def in_days(days: int) -> date:
    return clock.now().date() + timedelta(days=days)


def at(day: date, hhmm: time) -> datetime:
    return datetime.combine(day, hhmm, clock.ZONE)


@asynccontextmanager
async def own_hall() -> AsyncIterator[str]:
    """A hall of the test's own, removed afterwards with its slots, appointments, invitations
    and the people who booked them."""
    hall_id = f"t{next(_ids)}{uuid.uuid4().hex[:8]}"
    await upsert_hall(
        hall_id,
        "测试厅",
        "测试路 1 号",
        OPEN_ALL_DAY,
        [("invoice", "发票办理"), ("filing", "申报")],
    )
    try:
        yield hall_id
    finally:
        slot_ids = list(await Slot.filter(hall_id=hall_id).values_list("id", flat=True))
        person_ids = set(
            await Appointment.filter(slot_id__in=slot_ids).values_list("person_id", flat=True)
        ) | set(await Invitation.filter(slot_id__in=slot_ids).values_list("person_id", flat=True))
        appointment_ids = list(
            await Appointment.filter(slot_id__in=slot_ids).values_list("id", flat=True)
        )
        invitation_ids = list(
            await Invitation.filter(slot_id__in=slot_ids).values_list("id", flat=True)
        )
        keys = [f"appointment:{i}:reminder" for i in appointment_ids]
        keys += [f"invitation:{i}:notice" for i in invitation_ids]
        await OutboxMessage.filter(dedupe_key__in=keys).delete()
        await Invitation.filter(slot_id__in=slot_ids).delete()
        await Appointment.filter(slot_id__in=slot_ids).delete()
        await Hall.filter(hall_id=hall_id).delete()
        await WeChatAccount.filter(person_id__in=list(person_ids)).delete()
        await Person.filter(id__in=list(person_ids)).delete()
