"""A taxpayer's appointments and staff invitations (API.md "Hall").

Booking needs real-name verification (403 otherwise). An appointment or invitation that is not
the caller's is 404, whether or not it exists.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json

from hall import appointments, invitations
from hall.appointments import AppointmentRefused, Booked, appointment_view
from miniapp_api.callers import keyring, mp_caller, utcnow
from miniapp_api.jobs import enqueue
from miniapp_api.openapi_docs import LIST, doc
from miniapp_api.routes.hall_slots import refused
from miniapp_api.routes.submissions import TAXPAYER_ID_PATTERN
from miniapp_api.validation import MAX_ID, parse_body

log = logging.getLogger("suban.hall")
bp = Blueprint("appointments", url_prefix="/mp")


class BookingBody(BaseModel):
    slot_id: int = Field(ge=1, le=MAX_ID)
    taxpayer_id: str | None = Field(default=None, pattern=TAXPAYER_ID_PATTERN)
    note: str | None = Field(default=None, max_length=appointments.NOTE_MAX)


def _booked(booked: Booked, request: Request, taxpayer_id: str | None = None) -> HTTPResponse:
    view = appointment_view(booked.appointment, booked.slot, keyring(request), taxpayer_id)
    return json(view, status=201)


async def nudge_outbox(request: Request) -> None:
    """Ask for delivery of what a change just wrote into the outbox; the periodic run delivers
    it anyway if this nudge is lost."""
    try:
        await enqueue(request.app, "deliver_outbox")
    except Exception:
        log.warning("could not ask for outbox delivery now", exc_info=True)


@bp.post("/appointments", name="appointment_book")
@doc(
    "Book a place in a hall slot (real-name required)",
    "hall",
    auth="person",
    body=BookingBody,
    ok=201,
    errors=(409,),
)
async def book(request: Request) -> HTTPResponse:
    person = (await mp_caller(request)).verified_person
    body = parse_body(request, BookingBody)
    try:
        booked = await appointments.book(
            person,
            body.slot_id,
            taxpayer_id=body.taxpayer_id,
            note=body.note,
            keyring=keyring(request),
            now=utcnow(),
        )
    except AppointmentRefused as exc:
        raise refused(exc) from exc
    return _booked(booked, request, body.taxpayer_id)


@bp.get("/appointments", name="appointment_list")
@doc("My appointments with their slots, latest slot first", "hall", auth="person", answer=LIST)
async def list_appointments(request: Request) -> HTTPResponse:
    person = (await mp_caller(request)).verified_person
    ring = keyring(request)
    rows = await appointments.appointments_of(person)
    return json([appointment_view(a, slot, ring, taxpayer) for a, slot, taxpayer in rows])


@bp.delete("/appointments/<appointment_id:int>", name="appointment_cancel")
@doc(
    "Cancel my appointment before its slot starts",
    "hall",
    auth="person",
    ok=204,
    answer=None,
    errors=(409,),
)
async def cancel(request: Request, appointment_id: int) -> HTTPResponse:
    person = (await mp_caller(request)).verified_person
    try:
        await appointments.cancel(person, appointment_id, now=utcnow())
    except AppointmentRefused as exc:
        raise refused(exc) from exc
    return empty()


@bp.get("/invitations", name="invitation_list")
@doc("Staff invitations to me, newest first", "hall", auth="person", answer=LIST)
async def list_invitations(request: Request) -> HTTPResponse:
    person = (await mp_caller(request)).verified_person
    ring = keyring(request)
    rows = await invitations.invitations_of(person)
    return json([invitations.invitation_view(i, slot, ring) for i, slot in rows])


@bp.post("/invitations/<invitation_id:int>/accept", name="invitation_accept")
@doc(
    "Accept a staff invitation: an appointment is made",
    "hall",
    auth="person",
    ok=201,
    errors=(409,),
)
async def accept(request: Request, invitation_id: int) -> HTTPResponse:
    person = (await mp_caller(request)).verified_person
    try:
        booked = await invitations.accept(
            person, invitation_id, keyring=keyring(request), now=utcnow()
        )
    except AppointmentRefused as exc:
        raise refused(exc) from exc
    return _booked(booked, request)


@bp.post("/invitations/<invitation_id:int>/decline", name="invitation_decline")
@doc("Decline a staff invitation: its place goes back", "hall", auth="person", errors=(409,))
async def decline(request: Request, invitation_id: int) -> HTTPResponse:
    person = (await mp_caller(request)).verified_person
    try:
        invitation = await invitations.decline(person, invitation_id, now=utcnow())
    except AppointmentRefused as exc:
        raise refused(exc) from exc
    slot = await invitation.slot
    return json(invitations.invitation_view(invitation, slot, keyring(request)))
