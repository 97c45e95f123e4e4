"""Public progress lookup (文书进度查询) by tracking number and check.

No login: whoever holds the tracking number and the last four characters of the applicant's ID
number (or of the taxpayer id) sees where the filing stands. A wrong check is the same 404 as an
unknown number, so the lookup tells nothing about which numbers exist, and both the asking
address and the number are rate limited against guessing. Timeline notes (a reviewer's reasons)
stay out of the public answer: a company's taxpayer id is public, so this check is weaker than a
login.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json
from sanic_ext import openapi

from auth.ratelimit import Limit
from forms import progress
from forms.tracking import normalize_tracking_no
from miniapp_api.callers import keyring, limiter, too_many
from miniapp_api.errors import NotFound
from miniapp_api.validation import parse_query

bp = Blueprint("progress")

WINDOW = 600
PER_NUMBER = Limit(10, WINDOW)


class ProgressQuery(BaseModel):
    tracking_no: str = Field(min_length=1, max_length=40)
    check: str = Field(min_length=4, max_length=4, pattern=r"^[0-9A-Za-z]{4}$")


def _not_found() -> NotFound:
    return NotFound("未找到匹配的文书，请核对受理编号和校验码")


@bp.get("/progress", name="progress_lookup")
@openapi.definition(summary="Public progress lookup by tracking number and check", tag="forms")
async def lookup(request: Request) -> HTTPResponse:
    query = parse_query(request, ProgressQuery)
    tracking_no = normalize_tracking_no(query.tracking_no)
    per_address = Limit(request.app.ctx.settings.progress_ip_limit, WINDOW)
    counts = [("progress_ip", request.ip or "unknown", per_address)]
    if tracking_no is not None:
        counts.append(("progress_no", tracking_no, PER_NUMBER))
    # The limits and the cached answer in one round trip: the common case touches no SQL.
    verdict, cached = await limiter(request).hit_each(
        counts, also_get=progress.cache_key(tracking_no) if tracking_no else None
    )
    if not verdict.allowed:
        raise too_many(verdict.retry_after, "查询过于频繁，请稍后再试")
    if tracking_no is None:
        raise _not_found()
    entry = await progress.load(request.app.ctx.redis, tracking_no, cached)
    if entry is None or not progress.fits(entry, tracking_no, query.check, keyring(request)):
        raise _not_found()
    return json(entry["view"])
