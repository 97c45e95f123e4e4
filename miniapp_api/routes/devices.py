"""Signed requests from the hall's devices (cameras, queue system)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt, field_validator
from redis.exceptions import RedisError
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from auth import clock
from hall.device_auth import DeviceAuthFailed, DeviceRecord, verify_device_request
from hall.live import record_heartbeat, refresh_status
from hall.queue_events import (
    MAX_EVENTS_PER_REQUEST,
    QueueEventIn,
    check_events,
    hall_category_codes,
    ingest_queue_events,
)
from hall.snapshots import SnapshotRejected, decode_snapshot, store_snapshot
from miniapp_api.errors import ApiError, DependencyDown, ValidationFailed
from miniapp_api.hall_setup import device_secrets, live_config
from miniapp_api.openapi_docs import doc
from miniapp_api.validation import parse_body

log = logging.getLogger("suban.devices")
bp = Blueprint("devices", url_prefix="/devices")

# A 500 KB snapshot is 683 KB of base64; the rest of a heartbeat is a few bytes.
HEARTBEAT_MAX_BYTES = 700 * 1024
_REDIS_DOWN = (RedisError, OSError, asyncio.TimeoutError)


class HeartbeatBody(BaseModel):
    camera_id: str = Field(min_length=1, max_length=64, description="the signing camera's id")
    people_count: StrictInt = Field(ge=0, le=10_000)
    snapshot_jpeg_b64: str | None = Field(
        default=None,
        description="a JPEG of at most 500 KB, base64 (standard alphabet, padded)",
        json_schema_extra={"format": "byte"},
    )


class HeartbeatAnswer(BaseModel):
    received_at: datetime
    snapshot_id: int | None = Field(description="the stored snapshot, when one was sent")


class QueueEventBody(BaseModel):
    ticket_no: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9\-]+$")
    category: str = Field(min_length=1, max_length=32)
    event: Literal["taken", "called", "finished", "no_show"]
    window: str | None = Field(default=None, min_length=1, max_length=16)
    at: datetime
    # Sent by a kiosk when a booked person takes a ticket (an addition to API.md's shape).
    appointment_id: int | None = Field(default=None, ge=1)

    @field_validator("at", mode="before")
    @classmethod
    def iso_with_offset(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("时间格式应为带时区的 ISO 8601")
        return value

    @field_validator("at")
    @classmethod
    def aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("时间须带时区偏移（如 +08:00）")
        return value


class QueueEventsBody(BaseModel):
    events: list[QueueEventBody] = Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)


class QueueEventsAnswer(BaseModel):
    accepted: int = Field(ge=0)
    duplicates: int = Field(ge=0, description="events already received (a retried request)")


_SIGNED = (
    'Signed by the device (API.md "Hall devices"): a missing, malformed, stale, reused or bad '
    "signature is 401 DEVICE_SIGNATURE_INVALID; a device of the wrong kind is 403."
)


async def signed_device(request: Request) -> DeviceRecord:
    """The device that signed this request; 401 for anything else, 503 without Redis."""
    try:
        return await verify_device_request(
            request.headers,
            request.method,
            request.path,
            request.body,
            devices=device_secrets(request.app),
            redis=request.app.ctx.redis,
            now=time.time(),
        )
    except DeviceAuthFailed as exc:
        log.info(
            "device request refused on %s: %s (device %s)",
            request.path,
            exc.reason,
            request.headers.get("X-Device-Id", "-")[:64],
        )
        raise ApiError(401, "DEVICE_SIGNATURE_INVALID", "设备签名无效、已过期或已使用") from exc
    except _REDIS_DOWN as exc:
        raise DependencyDown("暂时无法校验设备签名，请稍后重试", ["redis"]) from exc


def _require_kind(device: DeviceRecord, kind: str) -> None:
    if device.kind != kind:
        raise ApiError(403, "DEVICE_NOT_ALLOWED", "该设备无权发送此类数据")


async def _publish(request: Request, hall_id: str) -> None:
    # What the device sent is stored; a status that cannot be published now is caught up by the
    # next heartbeat or the periodic refresh, so the device is not asked to send it again.
    try:
        await refresh_status(
            hall_id,
            redis=request.app.ctx.redis,
            config=live_config(request.app.ctx.settings),
            now=clock.now(),
        )
    except _REDIS_DOWN as exc:
        log.warning("live status of hall %s not published (%s)", hall_id, type(exc).__name__)


@bp.post("/heartbeat", name="heartbeat")
@doc(
    "A camera's heartbeat: people counted and an optional JPEG snapshot (signed)",
    "devices",
    auth="device",
    body=HeartbeatBody,
    # Explicit in the document, so tests/fuzz (which signs as cam-1) also reaches the 200.
    body_example={"camera_id": "cam-1", "people_count": 7},
    answer=HeartbeatAnswer,
    description=_SIGNED
    + " JSON only (no multipart): the snapshot travels base64 in `snapshot_jpeg_b64`; the whole "
    "body may be 700 KB (413 beyond, as for a snapshot over 500 KB; 422 for one that is not a "
    "JPEG). `camera_id` must be the signing device.",
)
async def heartbeat(request: Request) -> HTTPResponse:
    device = await signed_device(request)
    _require_kind(device, "camera")
    body = parse_body(request, HeartbeatBody, max_bytes=HEARTBEAT_MAX_BYTES)
    if body.camera_id != device.device_id:
        raise ApiError(403, "DEVICE_NOT_ALLOWED", "camera_id 与签名设备不一致")
    now = clock.now()
    snapshot_id: int | None = None
    if body.snapshot_jpeg_b64 is not None:
        try:
            data = decode_snapshot(body.snapshot_jpeg_b64)
        except SnapshotRejected as exc:
            if exc.status == 413:
                raise ApiError(413, "PAYLOAD_TOO_LARGE", exc.message) from exc
            raise ValidationFailed({"snapshot_jpeg_b64": exc.message}) from exc
        row = await store_snapshot(
            request.app.ctx.settings.snapshots_path, device.device_id, data, now
        )
        snapshot_id = row.id
    try:
        await record_heartbeat(
            request.app.ctx.redis,
            device.hall_id,
            device.device_id,
            body.people_count,
            snapshot_id,
            now,
        )
    except _REDIS_DOWN as exc:
        raise DependencyDown("实时状态服务暂时不可用", ["redis"]) from exc
    await _publish(request, device.hall_id)
    return json({"received_at": now.isoformat(), "snapshot_id": snapshot_id})


@bp.post("/queue-events", name="queue_events")
@doc(
    "Events of the queue system (taken, called, finished, no_show), idempotent (signed)",
    "devices",
    auth="device",
    body=QueueEventsBody,
    answer=QueueEventsAnswer,
    description=_SIGNED
    + " A category that is not the hall's, a time in the future or a `called` without a window "
    "is 422 naming the event (`events.3.category`).",
)
async def queue_events(request: Request) -> HTTPResponse:
    device = await signed_device(request)
    _require_kind(device, "queue")
    body = parse_body(request, QueueEventsBody)
    events = [
        QueueEventIn(
            ticket_no=e.ticket_no,
            category=e.category,
            event=e.event,
            at=e.at,
            window=e.window,
            appointment_id=e.appointment_id,
        )
        for e in body.events
    ]
    problems = check_events(events, await hall_category_codes(device.hall_id), clock.now())
    if problems:
        raise ValidationFailed(problems)
    result = await ingest_queue_events(device.device_id, device.hall_id, events)
    if result.accepted:
        await _publish(request, device.hall_id)
    return json({"accepted": result.accepted, "duplicates": result.duplicates})
