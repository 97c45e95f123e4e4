"""Public hall information (no login needed)."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json
from sanic_ext import openapi

from hall.halls import list_halls

bp = Blueprint("halls", url_prefix="/halls")


@bp.get("", name="list")
@openapi.definition(
    summary="The tax halls, their addresses, opening hours and categories", tag="hall"
)
async def halls_index(request: Request) -> HTTPResponse:
    return json([h.as_dict() for h in await list_halls()])
