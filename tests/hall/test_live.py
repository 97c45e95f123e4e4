from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from redis.exceptions import ConnectionError as RedisConnectionError

from auth import clock
from hall import wait
from hall.live import (
    CHANNEL,
    ClientDropped,
    LiveBoard,
    LiveConfig,
    compute_status,
    is_open,
    record_heartbeat,
    refresh_status,
    render,
    status_key,
)
from hall.snapshots import SnapshotRejected, decode_snapshot
from tests.conftest import LiveServer

HOURS = [{"weekdays": [1, 2, 3, 4, 5], "start": "09:00", "end": "12:00"}]


def test_open_follows_the_hours_in_shanghai_time() -> None:
    monday_10 = datetime(2026, 11, 30, 10, 0, tzinfo=clock.ZONE)
    assert is_open(HOURS, monday_10)
    assert not is_open(HOURS, monday_10.replace(hour=12))
    assert not is_open(HOURS, monday_10 + timedelta(days=5))  # Saturday
    # The same instant given in UTC is still 10:00 in the hall.
    assert is_open(HOURS, monday_10.astimezone(datetime.now().astimezone().tzinfo))


def test_decode_snapshot_refuses_oversized_base64_before_decoding() -> None:
    with pytest.raises(SnapshotRejected) as caught:
        decode_snapshot("A" * (700 * 1024))
    assert caught.value.status == 413
    with pytest.raises(SnapshotRejected) as caught:
        decode_snapshot(
            base64.b64encode(b"\xff\xd8\xff" + b"\0" * 600 * 1024 + b"\xff\xd9").decode()
        )
    assert caught.value.status == 413
    with pytest.raises(SnapshotRejected) as caught:
        decode_snapshot("not base64!")
    assert caught.value.status == 422


async def fixed_estimate(
    hall_id: str, loads: Sequence[wait.QueueLoad], now: datetime
) -> dict[str, float | None]:
    return {"invoice": 4.6, "filing": None}


async def test_status_has_the_contract_shape_and_crowd_level(
    live: LiveServer, redis_client: redis_asyncio.Redis
) -> None:
    now = clock.now()
    config = LiveConfig(people_medium=5, people_high=10)
    await record_heartbeat(redis_client, "liwan", "cam-1", 6, None, now)
    envelope = await compute_status(
        "liwan", redis=redis_client, config=config, now=now, estimate=fixed_estimate
    )
    assert envelope is not None
    status = envelope["status"]
    assert set(status) == {
        "hall_id",
        "updated_at",
        "open",
        "windows_open",
        "waiting_total",
        "crowd_level",
        "by_category",
        "cameras",
    }
    assert datetime.fromisoformat(status["updated_at"]).utcoffset() == timedelta(hours=8)
    by_category = {c["category"]: c for c in status["by_category"]}
    assert list(by_category) == ["invoice", "filing", "registration", "consulting"]
    assert by_category["invoice"]["est_wait_minutes"] == 5
    assert by_category["filing"]["est_wait_minutes"] is None
    cameras = {c["camera_id"]: c for c in status["cameras"]}
    assert {"cam-1", "cam-2", "cam-3"} <= set(cameras)
    assert cameras["cam-1"]["online"] is True
    assert cameras["cam-1"]["people_count"] == 6
    # 6 people with 适中 from 5: the crowd level is at least 适中.
    assert status["crowd_level"] in ("适中", "较多")

    await record_heartbeat(redis_client, "liwan", "cam-2", 9, None, now)
    envelope = await compute_status("liwan", redis=redis_client, config=config, now=now)
    assert envelope is not None
    assert envelope["status"]["crowd_level"] == "较多"

    # A minute later without heartbeats the cameras are offline and count no one.
    later = now + timedelta(seconds=61)
    envelope = await compute_status("liwan", redis=redis_client, config=config, now=later)
    assert envelope is not None
    assert not any(c["online"] for c in envelope["status"]["cameras"])
    assert await compute_status("nowhere", redis=redis_client, config=config, now=now) is None


async def test_render_judges_online_at_reading_time_and_signs_urls() -> None:
    now = clock.now().timestamp()
    envelope = {
        "seq": 1,
        "status": {
            "hall_id": "liwan",
            "cameras": [
                {"camera_id": "c1", "online": True, "snapshot_url": None},
                {"camera_id": "c2", "online": False, "snapshot_url": None},
            ],
        },
        "snapshots": {"c1": 7},
        "seen": {"c1": now - 30, "c2": now - 5},
    }
    shown = json.loads(render(envelope, b"k" * 32, now + 45))
    c1, c2 = shown["cameras"]
    assert c1["online"] is False
    assert c2["online"] is True
    assert c1["snapshot_url"].startswith("/api/v1/halls/liwan/snapshots/7.jpg?exp=")
    assert c2["snapshot_url"] is None


