from __future__ import annotations

import time

import pytest
import redis.asyncio as redis_asyncio

from auth.pii import Keyring
from hall.device_auth import (
    DeviceAuthFailed,
    DeviceRecord,
    SecretCache,
    sign_request,
    verify_device_request,
)
from hall.devices import (
    DeviceError,
    create_device,
    load_device,
    rotate_secret,
    set_enabled,
)
from hall.models import Device
from tests.conftest import TEST_PII_KEY, LiveServer

SECRET = "a-device-secret-of-some-length"
PATH = "/api/v1/devices/heartbeat"
BODY = b'{"camera_id":"cam-x","people_count":3}'


def cache_of(*records: DeviceRecord) -> tuple[SecretCache, list[str]]:
    loads: list[str] = []
    by_id = {r.device_id: r for r in records}

    async def load(device_id: str) -> DeviceRecord | None:
        loads.append(device_id)
        return by_id.get(device_id)

    return SecretCache(load), loads


CAMERA = DeviceRecord("cam-x", "liwan", "camera", True, SECRET)


async def verify(
    redis: redis_asyncio.Redis,
    headers: dict[str, str],
    cache: SecretCache,
    *,
    body: bytes = BODY,
    now: float | None = None,
) -> DeviceRecord:
    return await verify_device_request(
        headers,
        "POST",
        PATH,
        body,
        devices=cache,
        redis=redis,
        now=time.time() if now is None else now,
    )


async def test_good_signature_is_accepted_once(redis_client: redis_asyncio.Redis) -> None:
    cache, _ = cache_of(CAMERA)
    headers = sign_request("cam-x", SECRET, "POST", PATH, BODY)
    assert (await verify(redis_client, headers, cache)).device_id == "cam-x"
    with pytest.raises(DeviceAuthFailed, match="nonce"):
        await verify(redis_client, headers, cache)


async def test_tampered_body_path_or_secret_is_refused(redis_client: redis_asyncio.Redis) -> None:
    cache, _ = cache_of(CAMERA)
    headers = sign_request("cam-x", SECRET, "POST", PATH, BODY)
    with pytest.raises(DeviceAuthFailed, match="bad signature"):
        await verify(redis_client, headers, cache, body=BODY.replace(b"3", b"4"))
    wrong = sign_request("cam-x", SECRET + "!", "POST", PATH, BODY)
    with pytest.raises(DeviceAuthFailed, match="bad signature"):
        await verify(redis_client, wrong, cache)
    other_path = sign_request("cam-x", SECRET, "POST", "/api/v1/devices/queue-events", BODY)
    with pytest.raises(DeviceAuthFailed, match="bad signature"):
        await verify(redis_client, other_path, cache)


async def test_a_refused_signature_does_not_use_up_the_nonce(
    redis_client: redis_asyncio.Redis,
) -> None:
    cache, _ = cache_of(CAMERA)
    good = sign_request("cam-x", SECRET, "POST", PATH, BODY, nonce="nonce-0001")
    forged = dict(good, **{"X-Signature": "0" * 64})
    with pytest.raises(DeviceAuthFailed):
        await verify(redis_client, forged, cache)
    assert (await verify(redis_client, good, cache)).device_id == "cam-x"


async def test_stale_or_future_timestamp_is_refused(redis_client: redis_asyncio.Redis) -> None:
    cache, _ = cache_of(CAMERA)
    now = time.time()
    for skew in (-301, 301):
        headers = sign_request("cam-x", SECRET, "POST", PATH, BODY, timestamp=int(now) + skew)
        with pytest.raises(DeviceAuthFailed, match="window"):
            await verify(redis_client, headers, cache, now=now)
    edge = sign_request("cam-x", SECRET, "POST", PATH, BODY, timestamp=int(now) - 299)
    assert (await verify(redis_client, edge, cache, now=now)).device_id == "cam-x"


async def test_unknown_disabled_and_malformed_are_refused(
    redis_client: redis_asyncio.Redis,
) -> None:
    disabled = DeviceRecord("cam-off", "liwan", "camera", False, SECRET)
    cache, _ = cache_of(CAMERA, disabled)
    with pytest.raises(DeviceAuthFailed, match="unknown or disabled"):
        await verify(redis_client, sign_request("cam-nope", SECRET, "POST", PATH, BODY), cache)
    with pytest.raises(DeviceAuthFailed, match="unknown or disabled"):
        await verify(redis_client, sign_request("cam-off", SECRET, "POST", PATH, BODY), cache)
    headers = sign_request("cam-x", SECRET, "POST", PATH, BODY)
    for name in ("X-Device-Id", "X-Timestamp", "X-Nonce", "X-Signature"):
        missing = {k: v for k, v in headers.items() if k != name}
        with pytest.raises(DeviceAuthFailed):
            await verify(redis_client, missing, cache)
    with pytest.raises(DeviceAuthFailed, match="malformed"):
        await verify(redis_client, dict(headers, **{"X-Nonce": "short"}), cache)


async def test_secrets_are_cached_briefly_per_worker(redis_client: redis_asyncio.Redis) -> None:
    cache, loads = cache_of(CAMERA)
    for _ in range(3):
        await verify(redis_client, sign_request("cam-x", SECRET, "POST", PATH, BODY), cache)
    assert loads == ["cam-x"]
    cache.forget("cam-x")
    await verify(redis_client, sign_request("cam-x", SECRET, "POST", PATH, BODY), cache)
    assert loads == ["cam-x", "cam-x"]


async def test_registry_seals_rotates_and_disables(live: LiveServer) -> None:
    keyring = Keyring.build("aes-256-gcm", [(TEST_PII_KEY.version, TEST_PII_KEY.key)])
    device_id = f"cam-t{time.time_ns() % 10**9}"
    secret = await create_device(device_id, "liwan", "camera", keyring=keyring)
    row = await Device.get(device_id=device_id)
    assert secret not in row.secret_sealed
    record = await load_device(device_id, keyring=keyring)
    assert record is not None
    assert record.secret == secret
    assert record.hall_id == "liwan"

    new = await rotate_secret(device_id, keyring=keyring)
    assert new != secret
    record = await load_device(device_id, keyring=keyring)
    assert record is not None
    assert record.secret == new

    await set_enabled(device_id, False)
    record = await load_device(device_id, keyring=keyring)
    assert record is not None
    assert not record.enabled

    with pytest.raises(DeviceError):
        await create_device(device_id, "liwan", "camera", keyring=keyring)
    with pytest.raises(DeviceError):
        await create_device("cam-elsewhere", "no-such-hall", "camera", keyring=keyring)
    with pytest.raises(DeviceError):
        await rotate_secret(device_id, keyring=keyring, secret="short")


async def test_demo_devices_open_with_the_demo_secret(live: LiveServer) -> None:
    keyring = Keyring.build("aes-256-gcm", [(TEST_PII_KEY.version, TEST_PII_KEY.key)])
    for device_id, kind in (("cam-1", "camera"), ("cam-3", "camera"), ("queue-1", "queue")):
        record = await load_device(device_id, keyring=keyring)
        assert record is not None
        assert (record.kind, record.hall_id, record.secret) == (kind, "liwan", "suban-demo-device")
