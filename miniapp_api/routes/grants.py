"""Grants of roles on a taxpayer (API.md: /mp/taxpayers/{taxpayer_id}/grants), and the grantee's
side: the grants naming me, confirm, decline.

Acting without the permission is 403; a grant that is not yours to see is 404, whether or not it
exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json

from auth import grants
from auth.authorizations import NotPermitted, TaxpayerUnknown, require_permission
from auth.masking import mask_name
from auth.models import Grant, Person, Taxpayer
from auth.pii import Keyring
from auth.roles import role_book
from miniapp_api.callers import keyring, mp_caller, utcnow
from miniapp_api.errors import ApiError, NotFound, ValidationFailed
from miniapp_api.openapi_docs import LIST, doc
from miniapp_api.validation import parse_body

bp = Blueprint("mp_grants", url_prefix="/mp")

TAXPAYER_ID = r"<taxpayer_id:[0-9A-Z]{15,20}>"


class GrantBody(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    id_type: Literal["resident_id", "hmt_residence_permit", "passport"] = "resident_id"
    id_number: str = Field(min_length=1, max_length=32)
    role: str = Field(min_length=1, max_length=24)
    valid_from: AwareDatetime | None = None
    expires_at: AwareDatetime


def grant_view(grant: Grant, taxpayer: Taxpayer, ring: Keyring, now: datetime) -> dict[str, object]:
    role = role_book().role(grant.role)
    return {
        "grant_id": grant.id,
        "taxpayer_id": taxpayer.taxpayer_id,
        "taxpayer_name": taxpayer.name,
        "role": grant.role,
        "role_label": role.label,
        "permissions": sorted(role.permissions),
        "status": grants.status_of(grant, now),
        "grantee": {"name_masked": mask_name(grants.grantee_name(grant, ring))},
        "valid_from": grant.valid_from.isoformat(),
        "expires_at": grant.expires_at.isoformat(),
        "confirmed_at": grant.confirmed_at.isoformat() if grant.confirmed_at else None,
        "revoked_at": grant.revoked_at.isoformat() if grant.revoked_at else None,
    }


def refused(exc: grants.GrantRefused) -> ApiError:
    if isinstance(exc, grants.InvalidGrant):
        return ValidationFailed({exc.field: exc.message})
    if isinstance(exc, grants.GrantNotFound):
        return NotFound(exc.message)
    return ApiError(409, exc.code, exc.message)


async def managed_taxpayer(person: Person, taxpayer_id: str) -> Taxpayer:
    try:
        return await require_permission(person, taxpayer_id, "grants.manage", utcnow())
    except TaxpayerUnknown as exc:
        raise NotFound("找不到该纳税人") from exc
    except NotPermitted as exc:
        raise ApiError(403, "FORBIDDEN", "只有法定代表人或财务负责人可以管理授权") from exc


@bp.post(f"/taxpayers/{TAXPAYER_ID}/grants", name="grant_create")
@doc(
    "Grant a role on a taxpayer (legal rep or finance head)",
    "grants",
    auth="person",
    body=GrantBody,
    ok=201,
    errors=(409,),
)
async def create(request: Request, taxpayer_id: str) -> HTTPResponse:
    caller = await mp_caller(request)
    taxpayer = await managed_taxpayer(caller.verified_person, taxpayer_id)
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
            by=caller.actor,
            keyring=keyring(request),
            now=now,
        )
    except grants.GrantRefused as exc:
        raise refused(exc) from exc
    return json(grant_view(grant, taxpayer, keyring(request), now), status=201)


@bp.get(f"/taxpayers/{TAXPAYER_ID}/grants", name="grant_list")
@doc("The grants on a taxpayer (legal rep or finance head)", "grants", auth="person", answer=LIST)
async def list_for_taxpayer(request: Request, taxpayer_id: str) -> HTTPResponse:
    caller = await mp_caller(request)
    taxpayer = await managed_taxpayer(caller.verified_person, taxpayer_id)
    now, ring = utcnow(), keyring(request)
    rows = await grants.grants_of_taxpayer(taxpayer)
    return json([grant_view(g, taxpayer, ring, now) for g in rows])


@bp.delete(f"/taxpayers/{TAXPAYER_ID}/grants/<grant_id:int>", name="grant_revoke")
@doc(
    "Revoke a grant (legal rep or finance head)",
    "grants",
    auth="person",
    ok=204,
    answer=None,
    errors=(409,),
)
async def revoke(request: Request, taxpayer_id: str, grant_id: int) -> HTTPResponse:
    caller = await mp_caller(request)
    taxpayer = await managed_taxpayer(caller.verified_person, taxpayer_id)
    try:
        await grants.revoke_grant(taxpayer, grant_id, by=caller.actor, now=utcnow())
    except grants.GrantRefused as exc:
        raise refused(exc) from exc
    return empty()


@bp.get("/grants", name="grants_mine")
@doc("Grants naming me (to confirm or decline)", "grants", auth="person", answer=LIST)
async def mine(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    person = caller.verified_person
    now, ring = utcnow(), keyring(request)
    rows = await grants.grants_naming(person, ring)
    return json([grant_view(g, g.taxpayer, ring, now) for g in rows])


async def _answer(request: Request, grant_id: int, action: str) -> HTTPResponse:
    caller = await mp_caller(request)
    person = caller.verified_person
    now, ring = utcnow(), keyring(request)
    change = grants.confirm_grant if action == "confirm" else grants.decline_grant
    try:
        grant = await change(grant_id, person, by=caller.actor, keyring=ring, now=now)
    except grants.GrantRefused as exc:
        raise refused(exc) from exc
    return json(grant_view(grant, grant.taxpayer, ring, now))


@bp.post("/grants/<grant_id:int>/confirm", name="grant_confirm")
@doc("Accept a grant naming me", "grants", auth="person", errors=(409,))
async def confirm(request: Request, grant_id: int) -> HTTPResponse:
    return await _answer(request, grant_id, "confirm")


@bp.post("/grants/<grant_id:int>/decline", name="grant_decline")
@doc("Decline a grant naming me", "grants", auth="person", errors=(409,))
async def decline(request: Request, grant_id: int) -> HTTPResponse:
    return await _answer(request, grant_id, "decline")
