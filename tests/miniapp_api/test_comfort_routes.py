"""The comfort index over HTTP: staff publish, everybody reads it as JSON and as SVG."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

from auth.models import AuditEvent
from auth.staff import create_staff
from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import person_token, reviewer_token

PASSWORD = "hall-manager-pass-1"
SVG = "{http://www.w3.org/2000/svg}"


async def _hall_manager(live: LiveServer) -> dict[str, str]:
    username = f"hall{uuid.uuid4().hex[:8]}"
    await create_staff(username, PASSWORD, roles=["hall_manager"], keyring=live.app.ctx.keyring)
    r = await live.http.post(
        "/api/v1/staff/login", json={"username": username, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def test_staff_publish_then_anyone_reads_json_and_svg(live: LiveServer) -> None:
    headers = await _hall_manager(live)
    r = await live.http.post(
        "/api/v1/staff/halls/liwan/comfort/publish", json={"month": "2031-03"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["month"] == "2031-03"
    assert await AuditEvent.filter(action="hall.comfort.publish", target="hall:liwan").exists()

    r = await live.http.get("/api/v1/halls/liwan/comfort", params={"month": "2031-03"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"month", "published_at", "levels", "days", "trend"}
    assert body["levels"] == ["较少", "适中", "较多"]
    assert len(body["days"]) == 31
    slot = next(d for d in body["days"] if d["slots"])["slots"][0]
    assert set(slot) == {"start", "end", "expected", "level"}
    assert body["trend"][-1]["month"] == "2031-03"
    etag = r.headers["etag"]
    again = await live.http.get(
        "/api/v1/halls/liwan/comfort", params={"month": "2031-03"}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304

    r = await live.http.get("/api/v1/halls/liwan/comfort.svg", params={"month": "2031-03"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert "max-age" in r.headers["cache-control"]
    root = ET.fromstring(r.text)  # noqa: S314 - our own output
    circles = root.findall(f".//{SVG}circle")
    assert len(circles) == sum(len(d["slots"]) for d in body["days"])
    assert "2031年3月" in (root.findtext(f"{SVG}title") or "")


async def test_the_demo_publishes_this_month_and_the_next(live: LiveServer) -> None:
    r = await live.http.get("/api/v1/halls/liwan/comfort")
    assert r.status_code == 200, r.text
    assert len(r.json()["trend"]) >= 12


async def test_taxpayers_and_reviewers_cannot_publish(live: LiveServer) -> None:
    url = "/api/v1/staff/halls/liwan/comfort/publish"
    anonymous = await live.http.post(url, json={"month": "2031-04"})
    assert anonymous.status_code == 401
    token = await person_token(live)
    taxpayer = await live.http.post(
        url, json={"month": "2031-04"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert taxpayer.status_code in (401, 403)
    reviewer = await live.http.post(
        url,
        json={"month": "2031-04"},
        headers={"Authorization": f"Bearer {await reviewer_token(live)}"},
    )
    assert reviewer.status_code == 403
    assert reviewer.json()["error"]["code"] == "FORBIDDEN"


async def test_unpublished_months_unknown_halls_and_bad_months(live: LiveServer) -> None:
    r = await live.http.get("/api/v1/halls/liwan/comfort", params={"month": "2019-01"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NOT_FOUND"
    r = await live.http.get("/api/v1/halls/liwan/comfort.svg", params={"month": "2019-01"})
    assert r.status_code == 404
    for bad in ("2026-13", "202601", "soon"):
        r = await live.http.get("/api/v1/halls/liwan/comfort", params={"month": bad})
        assert r.status_code == 422, bad
        assert "month" in r.json()["error"]["fields"]
    headers = await _hall_manager(live)
    r = await live.http.post(
        "/api/v1/staff/halls/liwan/comfort/publish", json={"month": "2026/12"}, headers=headers
    )
    assert r.status_code == 422
    r = await live.http.post(
        "/api/v1/staff/halls/nowhere/comfort/publish", json={"month": "2026-12"}, headers=headers
    )
    assert r.status_code == 404
