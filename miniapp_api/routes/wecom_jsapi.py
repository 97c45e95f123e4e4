"""JS-SDK signatures for our pages opened inside WeCom (``wx.config``, ``wx.agentConfig``).

Public: a page calls it before anyone has logged in. Each call may cost a ticket fetch and lets
the caller ask for a refresh, so the asking address is rate limited like other public routes.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from auth.ratelimit import Limit
from miniapp_api.callers import limiter, too_many
from miniapp_api.errors import ValidationFailed
from miniapp_api.openapi_docs import doc
from miniapp_api.request_context import client_address
from miniapp_api.validation import parse_query
from wecom import jsapi

bp = Blueprint("wecom_jsapi")

# A page asks once per load (and once more on a failed signature); carriers put many people
# behind one address, so the limit is generous and only stops a flood.
PER_ADDRESS = Limit(300, 600)


class JsapiQuery(BaseModel):
    # The length is checked by jsapi.page_url, so a long URL gets the same answer as any other
    # URL we do not sign.
    url: str = Field(min_length=1, max_length=8192)
    # Set by a page whose wx.config failed with "invalid signature".
    refresh: bool = False


@bp.get("/api/v1/wecom/jsapi-config", name="wecom_jsapi_config")
@doc("JS-SDK config and agentConfig for a page of ours", "wecom", query=JsapiQuery)
async def jsapi_config(request: Request) -> HTTPResponse:
    query = parse_query(request, JsapiQuery)
    verdict = await limiter(request).hit("wecom_jsapi_ip", [client_address(request)], PER_ADDRESS)
    if not verdict.allowed:
        raise too_many(verdict.retry_after, "请求过于频繁，请稍后再试")
    try:
        url = jsapi.page_url(query.url, request.app.ctx.settings.public_link_base)
    except jsapi.UnsignableUrl as exc:
        raise ValidationFailed({"url": "只能为本站页面签名"}, "页面地址无效") from exc
    wecom = request.app.ctx.wechat.wecom
    if query.refresh:
        await jsapi.refresh_tickets(request.app.ctx.redis, wecom)
    signed = await jsapi.jsapi_config(wecom, url, now=time.time())
    # Every answer carries a fresh nonce and timestamp; a cached one would be stale.
    return json(signed.as_json(), headers={"Cache-Control": "no-store"})
