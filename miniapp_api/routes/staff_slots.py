"""Staff manage slots and invite people (two-way appointments, API.md "Staff").

Every change is on the audit trail; looking at whom a slot's invitations went to is too, since
it shows people's (masked) names.
"""

from __future__ import annotations

from datetime import date, datetime, time

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from auth import audit
from auth.audit import Actor
from auth.documents import DOCUMENT_TYPES
from hall import invitations
from hall.appointments import AppointmentRefused
from hall.slots import SlotRefused, SlotSpec, create_slot, slots_of, staff_slot_view
from miniapp_api.callers import keyring, utcnow
from miniapp_api.errors import ValidationFailed
from miniapp_api.openapi_docs import LIST, doc
from miniapp_api.request_context import request_id_of
from miniapp_api.routes.appointments import nudge_outbox
from miniapp_api.routes.hall_slots import refused
from miniapp_api.sessions_setup import require_staff
from miniapp_api.validation import MAX_ID, parse_body, parse_query

bp = Blueprint("staff_slots", url_prefix="/staff")
PERMISSION = "halls.manage"
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class SlotBody(BaseModel):
    date: date
    start: str = Field(pattern=HHMM)
    end: str = Field(pattern=HHMM)
    category: str = Field(min_length=1, max_length=32)
    capacity: int = Field(ge=1, le=500)
    reserved: int = Field(default=0, ge=0, le=500)
    window: str | None = Field(default=None, min_length=1, max_length=16)


class DateQuery(BaseModel):
    date: date
    category: str | None = Field(default=None, min_length=1, max_length=32)


class InvitationBody(BaseModel):
    slot_id: int = Field(ge=1, le=MAX_ID)
    id_type: str = "resident_id"
    id_number: str = Field(min_length=6, max_length=32)
    message: str | None = Field(default=None, max_length=invitations.MESSAGE_MAX)
    expires_at: datetime | None = None


async def _staff(request: Request) -> tuple[Actor, int]:
    _session, user = await require_staff(request, PERMISSION)
    return Actor("staff", user.id, request_id_of(request)), user.id


def _time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@bp.post("/halls/<hall_id:str>/slots", name="staff_slot_create")
@doc(
    "Create a bookable slot of a hall", "staff", auth="staff", body=SlotBody, ok=201, errors=(409,)
)
async def create(request: Request, hall_id: str) -> HTTPResponse:
    actor, staff_id = await _staff(request)
    body = parse_body(request, SlotBody)
    spec = SlotSpec(
        day=body.date,
        start=_time(body.start),
        end=_time(body.end),
        category=body.category,
        capacity=body.capacity,
        reserved=body.reserved,
        window=body.window,
    )
    try:
        slot = await create_slot(hall_id, spec, created_by=staff_id, now=utcnow())
    except SlotRefused as exc:
        raise refused(exc) from exc
    await audit.record(
        "slot.create",
        actor,
        target=f"hall:{hall_id}:slot:{slot.id}",
        details={"capacity": slot.capacity, "reserved": slot.reserved},
    )
    return json(staff_slot_view(slot), status=201)


@bp.get("/halls/<hall_id:str>/slots", name="staff_slot_list")
@doc(
    "A hall's slots on a date, with all their counters",
    "staff",
    auth="staff",
    query=DateQuery,
    answer=LIST,
)
async def list_slots(request: Request, hall_id: str) -> HTTPResponse:
    await _staff(request)
    query = parse_query(request, DateQuery)
    try:
        slots = await slots_of(hall_id, query.date, query.category)
    except SlotRefused as exc:
        raise refused(exc) from exc
    return json([staff_slot_view(s) for s in slots])


@bp.post("/invitations", name="staff_invite")
@doc(
    "Invite a real-name verified person into a slot's reserved places",
    "staff",
    auth="staff",
    body=InvitationBody,
    ok=201,
    errors=(409,),
)
async def invite(request: Request) -> HTTPResponse:
    actor, staff_id = await _staff(request)
    body = parse_body(request, InvitationBody)
    if body.id_type not in DOCUMENT_TYPES:
        raise ValidationFailed({"id_type": "不是允许的取值"})
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise ValidationFailed({"expires_at": "时间应带时区，如 2026-12-01T09:00:00+08:00"})
    ring = keyring(request)
    now = utcnow()
    try:
        person = await invitations.verified_person(body.id_type, body.id_number, ring, now)
        invitation = await invitations.invite(
            slot_id=body.slot_id,
            person=person,
            message=body.message,
            expires_at=body.expires_at,
            staff_id=staff_id,
            keyring=ring,
            template_id=request.app.ctx.settings.subscribe_template_invitation,
            now=now,
        )
    except AppointmentRefused as exc:
        raise refused(exc) from exc
    await audit.record(
        "invitation.create",
        actor,
        target=f"slot:{body.slot_id}:invitation:{invitation.id}",
        details={"person": person.id},
    )
    await nudge_outbox(request)
    slot = await invitation.slot
    return json(invitations.staff_invitation_view(invitation, slot, person, ring), status=201)


@bp.get("/slots/<slot_id:int>/invitations", name="staff_slot_invitations")
@doc("The invitations of a slot and their answers", "staff", auth="staff", answer=LIST)
async def slot_invitations(request: Request, slot_id: int) -> HTTPResponse:
    actor, _staff_id = await _staff(request)
    ring = keyring(request)
    try:
        slot, rows = await invitations.invitations_of_slot(slot_id)
    except AppointmentRefused as exc:
        raise refused(exc) from exc
    await audit.record("invitation.list", actor, target=f"slot:{slot_id}")
    return json(
        {
            "slot": staff_slot_view(slot),
            "invitations": [invitations.staff_invitation_view(i, slot, p, ring) for i, p in rows],
        }
    )
