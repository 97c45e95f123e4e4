"""Drafts: save a form half-filled and resume it later, with a version against lost updates.

A new draft starts from what the registry and the person already say (prefill). A draft is not
validated as a submission is (it may be incomplete); its answers list the problems found so far.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json

from auth.models import Person, Taxpayer
from auth.pii import Keyring
from forms import drafts
from forms.catalogue import catalogue
from forms.models import Draft
from forms.submissions import FilingRefused, filer_for
from forms.validation import (
    FilingContext,
    FormInvalid,
    PersonFacts,
    TaxpayerFacts,
    prefill,
    validate,
)
from miniapp_api import filing
from miniapp_api.callers import keyring, mp_caller, utcnow
from miniapp_api.errors import ApiError, NotFound, ValidationFailed
from miniapp_api.openapi_docs import LIST, doc
from miniapp_api.routes.submissions import TAXPAYER_ID_PATTERN
from miniapp_api.validation import MAX_INT, parse_body

bp = Blueprint("mp_drafts", url_prefix="/mp")


class DraftCreate(BaseModel):
    form_code: str = Field(min_length=1, max_length=48)
    taxpayer_id: str | None = Field(default=None, pattern=TAXPAYER_ID_PATTERN)
    data: dict[str, Any] | None = None


class DraftSave(BaseModel):
    data: dict[str, Any]
    version: int = Field(ge=1, le=MAX_INT)


def person_facts(person: Person, ring: Keyring) -> PersonFacts:
    def opened(sealed: str | None, column: str) -> str | None:
        if not sealed:
            return None
        return ring.open(sealed, table="person", column=column, row_id=person.id)

    return PersonFacts(
        name=opened(person.name_sealed, "name"), phone=opened(person.phone_sealed, "phone")
    )


def taxpayer_facts(taxpayer: Taxpayer | None) -> TaxpayerFacts | None:
    if taxpayer is None:
        return None
    return TaxpayerFacts(name=taxpayer.name, taxpayer_id=taxpayer.taxpayer_id, kind=taxpayer.kind)


def view(draft: Draft, ring: Keyring, today: Any) -> dict[str, Any]:
    taxpayer: Taxpayer | None = draft.taxpayer
    data = drafts.draft_data(ring, draft)
    problems: dict[str, str] = {}
    spec = catalogue().get(draft.form_code)
    if spec is not None:
        seller = taxpayer.kind if taxpayer is not None else "natural_person"
        try:
            validate(spec, data, context=FilingContext(seller_kind=seller, today=today))
        except FormInvalid as exc:
            problems = exc.fields
    return {
        "id": draft.id,
        "form_code": draft.form_code,
        "form_title": filing.form_title(draft.form_code),
        "form_version": draft.form_version,
        "taxpayer_id": taxpayer.taxpayer_id if taxpayer else None,
        "data": data,
        "version": draft.version,
        "problems": problems,
        "updated_at": draft.updated_at.isoformat(),
    }


@bp.post("/drafts", name="draft_create")
@doc(
    "Start a draft, prefilled from the registry and the person",
    "forms",
    auth="person",
    body=DraftCreate,
    ok=201,
)
async def create(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    person = caller.verified_person
    body = parse_body(request, DraftCreate)
    spec = catalogue().get(body.form_code)
    if spec is None:
        raise ValidationFailed({"form_code": "没有该文书类型"})
    now = utcnow()
    try:
        filer = await filer_for(person, spec, body.taxpayer_id, now)
    except FilingRefused as exc:
        raise filing.refused(exc) from exc
    ring = keyring(request)
    data = prefill(spec, taxpayer=taxpayer_facts(filer.taxpayer), person=person_facts(person, ring))
    data.update(body.data or {})
    try:
        draft = await drafts.create_draft(person, spec, filer.taxpayer, data, keyring=ring)
    except drafts.TooManyDrafts as exc:
        raise ApiError(409, "TOO_MANY_DRAFTS", "草稿过多，请先提交或删除部分草稿") from exc
    draft = await drafts.get_draft(person, draft.id)
    return json(view(draft, ring, now.date()), status=201)


@bp.get("/drafts", name="draft_list")
@doc("My drafts", "forms", auth="person", answer=LIST)
async def list_drafts(request: Request) -> HTTPResponse:
    caller = await mp_caller(request)
    ring, today = keyring(request), utcnow().date()
    return json([view(d, ring, today) for d in await drafts.drafts_of(caller.verified_person)])


@bp.get("/drafts/<draft_id:int>", name="draft_get")
@doc("Resume a draft", "forms", auth="person")
async def get_one(request: Request, draft_id: int) -> HTTPResponse:
    caller = await mp_caller(request)
    try:
        draft = await drafts.get_draft(caller.verified_person, draft_id)
    except drafts.DraftMissing as exc:
        raise NotFound("找不到该草稿") from exc
    return json(view(draft, keyring(request), utcnow().date()))


@bp.put("/drafts/<draft_id:int>", name="draft_save")
@doc("Save a draft; a stale version is 409", "forms", auth="person", body=DraftSave, errors=(409,))
async def save(request: Request, draft_id: int) -> HTTPResponse:
    caller = await mp_caller(request)
    body = parse_body(request, DraftSave)
    ring = keyring(request)
    try:
        draft = await drafts.save_draft(
            caller.verified_person, draft_id, body.data, expected_version=body.version, keyring=ring
        )
    except drafts.DraftMissing as exc:
        raise NotFound("找不到该草稿") from exc
    except drafts.StaleDraft as exc:
        raise ApiError(
            409,
            "STALE_VERSION",
            "草稿已在别处更新，请刷新后再保存",
            details={"version": exc.current.version},
        ) from exc
    return json(view(draft, ring, utcnow().date()))


@bp.delete("/drafts/<draft_id:int>", name="draft_delete")
@doc("Delete a draft", "forms", auth="person", ok=204, answer=None)
async def delete(request: Request, draft_id: int) -> HTTPResponse:
    caller = await mp_caller(request)
    try:
        await drafts.delete_draft(caller.verified_person, draft_id)
    except drafts.DraftMissing as exc:
        raise NotFound("找不到该草稿") from exc
    return empty()
