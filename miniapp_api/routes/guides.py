"""Business guides (二维码一次性告知): search, details, QR codes. Public: a guide is read before
anyone logs in, often by scanning its code on a poster in the hall."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json, raw

from auth import clock
from forms.catalogue import catalogue
from hall.guides import (
    CODE,
    GuideCache,
    GuideRecord,
    GuideSet,
    QrMaker,
    draw_qr_png,
    guide_qr_png,
    packaged_guides,
    page_link,
    qr_etag,
)
from miniapp_api.errors import NotFound
from miniapp_api.openapi_docs import BINARY, LIST, doc
from miniapp_api.validation import parse_query

bp = Blueprint("guides", url_prefix="/guides")

# Guides change with a demo load or a deployment; a few minutes of caching spares every view a
# round trip. A code image of one guide version never changes: its URL carries no version, so it
# is revalidated by ETag rather than cached for good.
CACHE = {"Cache-Control": "public, max-age=300"}
QR_WIDTH = 430


class SearchQuery(BaseModel):
    q: str | None = Field(default=None, max_length=50)


@bp.before_server_start
async def prepare_guides(app: Any) -> None:
    # A malformed guide file stops start-up here rather than a later `suban demo`.
    packaged_guides()
    app.ctx.guide_cache = GuideCache()


async def _guides(request: Request) -> GuideSet:
    cache: GuideCache = request.app.ctx.guide_cache
    return await cache.guides()


async def _guide_or_404(request: Request, code: str) -> GuideRecord:
    # Pattern-checked first, so an odd path never reaches a lookup, and says no more than 404.
    guide = (await _guides(request)).get(code) if CODE.fullmatch(code) else None
    if guide is None:
        raise NotFound("找不到该办事指南")
    return guide


@bp.get("", name="guide_search")
@doc(
    "Business guides, ranked by a keyword search (all of them without q)",
    "hall",
    query=SearchQuery,
    answer=LIST,
)
async def search_guides(request: Request) -> HTTPResponse:
    query = parse_query(request, SearchQuery)
    hits = (await _guides(request)).search(query.q or "")
    return json(
        [
            {
                "code": hit.guide.code,
                "title": hit.guide.title,
                "summary": hit.guide.summary,
                "category": hit.guide.category,
                "form_code": hit.guide.form_code,
                "score": hit.score,
            }
            for hit in hits
        ],
        headers=CACHE,
    )


@bp.get("/<code:str>", name="guide_detail")
@doc("One guide: materials, steps, where to go, the related form, its QR code", "hall")
async def guide_detail(request: Request, code: str) -> HTTPResponse:
    guide = await _guide_or_404(request, code)
    # hall/ may not import forms/: the form's title is looked up here.
    form = catalogue().get(guide.form_code) if guide.form_code else None
    base = request.app.ctx.settings.public_link_base
    return json(
        {
            "code": guide.code,
            "title": guide.title,
            "summary": guide.summary,
            "materials": list(guide.materials),
            "steps": list(guide.steps),
            "location": guide.location,
            "hall_id": guide.hall_id,
            "category": guide.category,
            "form_code": guide.form_code,
            "form_title": form.title if form else None,
            "keywords": list(guide.keywords),
            "updated_at": clock.local(guide.updated_at).isoformat(),
            "qrcode_url": f"{base}/api/v1/guides/{guide.code}/qrcode.png",
        },
        headers=CACHE,
    )


def _local_maker(request: Request) -> QrMaker:
    async def make(scene: str, page: str) -> bytes:
        return draw_qr_png(page_link(page, scene), QR_WIDTH)

    return make


def _wxacode_maker(request: Request) -> QrMaker:
    async def make(scene: str, page: str) -> bytes:
        # check_path off: the code works before the page is in a released version (trial and
        # development builds open it too).
        image: bytes = await request.app.ctx.wechat.miniprogram.get_unlimited_wxacode(
            scene, page, QR_WIDTH, check_path=False
        )
        return image

    return make


# SUBAN_GUIDE_QR chooses one.
QR_MAKERS = {"local": _local_maker, "wxacode": _wxacode_maker}


@bp.get("/<code:str>/qrcode.png", name="guide_qrcode")
@doc(
    "The guide's QR code (a mini-program code in production)",
    "hall",
    ok=(200, 304),
    answer=BINARY,
    media="image/png",
)
async def guide_qrcode(request: Request, code: str) -> HTTPResponse:
    guide = await _guide_or_404(request, code)
    maker: str = request.app.ctx.settings.guide_qr
    etag = f'"{qr_etag(maker, guide)}"'
    headers = {"Cache-Control": "public, max-age=3600", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return HTTPResponse(status=304, headers=headers)
    image = await guide_qr_png(request.app.ctx.redis, guide, maker, QR_MAKERS[maker](request))
    return raw(image, content_type="image/png", headers=headers)
