"""Events of the queue-calling system (取号, 叫号, 办结, 过号), stored once each and folded into
the queue history (one QueueTicket row per ticket)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from auth import clock
from hall import appointments
from hall.models import HallCategory, QueueEvent, QueueTicket

log = logging.getLogger("suban.hall.queue")

EventKind = Literal["taken", "called", "finished", "no_show"]
MAX_EVENTS_PER_REQUEST = 500
# How far ahead of our clock a device's clock may run.
MAX_FUTURE_SKEW = timedelta(seconds=300)
OUTCOME_OF: dict[str, str] = {
    "taken": "waiting",
    "called": "serving",
    "finished": "done",
    "no_show": "no_show",
}
# Events can arrive out of order (a batch retried after a later one): a ticket's outcome only
# moves forward.
_RANK = {"waiting": 0, "serving": 1, "done": 2, "no_show": 2, "returned": 2}

TicketEventHook = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class QueueEventIn:
    ticket_no: str
    category: str
    event: EventKind
    at: datetime  # aware
    window: str | None = None
    appointment_id: int | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int


async def hall_category_codes(hall_id: str) -> set[str]:
    codes = await HallCategory.filter(hall_id=hall_id).values_list("code", flat=True)
    return {str(c) for c in codes}


def check_events(
    events: Sequence[QueueEventIn], categories: set[str], now: datetime
) -> dict[str, str]:
    """Field errors (``events.3.category``) of events that are well-formed but wrong for this
    hall or this time; empty when all are fine."""
    fields: dict[str, str] = {}
    for i, ev in enumerate(events):
        if ev.category not in categories:
            fields[f"events.{i}.category"] = "不是本厅的业务类别"
        if ev.at > now + MAX_FUTURE_SKEW:
            fields[f"events.{i}.at"] = "时间晚于当前时间"
        if ev.event == "called" and not ev.window:
            fields[f"events.{i}.window"] = "叫号事件须注明窗口"
    return fields


async def _store_one(device_id: str, hall_id: str, ev: QueueEventIn) -> None:
    at = clock.local(ev.at)
    service_date = at.date()
    async with in_transaction():
        await QueueEvent.create(
            device_id=device_id,
            service_date=service_date,
            ticket_no=ev.ticket_no,
            category=ev.category,
            event=ev.event,
            window=ev.window,
            at=at,
        )
        ticket = (
            await QueueTicket.filter(
                hall_id=hall_id, service_date=service_date, ticket_no=ev.ticket_no
            )
            .select_for_update()
            .first()
        )
        if ticket is None:
            # The taken event may come later (or never): until then the first event's time
            # stands in for when the ticket was taken.
            ticket = QueueTicket(
                hall_id=hall_id,
                service_date=service_date,
                ticket_no=ev.ticket_no,
                category=ev.category,
                taken_at=at,
            )
        if ev.event == "taken":
            ticket.taken_at = at
            ticket.category = ev.category
            if ev.appointment_id is not None:
                ticket.booked = True
        elif ev.event == "called":
            ticket.called_at = at
            ticket.window = ev.window
        else:
            ticket.finished_at = at
        new_outcome = OUTCOME_OF[ev.event]
        if _RANK[new_outcome] >= _RANK.get(ticket.outcome, 0):
            ticket.outcome = new_outcome
        await ticket.save()


async def ingest_queue_events(
    device_id: str,
    hall_id: str,
    events: Sequence[QueueEventIn],
    *,
    on_event: TicketEventHook = appointments.apply_ticket_event,
) -> IngestResult:
    """Store each event once per (device, service date, ticket, event); a repeat counts as a
    duplicate, not an error. Each new event updates the ticket's history row and is handed to
    ``on_event`` (appointments: check-in, done, no-show) after its transaction commits."""
    accepted = duplicates = 0
    for ev in events:
        service_date = clock.local(ev.at).date()
        stored = False
        for attempt in range(2):
            try:
                await _store_one(device_id, hall_id, ev)
                stored = True
                break
            except IntegrityError:
                # Either this event is already stored (a repeat), or another request created
                # the same ticket row at the same moment: then one more try finds that row.
                if await QueueEvent.exists(
                    device_id=device_id,
                    service_date=service_date,
                    ticket_no=ev.ticket_no,
                    event=ev.event,
                ):
                    break
                if attempt == 1:
                    raise
        if not stored:
            duplicates += 1
            continue
        accepted += 1
        try:
            await on_event(
                hall_id=hall_id,
                appointment_id=ev.appointment_id,
                ticket_no=ev.ticket_no,
                event=ev.event,
                at=clock.local(ev.at),
            )
        except Exception:
            # The event is stored: failing the request now would make the device send it again,
            # which then counts as a duplicate and is never applied. Log it for an operator.
            log.exception("appointment update for ticket %s (%s) failed", ev.ticket_no, ev.event)
    return IngestResult(accepted=accepted, duplicates=duplicates)
