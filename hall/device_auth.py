"""Signed requests of hall devices (API.md, "Hall devices").

A device signs ``"{timestamp}\\n{nonce}\\n{METHOD}\\n{path}\\n{sha256 hex of body}"`` with its
secret (HMAC-SHA256, lowercase hex). The server accepts a signature once: within ``MAX_SKEW``
seconds of its timestamp and with a nonce it has not seen from that device (remembered in Redis,
so the refusal holds across workers and nodes).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import redis.asyncio as redis_asyncio

MAX_SKEW = 300
# A nonce must be remembered as long as its timestamp can still pass the window on either side.
NONCE_TTL = 2 * MAX_SKEW + 10
# How long a worker keeps a device's opened secret. Devices post every few seconds; without the
# cache every request would cost a database read and an AEAD open. Short, so that disabling a
# device or rotating its secret takes hold on every worker within this many seconds.
SECRET_CACHE_SECONDS = 30.0

HEADER_DEVICE = "X-Device-Id"
HEADER_TIMESTAMP = "X-Timestamp"
HEADER_NONCE = "X-Nonce"
HEADER_SIGNATURE = "X-Signature"

_NONCE = re.compile(r"[A-Za-z0-9_\-.]{8,64}")
_DEVICE_ID = re.compile(r"[A-Za-z0-9_\-.]{1,64}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device as the signature check needs it; ``secret`` is opened, so it never leaves the
    worker's memory."""

    device_id: str
    hall_id: str
    kind: str
    enabled: bool
    secret: str = field(repr=False)


DeviceLoader = Callable[[str], Awaitable[DeviceRecord | None]]


class DeviceAuthFailed(Exception):
    """The request is not a valid signed request of an enabled device (answer 401). ``reason``
    is for the log; the client learns only that the signature was refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def string_to_sign(timestamp: str, nonce: str, method: str, path: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{timestamp}\n{nonce}\n{method.upper()}\n{path}\n{body_hash}".encode()


def signature(secret: str, timestamp: str, nonce: str, method: str, path: str, body: bytes) -> str:
    message = string_to_sign(timestamp, nonce, method, path, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_request(
    device_id: str,
    secret: str,
    method: str,
    path: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers of a signed device request (for devices, tests, the demo and the bench).
    ``path`` is the request path without the query string."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: ts,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature(secret, ts, nonce, method, path, body),
    }


class SecretCache:
    """Opened device records per worker, each kept ``ttl`` seconds (unknown devices too, so a
    stream of requests naming a missing device does not reach the database each time)."""

    def __init__(self, load: DeviceLoader, ttl: float = SECRET_CACHE_SECONDS) -> None:
        self._load = load
        self._ttl = ttl
        self._entries: dict[str, tuple[float, DeviceRecord | None]] = {}

    async def get(self, device_id: str) -> DeviceRecord | None:
        now = time.monotonic()
        entry = self._entries.get(device_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        record = await self._load(device_id)
        if len(self._entries) > 10_000:
            # Bounded: made-up device ids must not grow the cache without end.
            self._entries.clear()
        self._entries[device_id] = (now + self._ttl, record)
        return record

    def forget(self, device_id: str) -> None:
        self._entries.pop(device_id, None)


def _nonce_key(device_id: str, nonce: str) -> str:
    return f"suban:device-nonce:{device_id}:{nonce}"


async def verify_device_request(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    *,
    devices: SecretCache,
    redis: redis_asyncio.Redis,
    now: float,
) -> DeviceRecord:
    """The enabled device that signed this request; :class:`DeviceAuthFailed` otherwise.

    The nonce is recorded only after the signature checks out, so nobody without the secret can
    use up a device's nonces. Redis errors propagate (the caller answers 503)."""
    device_id = headers.get(HEADER_DEVICE, "")
    timestamp = headers.get(HEADER_TIMESTAMP, "")
    nonce = headers.get(HEADER_NONCE, "")
    given = headers.get(HEADER_SIGNATURE, "").lower()
    if not (device_id and timestamp and nonce and given):
        raise DeviceAuthFailed("missing signature headers")
    if not _DEVICE_ID.fullmatch(device_id) or not _NONCE.fullmatch(nonce):
        raise DeviceAuthFailed("malformed device id or nonce")
    if not _SIGNATURE.fullmatch(given):
        raise DeviceAuthFailed("malformed signature")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise DeviceAuthFailed("malformed timestamp")
    if abs(now - int(timestamp)) > MAX_SKEW:
        raise DeviceAuthFailed("timestamp outside the window")
    device = await devices.get(device_id)
    if device is None or not device.enabled:
        raise DeviceAuthFailed("unknown or disabled device")
    expected = signature(device.secret, timestamp, nonce, method, path, body)
    if not hmac.compare_digest(expected, given):
        raise DeviceAuthFailed("bad signature")
    fresh = await redis.set(_nonce_key(device_id, nonce), b"1", nx=True, ex=NONCE_TTL)
    if not fresh:
        raise DeviceAuthFailed("nonce already used")
    return device