def envelope_of(seq: int, hall_id: str = "liwan") -> dict[str, Any]:
    return {"seq": seq, "status": {"hall_id": hall_id, "cameras": []}}


async def test_board_keeps_only_newer_envelopes() -> None:
    board = LiveBoard(redis=None, url_key=b"k")  # type: ignore[arg-type]
    assert board.offer(envelope_of(2))
    assert not board.offer(envelope_of(1))
    assert not board.offer(envelope_of(2))
    assert board.offer(envelope_of(3))
    assert board.envelopes["liwan"]["seq"] == 3


async def test_a_slow_reader_is_dropped_and_the_fast_one_gets_everything() -> None:
    board = LiveBoard(redis=None, url_key=b"k", client_queue_size=8)  # type: ignore[arg-type]
    dropped: list[str] = []
    slow = board.subscribe("liwan", on_drop=lambda: dropped.append("slow"))
    fast = board.subscribe("liwan")
    received: list[int] = []

    async def read_fast() -> None:
        while len(received) < 50:
            received.append((await fast.next())["seq"])

    reader = asyncio.create_task(read_fast())
    for seq in range(1, 51):
        board.offer(envelope_of(seq))
        await asyncio.sleep(0)
    await asyncio.wait_for(reader, 2)
    assert received == list(range(1, 51))
    assert dropped == ["slow"]
    assert slow.dropped
    assert board.dropped_total == 1
    with pytest.raises(ClientDropped):
        await slow.next()
    assert board.clients["liwan"] == {fast}


async def test_close_all_tells_every_reader_and_lets_go_of_them() -> None:
    board = LiveBoard(redis=None, url_key=b"k")  # type: ignore[arg-type]
    closed: list[str] = []
    board.subscribe("liwan", on_close=lambda: closed.append("a"))
    board.subscribe("liwan", on_close=lambda: closed.append("b"))
    board.subscribe("other")  # no callback: just let go of

    def failing() -> None:
        raise RuntimeError("boom")

    board.subscribe("other", on_close=failing)  # one failing does not stop the rest
    assert board.close_all() == 4
    assert sorted(closed) == ["a", "b"]
    assert board.clients == {}
    # Nothing left to tell about later changes.
    assert board.offer(envelope_of(1))
    assert board.close_all() == 0


async def wait_until(condition: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_board_follows_the_channel_and_reads_what_it_missed(
    live: LiveServer, redis_client: redis_asyncio.Redis
) -> None:
    # Published before the board subscribed: found by the reload after subscribing.
    first = await refresh_status("liwan", redis=redis_client, config=LiveConfig(), now=clock.now())
    assert first is not None
    board = LiveBoard(redis=redis_client, url_key=b"k")
    await board.refresh_halls()
    board.start()
    try:
        await wait_until(lambda: board.connected and "liwan" in board.envelopes)
        assert board.envelopes["liwan"]["seq"] == first["seq"]
        second = await refresh_status(
            "liwan", redis=redis_client, config=LiveConfig(), now=clock.now()
        )
        assert second is not None
        await wait_until(lambda: board.envelopes["liwan"]["seq"] == second["seq"])
        assert json.loads(await redis_client.get(status_key("liwan")))["seq"] == second["seq"]
    finally:
        await board.stop()


class FlakyPubSubRedis:
    """A Redis whose first subscriptions fail, as when Redis restarts under the board."""

    def __init__(self, real: redis_asyncio.Redis, failures: int) -> None:
        self.real = real
        self.failures = failures

    def pubsub(self, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            broken = self.real.pubsub(**kwargs)

            async def subscribe(*channels: str) -> None:
                raise RedisConnectionError("Redis went away")

            broken.subscribe = subscribe
            return broken
        return self.real.pubsub(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_board_reconnects_by_itself(redis_client: redis_asyncio.Redis) -> None:
    board = LiveBoard(redis=FlakyPubSubRedis(redis_client, 2), url_key=b"k")  # type: ignore[arg-type]
    board.start()
    try:
        await wait_until(lambda: board.connected, timeout=5)
        payload = json.dumps(envelope_of(5, "hall-x"))
        await redis_client.publish(CHANNEL, payload)
        await wait_until(lambda: "hall-x" in board.envelopes)
    finally:
        await board.stop()
