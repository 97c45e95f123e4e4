"""Staff granting and revoking roles on a taxpayer's request (at a hall counter, say): the same
rules as the legal representative's own grants, with the staff member as the audited actor."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json

from auth import grants
from auth.audit import Actor
from auth.models import Taxpayer
from miniapp_api.callers import keyring, utcnow
from miniapp_api.errors import NotFound
from miniapp_api.openapi_docs import LIST, doc
from miniapp_api.request_context import request_id_of
from miniapp_api.routes.grants import TAXPAYER_ID, GrantBody, grant_view, refused
from miniapp_api.sessions_setup import require_staff
from miniapp_api.validation import parse_body

bp = Blueprint("staff_grants", url_prefix="/staff")


async def _staff(request: Request) -> Actor:
    _session, staff = await require_staff(request, "grants.manage")
    return Actor("staff", staff.id, request_id_of(request))


async def _taxpayer(taxpayer_id: str) -> Taxpayer:
    taxpayer = await Taxpayer.get_or_none(taxpayer_id=taxpayer_id)
    if taxpayer is None:
        raise NotFound("找不到该纳税人")
    return taxpayer


@bp.post(f"/taxpayers/{TAXPAYER_ID}/grants", name="staff_grant_create")
@doc(
    "Grant a role at the taxpayer's request (staff)",
    "staff",
    auth="staff",
    body=GrantBody,
    ok=201,
    errors=(409,),
)
async def create(request: Request, taxpayer_id: str) -> HTTPResponse:
    actor = await _staff(request)
    taxpayer = await _taxpayer(taxpayer_id)
    body = parse_body(request, GrantBody)
    now = utcnow()
    try:
        grant = await grants.create_grant(
            taxpayer,
            name=body.name,
            id_type=body.id_type,
            id_number=body.id_number,
            role=body.role,
            valid_from=body.valid_from,
            expires_at=body.expires_at,
            by=actor,
            keyring=keyring(request),
            now=now,
        )
    except grants.GrantRefused as exc:
        raise refused(exc) from exc
    return json(grant_view(grant, taxpayer, keyring(request), now), status=201)


@bp.get(f"/taxpayers/{TAXPAYER_ID}/grants", name="staff_grant_list")
@doc("The grants on a taxpayer (staff)", "staff", auth="staff", answer=LIST)
async def list_grants(request: Request, taxpayer_id: str) -> HTTPResponse:
    await _staff(request)
    taxpayer = await _taxpayer(taxpayer_id)
    now, ring = utcnow(), keyring(request)
    return json(
        [grant_view(g, taxpayer, ring, now) for g in await grants.grants_of_taxpayer(taxpayer)]
    )


@bp.delete(f"/taxpayers/{TAXPAYER_ID}/grants/<grant_id:int>", name="staff_grant_revoke")
@doc(
    "Revoke a grant at the taxpayer's request (staff)",
    "staff",
    auth="staff",
    ok=204,
    answer=None,
    errors=(409,),
)
async def revoke(request: Request, taxpayer_id: str, grant_id: int) -> HTTPResponse:
    actor = await _staff(request)
    taxpayer = await _taxpayer(taxpayer_id)
    try:
        await grants.revoke_grant(taxpayer, grant_id, by=actor, now=utcnow())
    except grants.GrantRefused as exc:
        raise refused(exc) from exc
    return empty()
