"""The form catalogue: GET /forms, GET /forms/{code}. Public: the mini-program shows the forms
and builds their pages from the schema before anyone logs in."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from forms.catalogue import catalogue
from miniapp_api.errors import NotFound
from miniapp_api.openapi_docs import LIST, doc

bp = Blueprint("forms", url_prefix="/forms")

# The catalogue changes only with a deployment; a few minutes of caching spares every page view
# a round trip.
CACHE = {"Cache-Control": "public, max-age=300"}


@bp.before_server_start
async def check_catalogue(app: Any) -> None:
    # Read and check every catalogue file now, so a malformed one stops start-up rather than
    # failing the first request that needs it.
    catalogue()


@bp.get("", name="form_list")
@doc("The forms that can be filed", "forms", answer=LIST)
async def list_forms(request: Request) -> HTTPResponse:
    return json([spec.summary() for spec in catalogue().forms], headers=CACHE)


@bp.get("/<code:str>", name="form_schema")
@doc("A form's fields: types, labels, required, options, rules", "forms")
async def form_schema(request: Request, code: str) -> HTTPResponse:
    spec = catalogue().get(code)
    if spec is None:
        raise NotFound("找不到该文书类型")
    return json(spec.schema(), headers=CACHE)
