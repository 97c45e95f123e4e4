"""Bookable slots of a hall: created by staff (and by the demo loader), listed for booking.

A slot's places split in two: ``capacity - reserved`` taxpayers book themselves (``booked``
counts them) and ``reserved`` staff hand out by invitation (``invited`` counts them). Both
counters move only by conditional UPDATEs (see hall/appointments.py and hall/invitations.py).

Times of day are stored with the hall's fixed UTC+8 offset: tortoise maps ``TimeField`` to
``TIMETZ`` on PostgreSQL and warns about naive times, and SQLite compares them as text, so every
time written or compared must carry the same offset (China has no daylight saving time).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from tortoise.exceptions import IntegrityError

from auth import clock
from hall.models import Hall, HallCategory, Slot

HALL_OFFSET = timezone(timedelta(hours=8))
MAX_CAPACITY = 500
# No window is stored as "" rather than NULL: the unique (hall, category, date, start, window)
# then refuses a duplicate slot on both databases, where NULLs would never collide.
NO_WINDOW = ""

# Python's sqlite3 adapts dates and datetimes (tortoise registers those) but not times.
sqlite3.register_adapter(time, lambda value: value.isoformat())


class SlotRefused(Exception):
    """Why a slot cannot be made: ``status`` and ``code`` as the contract answers it."""

    status = 409
    code = "SLOT_REFUSED"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


class InvalidSlot(SlotRefused):
    status = 422
    code = "VALIDATION_FAILED"


class DuplicateSlot(SlotRefused):
    code = "SLOT_EXISTS"


class HallUnknown(SlotRefused):
    status = 404
    code = "HALL_NOT_FOUND"


@dataclass(frozen=True)
class SlotSpec:
    day: date
    start: time
    end: time
    category: str
    capacity: int
    reserved: int = 0
    window: str | None = None


def hall_time(value: time) -> time:
    """``value`` as stored: whole minutes, the hall's offset."""
    return value.replace(second=0, microsecond=0, tzinfo=HALL_OFFSET)


def starts_at(slot: Slot) -> datetime:
    return datetime.combine(slot.date, slot.start.replace(tzinfo=None), clock.ZONE)


def ends_at(slot: Slot) -> datetime:
    return datetime.combine(slot.date, slot.end.replace(tzinfo=None), clock.ZONE)


def has_started(slot: Slot, now: datetime) -> bool:
    return clock.local(now) >= starts_at(slot)


def remaining(slot: Slot) -> int:
    """Places a taxpayer can still book (the reserved ones are for invitations)."""
    return max(0, slot.capacity - slot.reserved - slot.booked)


def hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def slot_view(slot: Slot) -> dict[str, Any]:
    """The public shape of API.md: what a taxpayer needs to choose and book."""
    return {
        "slot_id": slot.id,
        "hall_id": slot.hall_id,  # type: ignore[attr-defined]
        "date": slot.date.isoformat(),
        "start": hhmm(slot.start),
        "end": hhmm(slot.end),
        "category": slot.category,
        "window": slot.window or None,
        "capacity": slot.capacity,
        "remaining": remaining(slot),
    }


def staff_slot_view(slot: Slot) -> dict[str, Any]:
    return {
        **slot_view(slot),
        "reserved": slot.reserved,
        "booked": slot.booked,
        "invited": slot.invited,
        "invitations_left": max(0, slot.reserved - slot.invited),
    }


def _parse_hhmm(value: object) -> time | None:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        return None


def within_open_hours(open_hours: list[dict[str, Any]], day: date, start: time, end: time) -> bool:
    """Whether ``start``–``end`` lies inside one opening period of the hall on ``day``
    (a slot across the lunch break is not bookable as one)."""
    start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    for period in open_hours:
        weekdays = period.get("weekdays") or []
        opens, closes = _parse_hhmm(period.get("start")), _parse_hhmm(period.get("end"))
        if not isinstance(weekdays, list) or day.isoweekday() not in weekdays:
            continue
        if opens is not None and closes is not None and opens <= start and end <= closes:
            return True
    return False


async def _hall(hall_id: str) -> Hall:
    hall = await Hall.get_or_none(hall_id=hall_id)
    if hall is None:
        raise HallUnknown("找不到该办税服务厅")
    return hall


async def category_codes(hall_id: str) -> list[str]:
    codes: list[str] = await HallCategory.filter(hall_id=hall_id).values_list(  # type: ignore[assignment]
        "code", flat=True
    )
    return codes


