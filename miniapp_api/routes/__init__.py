"""HTTP routes, grouped by audience the way API.md groups them; all under ``/api/v1``."""

from __future__ import annotations

from sanic import Blueprint, Request

from hall.models import Hall
from miniapp_api.errors import NotFound
from miniapp_api.routes import (
    appointments,
    attachments,
    comfort,
    devices,
    drafts,
    forms,
    grants,
    guides,
    hall_slots,
    halls,
    mp,
    privacy,
    progress,
    quote,
    staff,
    staff_audit,
    staff_comfort,
    staff_grants,
    staff_review,
    staff_slots,
    submissions,
)
from miniapp_api.validation import MAX_ID

# Every id in a path is a BIGINT column; Sanic's ``int`` takes any digits, and a larger one
# reached the database driver as an OverflowError (a 500, found by tests/fuzz). No row has it.
HALL_ID_MAX_LENGTH: int = Hall._meta.fields_map["hall_id"].max_length  # type: ignore[attr-defined]


async def ids_in_range(request: Request) -> None:
    """404 for a path id no row can have, before it reaches the database (where a too long
    ``hall_id`` failed the ORM's field validation, again a 500)."""
    for name, value in request.match_info.items():
        if isinstance(value, int) and not -MAX_ID <= value <= MAX_ID:
            raise NotFound()
        if name == "hall_id" and len(str(value)) > HALL_ID_MAX_LENGTH:
            raise NotFound()


BLUEPRINTS = (
    halls.bp,
    mp.bp,
    grants.bp,
    forms.bp,
    quote.bp,
    drafts.bp,
    submissions.bp,
    attachments.bp,
    progress.bp,
    staff.bp,
    staff_grants.bp,
    staff_review.bp,
    devices.bp,
    comfort.bp,
    staff_comfort.bp,
    hall_slots.bp,
    appointments.bp,
    staff_slots.bp,
    guides.bp,
    staff_audit.bp,
    privacy.bp,
)
# Once, at import: the blueprints are shared by every app made in this process, and middleware
# added to a group at each api_group() call piled up on them (and re-registered their routes).
for _bp in BLUEPRINTS:
    _bp.middleware(ids_in_range, "request")


def api_group() -> Blueprint:
    """One blueprint per audience; a group keeps the URL tree the same shape as this folder."""
    return Blueprint.group(*BLUEPRINTS, url_prefix="/api/v1")  # type: ignore[return-value]
