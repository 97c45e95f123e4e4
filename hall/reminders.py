"""Announcing appointments to people through the outbox: staff invitations and the reminder the
day before.

Each announcement is written in the transaction of the change it announces (the invitation made,
the reminder claimed), so it is never lost and never written without its change. Payloads carry
the hall, category and time, never a staff message or a note: the outbox is stored in the clear,
and the person reads the sealed text in the mini-program.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from auth import clock
from auth.models import WeChatAccount
from auth.outbox import enqueue_message
from hall.models import Appointment, Hall, HallCategory, Slot
from hall.slots import hhmm

APPOINTMENTS_PAGE = "pages/hall/appointments"
INVITATIONS_PAGE = "pages/hall/invitations"


async def openid_of(person_id: int) -> str | None:
    """The person's most recently used mini-program account, which subscribe messages go to."""
    openid = await (
        WeChatAccount.filter(person_id=person_id)
        .order_by("-last_login_at", "-id")
        .first()
        .values_list("openid", flat=True)
    )
    return str(openid) if openid else None


async def slot_words(slot: Slot) -> Mapping[str, str]:
    """Hall name, category name and time of a slot, cut to the lengths WeChat's fields take."""
    hall = await Hall.get(hall_id=slot.hall_id)  # type: ignore[attr-defined]
    category = await HallCategory.get_or_none(hall_id=hall.hall_id, code=slot.category).values_list(
        "name", flat=True
    )
    return {
        "hall": hall.name[:20],
        "category": str(category or slot.category)[:20],
        "time": f"{slot.date.isoformat()} {hhmm(slot.start)}-{hhmm(slot.end)}",
    }


async def announce(
    *,
    person_id: int,
    template_id: str,
    slot: Slot,
    status_phrase: str,
    page: str,
    dedupe_key: str,
    now: datetime,
) -> bool:
    """Write one subscribe message about ``slot`` to the person (inside the caller's
    transaction); False when the person has no mini-program account to send it to."""
    openid = await openid_of(person_id)
    if openid is None:
        return False
    words = await slot_words(slot)
    await enqueue_message(
        channel="subscribe",
        recipient=openid,
        template=template_id,
        payload={
            "data": {
                "thing1": words["hall"],
                "thing2": words["category"],
                "time3": words["time"],
                "phrase4": status_phrase[:5],
            },
            "page": page,
        },
        dedupe_key=dedupe_key,
        now=now,
    )
    return True


async def send_reminders(*, template_id: str, now: datetime, limit: int = 500) -> int:
    """Remind everyone booked for tomorrow who has not been reminded; returns how many were
    claimed. Each appointment is claimed by a conditional UPDATE of ``reminded_at`` in the
    transaction that writes its outbox row, so workers running this at once never write one
    reminder twice, and a crash leaves neither the claim nor the message."""
    at = clock.local(now)
    tomorrow = at.date() + timedelta(days=1)
    candidates = (
        await Appointment.filter(status="booked", reminded_at__isnull=True, slot__date=tomorrow)
        .order_by("id")
        .limit(limit)
        .prefetch_related("slot")
    )
    claimed = 0
    for appointment in candidates:
        async with in_transaction():
            taken = await Appointment.filter(
                id=appointment.id, status="booked", reminded_at__isnull=True
            ).update(reminded_at=at)
            if taken != 1:
                continue
            claimed += 1
            await announce(
                person_id=appointment.person_id,  # type: ignore[attr-defined]
                template_id=template_id,
                slot=appointment.slot,
                status_phrase="明日办理",
                page=f"{APPOINTMENTS_PAGE}?id={appointment.id}",
                dedupe_key=f"appointment:{appointment.id}:reminder",
                now=at,
            )
    return claimed
