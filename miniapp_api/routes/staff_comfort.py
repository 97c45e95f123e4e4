"""Staff publish a hall's comfort index for a month (API.md "Staff"); on the audit trail."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from auth import audit
from auth.audit import Actor
from hall.comfort import NoHistory, parse_month, publish_comfort_index
from miniapp_api.callers import utcnow
from miniapp_api.errors import ApiError, NotFound, ValidationFailed
from miniapp_api.openapi_docs import doc
from miniapp_api.request_context import request_id_of
from miniapp_api.routes.comfort import MONTH_PATTERN
from miniapp_api.sessions_setup import require_staff
from miniapp_api.validation import parse_body

bp = Blueprint("staff_comfort", url_prefix="/staff/halls")
PERMISSION = "halls.manage"


class PublishBody(BaseModel):
    month: str = Field(pattern=MONTH_PATTERN)


@bp.post("/<hall_id:str>/comfort/publish", name="publish")
@doc(
    "Fit on the hall's queue history and publish the comfort index of a month "
    "(replaces an earlier publication of that month)",
    "staff",
    auth="staff",
    body=PublishBody,
    errors=(409,),
)
async def publish(request: Request, hall_id: str) -> HTTPResponse:
    _session, user = await require_staff(request, PERMISSION)
    body = parse_body(request, PublishBody)
    try:
        year, month = parse_month(body.month)
    except ValueError as exc:
        raise ValidationFailed({"month": "月份格式应为 YYYY-MM"}) from exc
    actor = Actor("staff", user.id, request_id_of(request))
    try:
        publication = await publish_comfort_index(
            hall_id,
            year,
            month,
            now=utcnow(),
            published_by=f"staff:{user.id}",
            quantiles=request.app.ctx.settings.comfort_level_quantiles,
        )
    except NoHistory as exc:
        raise ApiError(409, "NO_HISTORY", "该办税服务厅尚无排队历史数据，无法测算") from exc
    except LookupError as exc:
        raise NotFound("找不到该办税服务厅") from exc
    await audit.record(
        "hall.comfort.publish", actor, target=f"hall:{hall_id}", details={"month": body.month}
    )
    publication.pop("model_info", None)
    publication.pop("published_by", None)
    return json(publication)
