"""A hall's bookable slots (public): what a taxpayer can still book, by date and category."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from hall.appointments import AppointmentRefused
from hall.slots import SlotRefused, slot_view, slots_of
from miniapp_api.errors import ApiError, ValidationFailed
from miniapp_api.openapi_docs import LIST, doc
from miniapp_api.validation import parse_query

bp = Blueprint("hall_slots", url_prefix="/halls")


class SlotsQuery(BaseModel):
    date: date
    category: str | None = Field(default=None, min_length=1, max_length=32)


def refused(exc: SlotRefused | AppointmentRefused) -> ApiError:
    """A refusal of the hall's slot and appointment functions, in the contract's shape."""
    fields = getattr(exc, "fields", None)
    if exc.status == 422:
        return ValidationFailed(fields or {}, exc.message)
    return ApiError(exc.status, exc.code, exc.message)


@bp.get("/<hall_id:str>/slots", name="hall_slots")
@doc(
    "A hall's slots on a date (of one category), with the places left to book",
    "hall",
    query=SlotsQuery,
    answer=LIST,
)
async def list_slots(request: Request, hall_id: str) -> HTTPResponse:
    query = parse_query(request, SlotsQuery)
    try:
        slots = await slots_of(hall_id, query.date, query.category)
    except SlotRefused as exc:
        raise refused(exc) from exc
    keys = ("slot_id", "date", "start", "end", "category", "window", "capacity", "remaining")
    return json([{k: v for k, v in slot_view(s).items() if k in keys} for s in slots])
