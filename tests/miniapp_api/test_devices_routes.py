from __future__ import annotations

import base64
import io
import json
import os
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from PIL import Image

from auth import clock
from hall.device_auth import sign_request
from hall.models import CameraSnapshot, QueueEvent, QueueTicket
from miniapp_api.hall_setup import purge_camera_snapshots
from tests.conftest import LiveServer

DEMO_SECRET = "suban-demo-device"
HEARTBEAT = "/api/v1/devices/heartbeat"
QUEUE_EVENTS = "/api/v1/devices/queue-events"


def jpeg(size: tuple[int, int] = (64, 48), noise: bool = False) -> bytes:
    image = Image.new("RGB", size, (30, 120, 200))
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    return out.getvalue()


async def signed_post(
    live: LiveServer,
    path: str,
    payload: Any,
    *,
    device: str = "cam-1",
    secret: str = DEMO_SECRET,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = json.dumps(payload).encode()
    signed = sign_request(device, secret, "POST", path, body, timestamp=timestamp)
    signed["Content-Type"] = "application/json"
    return await live.http.post(path, content=body, headers=signed | (headers or {}))


def error_code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


async def test_heartbeat_with_a_good_signature_is_taken(live: LiveServer) -> None:
    r = await signed_post(live, HEARTBEAT, {"camera_id": "cam-1", "people_count": 7})
    assert r.status_code == 200, r.text
    assert r.json()["snapshot_id"] is None


async def test_bad_stale_replayed_and_unknown_signatures_are_401(live: LiveServer) -> None:
    payload = {"camera_id": "cam-1", "people_count": 1}
    r = await signed_post(live, HEARTBEAT, payload, secret="not-the-demo-secret")
    assert (r.status_code, error_code(r)) == (401, "DEVICE_SIGNATURE_INVALID")
    r = await signed_post(live, HEARTBEAT, payload, timestamp=int(time.time()) - 301)
    assert r.status_code == 401
    r = await signed_post(live, HEARTBEAT, payload, device="cam-404")
    assert r.status_code == 401
    r = await live.http.post(HEARTBEAT, json=payload)
    assert r.status_code == 401

    body = json.dumps(payload).encode()
    headers = sign_request("cam-1", DEMO_SECRET, "POST", HEARTBEAT, body)
    headers["Content-Type"] = "application/json"
    first = await live.http.post(HEARTBEAT, content=body, headers=headers)
    assert first.status_code == 200
    replay = await live.http.post(HEARTBEAT, content=body, headers=headers)
    assert (replay.status_code, error_code(replay)) == (401, "DEVICE_SIGNATURE_INVALID")


async def test_devices_may_send_only_their_own_kind(live: LiveServer) -> None:
    event = {"ticket_no": "A001", "category": "invoice", "event": "taken", "at": _at()}
    r = await signed_post(live, QUEUE_EVENTS, {"events": [event]}, device="cam-1")
    assert (r.status_code, error_code(r)) == (403, "DEVICE_NOT_ALLOWED")
    r = await signed_post(
        live, HEARTBEAT, {"camera_id": "queue-1", "people_count": 1}, device="queue-1"
    )
    assert r.status_code == 403
    # A camera speaks for itself only.
    r = await signed_post(
        live, HEARTBEAT, {"camera_id": "cam-2", "people_count": 1}, device="cam-1"
    )
    assert r.status_code == 403


async def test_heartbeat_fields_are_validated(live: LiveServer) -> None:
    for people in (-1, 10_001, "5", 2.5):
        r = await signed_post(live, HEARTBEAT, {"camera_id": "cam-1", "people_count": people})
        assert r.status_code == 422, (people, r.text)
        assert "people_count" in r.json()["error"]["fields"]


async def test_snapshot_must_be_a_jpeg_and_small(live: LiveServer) -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    for not_jpeg in (png.getvalue(), b"\xff\xd8\xff" + b"x" * 100 + b"\xff\xd9", b"hello"):
        r = await signed_post(
            live,
            HEARTBEAT,
            {
                "camera_id": "cam-1",
                "people_count": 1,
                "snapshot_jpeg_b64": base64.b64encode(not_jpeg).decode(),
            },
        )
        assert r.status_code == 422, r.text
        assert "snapshot_jpeg_b64" in r.json()["error"]["fields"]
    # Over the limit, a little and a lot.
    for side in (680, 900):
        big = jpeg((side, side), noise=True)
        assert len(big) > 500 * 1024
        snapshot = base64.b64encode(big).decode()
        r = await signed_post(
            live,
            HEARTBEAT,
            {"camera_id": "cam-1", "people_count": 1, "snapshot_jpeg_b64": snapshot},
        )
        assert r.status_code == 413, r.text


async def _status(live: LiveServer) -> dict[str, Any]:
    r = await live.http.get("/api/v1/halls/liwan/status")
    assert r.status_code == 200, r.text
    status: dict[str, Any] = r.json()
    return status


async def test_snapshot_is_reachable_only_through_a_fresh_signed_url(live: LiveServer) -> None:
    picture = jpeg()
    r = await signed_post(
        live,
        HEARTBEAT,
        {
            "camera_id": "cam-2",
            "people_count": 4,
            "snapshot_jpeg_b64": base64.b64encode(picture).decode(),
        },
        device="cam-2",
    )
    assert r.status_code == 200, r.text
    snapshot_id = r.json()["snapshot_id"]
    camera = {c["camera_id"]: c for c in (await _status(live))["cameras"]}["cam-2"]
    url = camera["snapshot_url"]
    assert url.startswith(f"/api/v1/halls/liwan/snapshots/{snapshot_id}.jpg?")
    got = await live.http.get(url)
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/jpeg"
    assert got.content == picture

    query = parse_qs(urlsplit(url).query)
    exp, sig = int(query["exp"][0]), query["sig"][0]
    assert time.time() < exp <= time.time() + 300
    base = f"/api/v1/halls/liwan/snapshots/{snapshot_id}.jpg"
    tampered = [
        f"{base}?exp={exp + 60}&sig={sig}",
        f"{base}?exp={exp}&sig={'0' * 64}",
        f"/api/v1/halls/liwan/snapshots/{snapshot_id + 1}.jpg?exp={exp}&sig={sig}",
        f"{base}",
    ]
    for bad in tampered:
        assert (await live.http.get(bad)).status_code == 403, bad
    # A correctly signed but expired link.
    from hall.snapshots import signed_snapshot_url

    board = live.app.ctx.hall_board
    expired = signed_snapshot_url(board.url_key, "liwan", snapshot_id, int(time.time()) - 1)
    assert (await live.http.get(expired)).status_code == 403
    # Another hall's path with this hall's snapshot.
    other = signed_snapshot_url(board.url_key, "nowhere", snapshot_id, int(time.time()) + 100)
    assert (await live.http.get(other)).status_code == 404


async def test_old_snapshots_are_purged_with_their_files(live: LiveServer) -> None:
    r = await signed_post(
        live,
        HEARTBEAT,
        {
            "camera_id": "cam-3",
            "people_count": 0,
            "snapshot_jpeg_b64": base64.b64encode(jpeg((32, 32), noise=True)).decode(),
        },
        device="cam-3",
    )
    snapshot_id = r.json()["snapshot_id"]
    row = await CameraSnapshot.get(id=snapshot_id)
    settings = live.app.ctx.settings
    path = settings.snapshots_path / row.sha256[:2] / f"{row.sha256}.jpg"
    assert path.exists()
    await CameraSnapshot.filter(id=snapshot_id).update(
        taken_at=clock.now() - timedelta(hours=settings.snapshot_retention_hours, minutes=1)
    )
    await purge_camera_snapshots({"settings": settings, "redis": live.app.ctx.redis})
    assert not await CameraSnapshot.exists(id=snapshot_id)
    assert not path.exists()


def _at(moment: datetime | None = None) -> str:
    return (moment or clock.now()).isoformat()


async def test_queue_events_are_stored_once_and_build_the_ticket(live: LiveServer) -> None:
    no = f"Q{uuid.uuid4().hex[:8]}"
    now = clock.now()
    taken = {"ticket_no": no, "category": "invoice", "event": "taken", "at": _at(now)}
    called = {
        "ticket_no": no,
        "category": "invoice",
        "event": "called",
        "window": "W3",
        "at": _at(now + timedelta(seconds=30)),
    }
    r = await signed_post(live, QUEUE_EVENTS, {"events": [taken, called]}, device="queue-1")
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 2, "duplicates": 0}
    r = await signed_post(live, QUEUE_EVENTS, {"events": [called, taken]}, device="queue-1")
    assert r.json() == {"accepted": 0, "duplicates": 2}
    assert await QueueEvent.filter(ticket_no=no).count() == 2
    ticket = await QueueTicket.get(hall_id="liwan", ticket_no=no)
    assert (ticket.outcome, ticket.window, ticket.category) == ("serving", "W3", "invoice")
    assert ticket.called_at is not None

    finished = dict(called, event="finished", at=_at(now + timedelta(minutes=3)))
    r = await signed_post(live, QUEUE_EVENTS, {"events": [finished, taken]}, device="queue-1")
    assert r.json() == {"accepted": 1, "duplicates": 1}
    ticket = await QueueTicket.get(hall_id="liwan", ticket_no=no)
    assert ticket.outcome == "done"
    assert ticket.finished_at is not None


async def test_queue_events_are_validated(live: LiveServer) -> None:
    good = {"ticket_no": "B001", "category": "invoice", "event": "taken", "at": _at()}
    cases: list[tuple[dict[str, Any], str]] = [
        (dict(good, category="cooking"), "events.0.category"),
        (dict(good, event="lost"), "events.0.event"),
        (dict(good, at="2026-11-29T10:00:00"), "events.0.at"),
        (dict(good, at=1764400000), "events.0.at"),
        (dict(good, at=_at(clock.now() + timedelta(minutes=10))), "events.0.at"),
        (dict(good, ticket_no=""), "events.0.ticket_no"),
        (dict(good, event="called"), "events.0.window"),
    ]
    for event, field in cases:
        r = await signed_post(live, QUEUE_EVENTS, {"events": [event]}, device="queue-1")
        assert r.status_code == 422, (event, r.text)
        assert field in r.json()["error"]["fields"], r.text
    r = await signed_post(live, QUEUE_EVENTS, {"events": [good] * 501}, device="queue-1")
    assert r.status_code == 422
    r = await signed_post(live, QUEUE_EVENTS, {"events": []}, device="queue-1")
    assert r.status_code == 422
    assert not await QueueEvent.exists(ticket_no="B001")