async def check_spec(hall: Hall, spec: SlotSpec, now: datetime) -> None:
    """422 naming each bad field of ``spec``."""
    fields: dict[str, str] = {}
    if spec.category not in await category_codes(hall.hall_id):
        fields["category"] = "该大厅没有此业务类别"
    if not 1 <= spec.capacity <= MAX_CAPACITY:
        fields["capacity"] = f"名额应为 1–{MAX_CAPACITY}"
    elif not 0 <= spec.reserved <= spec.capacity:
        fields["reserved"] = "预留名额应在 0 与总名额之间"
    if spec.end <= spec.start:
        fields["end"] = "结束时间应晚于开始时间"
    today = clock.local(now).date()
    if spec.day < today:
        fields["date"] = "日期不能早于今天"
    elif datetime.combine(spec.day, spec.start.replace(tzinfo=None), clock.ZONE) <= now:
        fields["start"] = "开始时间已过"
    open_hours = list(hall.open_hours)
    if not fields.keys() & {"end", "date"} and not within_open_hours(
        open_hours, spec.day, spec.start, spec.end
    ):
        fields.setdefault("start", "时段应在大厅的办公时间内")
    if fields:
        raise InvalidSlot("提交的内容有误", fields)


async def create_slot(
    hall_id: str, spec: SlotSpec, *, created_by: int | None, now: datetime
) -> Slot:
    """A new slot of ``hall_id``; :class:`InvalidSlot`, :class:`DuplicateSlot` or
    :class:`HallUnknown` otherwise."""
    hall = await _hall(hall_id)
    await check_spec(hall, spec, now)
    try:
        return await Slot.create(
            hall_id=hall.hall_id,
            category=spec.category,
            date=spec.day,
            start=hall_time(spec.start),
            end=hall_time(spec.end),
            window=spec.window or NO_WINDOW,
            capacity=spec.capacity,
            reserved=spec.reserved,
            created_by_id=created_by,
        )
    except IntegrityError as exc:
        raise DuplicateSlot("该时段已存在") from exc


async def slots_of(hall_id: str, day: date, category: str | None = None) -> list[Slot]:
    """The slots of a hall on ``day`` (of one category), in time order; unknown hall → 404."""
    await _hall(hall_id)
    rows = Slot.filter(hall_id=hall_id, date=day)
    if category:
        rows = rows.filter(category=category)
    return list(await rows.order_by("start", "category", "window", "id"))


# The demo's slots: one hour each, through every opening period of every working day.
DEMO_DAYS = 14
DEMO_SLOT_MINUTES = 60
DEMO_CAPACITY = 10
DEMO_RESERVED = 2


def _demo_times(open_hours: list[dict[str, Any]], day: date) -> list[tuple[time, time]]:
    found: list[tuple[time, time]] = []
    step = timedelta(minutes=DEMO_SLOT_MINUTES)
    for period in open_hours:
        weekdays = period.get("weekdays") or []
        opens, closes = _parse_hhmm(period.get("start")), _parse_hhmm(period.get("end"))
        if opens is None or closes is None or not isinstance(weekdays, list):
            continue
        if day.isoweekday() not in weekdays:
            continue
        at = datetime.combine(day, opens)
        while at + step <= datetime.combine(day, closes):
            found.append((at.time(), (at + step).time()))
            at += step
    return found


async def load_demo_slots(hall_id: str, *, today: date, days: int = DEMO_DAYS) -> str:
    """Slots for ``today`` and the following days of the demo hall. Idempotent: the unique
    constraint turns a slot already there into a no-op (``INSERT … ON CONFLICT DO NOTHING``),
    so a re-run adds nothing twice and a run on a later day adds only the new days."""
    hall = await _hall(hall_id)
    codes = await category_codes(hall_id)
    before = await Slot.filter(hall_id=hall_id).count()
    rows = [
        Slot(
            hall_id=hall_id,
            category=code,
            date=day,
            start=hall_time(start),
            end=hall_time(end),
            window=NO_WINDOW,
            capacity=DEMO_CAPACITY,
            reserved=DEMO_RESERVED,
        )
        for day in (today + timedelta(days=n) for n in range(days))
        for start, end in _demo_times(list(hall.open_hours), day)
        for code in codes
    ]
    await Slot.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    added = await Slot.filter(hall_id=hall_id).count() - before
    return f"{added} new slots of hall {hall_id} for the next {days} days"
