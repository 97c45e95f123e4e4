"""The hall screen in a real browser: the live status arrives over the WebSocket."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from tests.browser.conftest import OpenPage, expect
from tests.conftest import LiveServer

HEARTBEAT = "/api/v1/devices/heartbeat"
# The demo hall's camera and its secret (API.md, "Demo data").
CAMERA, SECRET = "cam-1", "suban-demo-device"


async def heartbeat(live: LiveServer, people: int) -> httpx.Response:
    from hall.device_auth import sign_request

    body = json.dumps({"camera_id": CAMERA, "people_count": people}).encode()
    headers = sign_request(CAMERA, SECRET, "POST", HEARTBEAT, body)
    return await live.http.post(
        HEARTBEAT, content=body, headers=headers | {"Content-Type": "application/json"}
    )


async def test_display_shows_a_heartbeat_as_it_arrives(
    live: LiveServer, open_page: OpenPage
) -> None:
    page = await open_page(f"{live.base_url}/hall/liwan/display")
    await expect(page.locator("#hall-name")).to_have_text("荔湾区办税服务厅")
    await expect(page.locator("#board")).to_have_attribute("data-connection", "live")
    await expect(page.locator("#category-rows")).to_contain_text("发票办理")
    await expect(page.locator("#people-count")).to_have_text("—")

    people = random.randint(100, 999)
    r = await heartbeat(live, people)
    if r.status_code == 404:
        pytest.skip("POST /api/v1/devices/heartbeat is not there yet (answers 404)")
    assert r.status_code == 200, r.text

    # Only cam-1 is online in a fresh hall: the screen shows its count, pushed over the socket
    # (no polling runs while the socket is up).
    await expect(page.locator("#people-count")).to_have_text(str(people))
    await expect(page.locator("#board")).to_have_attribute("data-connection", "live")


async def test_display_of_an_unknown_hall_says_so(live: LiveServer, open_page: OpenPage) -> None:
    page = await open_page(f"{live.base_url}/hall/no-such-hall/display")
    await expect(page.locator("#hall-name")).to_have_text("找不到该办税服务厅")
