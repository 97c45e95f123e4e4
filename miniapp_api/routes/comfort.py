"""The published comfort index (办税舒适度指数) of a hall: as JSON and as an SVG chart. Public,
no login: the mini-program and the hall screens show it."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json, raw

from auth import clock
from hall.comfort import get_publication, month_text, parse_month, publication_view
from hall.comfort_svg import render_comfort_svg
from hall.models import ComfortPublication, Hall
from miniapp_api.errors import NotFound, ValidationFailed
from miniapp_api.openapi_docs import TEXT, doc
from miniapp_api.validation import parse_query

bp = Blueprint("comfort", url_prefix="/halls")
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
# A publication changes at most when staff or the month-end job publish again: caches may keep
# it a while, and revalidate with the ETag after that.
CACHE_CONTROL = "public, max-age=300"


class MonthQuery(BaseModel):
    month: str | None = Field(default=None, pattern=MONTH_PATTERN)


def _month(request: Request) -> str:
    """The ``month`` asked for (422 when malformed), this month by default."""
    query = parse_query(request, MonthQuery)
    if query.month is None:
        today = clock.now()
        return month_text(today.year, today.month)
    try:
        parse_month(query.month)
    except ValueError as exc:
        raise ValidationFailed({"month": "月份格式应为 YYYY-MM"}) from exc
    return query.month


async def _published(hall_id: str, month: str) -> ComfortPublication:
    publication = await get_publication(hall_id, month)
    if publication is None:
        raise NotFound("该月的办税舒适度指数尚未发布")
    return publication


def _etag(publication: ComfortPublication, kind: str) -> str:
    hall_id = publication.hall_id  # type: ignore[attr-defined]
    stamp = int(publication.published_at.timestamp())
    return f'"{kind}-{hall_id}-{publication.month}-{stamp}"'


def _not_modified(request: Request, etag: str) -> HTTPResponse | None:
    if request.headers.get("if-none-match") == etag:
        return HTTPResponse(status=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
    return None


@bp.get("/<hall_id:str>/comfort", name="comfort")
@doc(
    "The hall's published comfort index of a month: expected arrivals per day and "
    "slot with levels 较少/适中/较多, and the monthly trend; 404 if not published",
    "hall",
    query=MonthQuery,
    ok=(200, 304),
)
async def comfort(request: Request, hall_id: str) -> HTTPResponse:
    month = _month(request)
    publication = await _published(hall_id, month)
    etag = _etag(publication, "json")
    cached = _not_modified(request, etag)
    if cached is not None:
        return cached
    return json(
        publication_view(publication), headers={"ETag": etag, "Cache-Control": CACHE_CONTROL}
    )


@bp.get("/<hall_id:str>/comfort.svg", name="comfort_svg")
@doc(
    "The comfort index of a month as an SVG chart (the curve per day, coloured by level)",
    "hall",
    query=MonthQuery,
    ok=(200, 304),
    answer=TEXT,
    media="image/svg+xml",
)
async def comfort_svg(request: Request, hall_id: str) -> HTTPResponse:
    month = _month(request)
    publication = await _published(hall_id, month)
    etag = _etag(publication, "svg")
    cached = _not_modified(request, etag)
    if cached is not None:
        return cached
    hall = await Hall.get_or_none(hall_id=hall_id)
    name = hall.name if hall is not None else hall_id
    year, number = parse_month(month)
    svg = render_comfort_svg(
        publication_view(publication), title=f"{name} {year}年{number}月 办税舒适度指数"
    )
    return raw(
        svg.encode(),
        content_type="image/svg+xml; charset=utf-8",
        headers={"ETag": etag, "Cache-Control": CACHE_CONTROL},
    )
