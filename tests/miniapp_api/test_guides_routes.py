"""GET /api/v1/guides, /guides/{code} and /guides/{code}/qrcode.png over HTTP."""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from hall.guides import packaged_guides
from miniapp_api.settings import Settings
from tests.conftest import LiveServer, serve_app
from wechat.simulator.faults import Fault, FaultKind

ZBARIMG = shutil.which("zbarimg")
needs_zbar = pytest.mark.skipif(
    not ZBARIMG, reason="zbarimg missing (apt-get install zbar-tools) to decode the QR code"
)
PROXY_INVOICE_LINK = "pages/guide/index?scene=g%3Dproxy_invoice"


def decode_qr(png: bytes, tmp_path: Path) -> str:
    assert ZBARIMG
    image = tmp_path / "code.png"
    image.write_bytes(png)
    done = subprocess.run(  # noqa: S603 - zbarimg on a file this test wrote
        [ZBARIMG, "--quiet", "--raw", str(image)], check=True, capture_output=True, timeout=60
    )
    return done.stdout.decode().strip()


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def search(live: LiveServer, q: str | None) -> list[dict[str, object]]:
    r = await live.http.get("/api/v1/guides", params={"q": q} if q is not None else None)
    assert r.status_code == 200, r.text
    found: list[dict[str, object]] = r.json()
    return found


# --------------------------------------------------------------------------- search


async def test_search_ranks_proxy_invoice_first_for_daikai_fapiao(live: LiveServer) -> None:
    found = await search(live, "代开发票")
    assert found[0]["code"] == "proxy_invoice"
    assert set(found[0]) == {"code", "title", "summary", "category", "form_code", "score"}
    assert found[0]["title"] == "代开增值税发票"
    assert found[0]["form_code"] == "proxy_invoice"
    assert found[0]["category"] == "invoice"
    scores = [hit["score"] for hit in found]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]


async def test_search_examples(live: LiveServer) -> None:
    assert [g["code"] for g in await search(live, "跨区域")] == ["cross_region_report"]
    fapiao = [g["code"] for g in await search(live, "发票")]
    assert len(fapiao) >= 3
    assert set(fapiao[:2]) == {"proxy_invoice", "invoice_claim"}
    assert (await search(live, "个税"))[0]["code"] == "iit_annual"
    assert await search(live, "火星") == []


async def test_no_query_lists_every_guide_by_position(live: LiveServer) -> None:
    expected = [g.code for g in packaged_guides()]
    assert [g["code"] for g in await search(live, None)] == expected
    assert [g["code"] for g in await search(live, "")] == expected


async def test_a_query_over_50_characters_is_422(live: LiveServer) -> None:
    assert await search(live, "税" * 50) is not None
    r = await live.http.get("/api/v1/guides", params={"q": "税" * 51})
    assert r.status_code == 422
    body = r.json()
    assert body["error"]["code"] == "VALIDATION_FAILED"
    assert set(body["error"]["fields"]) == {"q"}


# --------------------------------------------------------------------------- detail


async def test_detail_has_materials_steps_place_and_the_form_title(live: LiveServer) -> None:
    r = await live.http.get("/api/v1/guides/proxy_invoice")
    assert r.status_code == 200
    guide = r.json()
    assert guide["title"] == "代开增值税发票"
    assert "经办人身份证件原件" in guide["materials"]
    assert len(guide["steps"]) >= 3
    assert "荔湾区办税服务厅" in guide["location"]
    assert guide["hall_id"] == "liwan"
    assert guide["category"] == "invoice"
    assert guide["form_code"] == "proxy_invoice"
    assert guide["form_title"] == "代开增值税发票缴纳税款申报单"
    assert guide["updated_at"].endswith("+08:00")
    assert guide["qrcode_url"] == f"{live.base_url}/api/v1/guides/proxy_invoice/qrcode.png"


async def test_a_guide_without_a_form_has_no_form_title(live: LiveServer) -> None:
    guide = (await live.http.get("/api/v1/guides/invoice_claim")).json()
    assert guide["form_code"] is None
    assert guide["form_title"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/guides/no_such_guide",
        "/api/v1/guides/Proxy_Invoice",
        "/api/v1/guides/" + "a" * 31,
        "/api/v1/guides/proxy-invoice",
        "/api/v1/guides/no_such_guide/qrcode.png",
        "/api/v1/guides/PROXY/qrcode.png",
    ],
)
async def test_unknown_or_malformed_codes_are_404(live: LiveServer, path: str) -> None:
    r = await live.http.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NOT_FOUND"


# --------------------------------------------------------------------------- QR codes


async def test_the_local_qr_code_is_a_cacheable_png(live: LiveServer) -> None:
    r = await live.http.get("/api/v1/guides/proxy_invoice/qrcode.png")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert "max-age" in r.headers["cache-control"]
    width, height = png_size(r.content)
    assert width == height
    assert 300 <= width <= 500
    again = await live.http.get(
        "/api/v1/guides/proxy_invoice/qrcode.png", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304
    other = await live.http.get("/api/v1/guides/iit_annual/qrcode.png")
    assert other.headers["etag"] != r.headers["etag"]
    assert other.content != r.content


@needs_zbar
async def test_the_local_qr_code_opens_the_guide_page(live: LiveServer, tmp_path: Path) -> None:
    r = await live.http.get("/api/v1/guides/proxy_invoice/qrcode.png")
    assert decode_qr(r.content, tmp_path) == PROXY_INVOICE_LINK


@pytest.fixture
def wxacode_settings(settings: Settings) -> Settings:
    # The production path (a mini-program code from WeChat), with the mounted simulator
    # standing in for WeChat: the real client makes the call over HTTP.
    return replace(settings, guide_qr="wxacode")


async def test_the_production_code_comes_from_wechat_once_per_guide_version(
    wxacode_settings: Settings, tmp_path: Path
) -> None:
    async with serve_app(wxacode_settings) as live:
        await live.app.ctx.redis.flushdb()
        counters = live.app.ctx.simulator_state.counters
        first = await live.http.get("/api/v1/guides/proxy_invoice/qrcode.png")
        second = await live.http.get("/api/v1/guides/proxy_invoice/qrcode.png")
        assert first.status_code == second.status_code == 200
        assert first.headers["content-type"] == "image/png"
        assert first.content == second.content
        assert counters["getwxacodeunlimit"] == 1
        await live.http.get("/api/v1/guides/iit_annual/qrcode.png")
        assert counters["getwxacodeunlimit"] == 2
        if ZBARIMG:
            assert decode_qr(first.content, tmp_path) == PROXY_INVOICE_LINK


async def test_a_wechat_error_is_503_and_nothing_is_cached(wxacode_settings: Settings) -> None:
    async with serve_app(wxacode_settings) as live:
        await live.app.ctx.redis.flushdb()
        state = live.app.ctx.simulator_state
        # Warm the token first, so the fault hits the code call itself.
        await live.app.ctx.wechat.miniprogram.access_token()
        quota = Fault(FaultKind.ERRCODE, errcode=45009, errmsg="reach max api daily quota limit")
        state.add_faults("getwxacodeunlimit", quota, 1)
        failed = await live.http.get("/api/v1/guides/proxy_invoice/qrcode.png")
        assert failed.status_code == 503
        assert failed.json()["error"]["code"] == "WECHAT_UNAVAILABLE"
        later = await live.http.get("/api/v1/guides/proxy_invoice/qrcode.png")
        assert later.status_code == 200
        assert state.counters["getwxacodeunlimit"] == 2
