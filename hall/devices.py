"""The device registry: cameras and queue systems of a hall, each with a sealed HMAC secret."""

from __future__ import annotations

import secrets
from typing import Literal

from auth.pii import Keyring, SealBroken
from hall.device_auth import DeviceRecord
from hall.models import Device, Hall

DeviceKind = Literal["camera", "queue"]
DEVICE_KINDS: tuple[str, ...] = ("camera", "queue")
MIN_SECRET_LENGTH = 16

# API.md, "Demo data": three cameras and the queue system of the demo hall.
DEMO_HALL_ID = "liwan"
DEMO_DEVICES: tuple[tuple[str, DeviceKind, str], ...] = (
    ("cam-1", "camera", "入口摄像头"),
    ("cam-2", "camera", "等候区摄像头"),
    ("cam-3", "camera", "窗口区摄像头"),
    ("queue-1", "queue", "排队叫号系统"),
)


class DeviceError(ValueError):
    """A registry request that cannot be done (unknown hall or device, bad kind, weak secret)."""


def _seal(keyring: Keyring, device_id: str, secret: str) -> str:
    # Bound to the row, as every sealed column is: a secret copied to another device won't open.
    return keyring.seal(secret, table="hall_device", column="secret", row_id=device_id)


def _check_secret(secret: str) -> None:
    if len(secret) < MIN_SECRET_LENGTH:
        raise DeviceError(f"a device secret needs at least {MIN_SECRET_LENGTH} characters")


async def create_device(
    device_id: str,
    hall_id: str,
    kind: DeviceKind,
    *,
    keyring: Keyring,
    secret: str | None = None,
    name: str = "",
) -> str:
    """Register a device; returns its secret (generated unless given), to be set on the device."""
    if kind not in DEVICE_KINDS:
        raise DeviceError(f"unknown device kind {kind!r}")
    if not await Hall.exists(hall_id=hall_id):
        raise DeviceError(f"unknown hall {hall_id!r}")
    if await Device.exists(device_id=device_id):
        raise DeviceError(f"device {device_id!r} already exists")
    secret = secret or secrets.token_urlsafe(32)
    _check_secret(secret)
    await Device.create(
        device_id=device_id,
        hall_id=hall_id,
        kind=kind,
        name=name,
        secret_sealed=_seal(keyring, device_id, secret),
    )
    return secret


async def set_enabled(device_id: str, enabled: bool) -> None:
    """Enable or disable a device. Workers that cached it notice within SECRET_CACHE_SECONDS."""
    if not await Device.filter(device_id=device_id).update(enabled=enabled):
        raise DeviceError(f"unknown device {device_id!r}")


async def rotate_secret(device_id: str, *, keyring: Keyring, secret: str | None = None) -> str:
    """Give a device a new secret (generated unless given) and return it; the old one stops
    working once the workers' caches expire."""
    secret = secret or secrets.token_urlsafe(32)
    _check_secret(secret)
    updated = await Device.filter(device_id=device_id).update(
        secret_sealed=_seal(keyring, device_id, secret)
    )
    if not updated:
        raise DeviceError(f"unknown device {device_id!r}")
    return secret


async def load_device(device_id: str, *, keyring: Keyring) -> DeviceRecord | None:
    """The device with its secret opened; None if unknown or its secret does not open here."""
    device = await Device.get_or_none(device_id=device_id)
    if device is None:
        return None
    try:
        secret = keyring.open(
            device.secret_sealed, table="hall_device", column="secret", row_id=device_id
        )
    except SealBroken:
        return None
    return DeviceRecord(
        device_id=device.device_id,
        hall_id=str(device.hall_id),  # type: ignore[attr-defined]
        kind=device.kind,
        enabled=device.enabled,
        secret=secret,
    )


async def load_demo_devices(keyring: Keyring, secret: str) -> str:
    """The demo hall's devices with ``secret``; existing ones get that secret again (enabled).
    An empty secret (production refuses the demo default) loads none."""
    if not secret:
        return "no demo devices (SUBAN_DEMO_DEVICE_SECRET is empty)"
    _check_secret(secret)
    for device_id, kind, name in DEMO_DEVICES:
        sealed = _seal(keyring, device_id, secret)
        await Device.update_or_create(
            device_id=device_id,
            defaults={
                "hall_id": DEMO_HALL_ID,
                "kind": kind,
                "name": name,
                "secret_sealed": sealed,
                "enabled": True,
            },
        )
    return f"{len(DEMO_DEVICES)} devices of hall {DEMO_HALL_ID} with SUBAN_DEMO_DEVICE_SECRET"
