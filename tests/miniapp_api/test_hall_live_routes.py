from __future__ import annotations

import asyncio
import json
import socket
import uuid
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from auth import clock
from hall.live import LEVELS
from miniapp_api.routes.halls import CLOSE_FLUSH_SECONDS
from tests.conftest import LiveServer, serve_app
from tests.miniapp_api.test_devices_routes import HEARTBEAT, QUEUE_EVENTS, signed_post
from tests.processes import free_port

# How long a message that must come may take: the first connection of a fresh app on a loaded
# 2-core machine took over 2 s. Waits for what must not come stay short.
RECV_S = 10


def ws_url(live: LiveServer, hall_id: str = "liwan") -> str:
    return live.base_url.replace("http://", "ws://") + f"/api/v1/halls/{hall_id}/live"


async def status_of(live: LiveServer) -> dict[str, Any]:
    r = await live.http.get("/api/v1/halls/liwan/status")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    return body


async def test_status_shape_after_a_heartbeat(live: LiveServer) -> None:
    r = await signed_post(live, HEARTBEAT, {"camera_id": "cam-1", "people_count": 12})
    assert r.status_code == 200, r.text
    status = await status_of(live)
    assert status["hall_id"] == "liwan"
    assert isinstance(status["open"], bool)
    assert isinstance(status["windows_open"], int)
    assert status["crowd_level"] in LEVELS
    assert [c["category"] for c in status["by_category"]] == [
        "invoice",
        "filing",
        "registration",
        "consulting",
    ]
    for entry in status["by_category"]:
        assert set(entry) == {"category", "waiting", "est_wait_minutes"}
        assert entry["est_wait_minutes"] is None or isinstance(entry["est_wait_minutes"], int)
    assert status["waiting_total"] == sum(c["waiting"] for c in status["by_category"])
    cameras = {c["camera_id"]: c for c in status["cameras"]}
    assert set(cameras) >= {"cam-1", "cam-2", "cam-3"}
    cam1 = cameras["cam-1"]
    assert set(cam1) == {"camera_id", "online", "last_seen", "people_count", "snapshot_url"}
    assert cam1["online"] is True
    assert cam1["people_count"] == 12
    assert cam1["last_seen"].endswith("+08:00")


async def test_unknown_hall_is_404(live: LiveServer) -> None:
    r = await live.http.get("/api/v1/halls/nowhere/status")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NOT_FOUND"


async def test_taken_tickets_show_as_waiting(live: LiveServer) -> None:
    before = {c["category"]: c["waiting"] for c in (await status_of(live))["by_category"]}
    events = [
        {
            "ticket_no": f"C{uuid.uuid4().hex[:8]}",
            "category": "consulting",
            "event": "taken",
            "at": clock.now().isoformat(),
        }
        for _ in range(2)
    ]
    r = await signed_post(live, QUEUE_EVENTS, {"events": events}, device="queue-1")
    assert r.json() == {"accepted": 2, "duplicates": 0}
    after = {c["category"]: c["waiting"] for c in (await status_of(live))["by_category"]}
    assert after["consulting"] == before["consulting"] + 2


async def test_status_is_503_when_redis_is_down(live: LiveServer) -> None:
    board = live.app.ctx.hall_board
    await board.stop()
    board.envelopes.clear()
    real = live.app.ctx.redis
    dead = redis_asyncio.Redis(port=free_port(), socket_connect_timeout=0.5)
    board.redis = live.app.ctx.redis = dead
    try:
        r = await live.http.get("/api/v1/halls/liwan/status")
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "DEPENDENCY_DOWN"
        r = await signed_post(live, HEARTBEAT, {"camera_id": "cam-1", "people_count": 1})
        assert r.status_code == 503
    finally:
        board.redis = live.app.ctx.redis = real
        await dead.aclose()


async def test_websocket_sends_status_at_connect_and_after_a_heartbeat(live: LiveServer) -> None:
    async with connect(ws_url(live)) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), RECV_S))
        assert first["hall_id"] == "liwan"
        r = await signed_post(
            live, HEARTBEAT, {"camera_id": "cam-3", "people_count": 77}, device="cam-3"
        )
        assert r.status_code == 200
        while True:
            update = json.loads(await asyncio.wait_for(ws.recv(), RECV_S))
            cam3 = {c["camera_id"]: c for c in update["cameras"]}["cam-3"]
            if cam3["people_count"] == 77:
                break
        assert cam3["online"] is True


async def test_websocket_to_an_unknown_hall_is_closed(live: LiveServer) -> None:
    async with connect(ws_url(live, "nowhere")) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), RECV_S)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4404


async def close_code(ws: ClientConnection, timeout: float) -> int | None:
    """Read whatever is left until the server closes; the close code it sent."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code


async def slow_websocket(live: LiveServer) -> ClientConnection:
    """A WebSocket client that reads nothing until told to: a small socket receive buffer and a
    queue of one frame, so that what the server sends piles up on the server's side."""
    port = int(live.base_url.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await connect(ws_url(live), sock=sock, max_queue=1, max_size=None)


async def test_a_slow_websocket_is_dropped_while_a_fast_one_keeps_receiving(
    live: LiveServer,
) -> None:
    board = live.app.ctx.hall_board
    await status_of(live)  # the board holds the hall's status
    base = board.envelopes["liwan"]
    slow = await slow_websocket(live)
    try:
        async with connect(ws_url(live), max_size=None) as fast:
            await asyncio.wait_for(fast.recv(), RECV_S)
            for _ in range(500):
                if len(board.clients.get("liwan", ())) == 2:
                    break
                await asyncio.sleep(0.02)
            assert len(board.clients["liwan"]) == 2
            received: list[int] = []

            async def read_fast() -> None:
                async for message in fast:
                    received.append(json.loads(message)["padding_seq"])

            reader = asyncio.create_task(read_fast())
            # Big statuses, so the slow reader's socket buffers fill up quickly.
            padding = "x" * 64 * 1024
            sent: list[int] = []
            seq = int(base["seq"])
            for i in range(2000):
                seq += 1
                status = dict(base["status"], padding=padding, padding_seq=i)
                board.offer(dict(base, seq=seq, status=status))
                sent.append(i)
                await asyncio.sleep(0.002)
                if board.dropped_total:
                    break
            assert board.dropped_total == 1, "the slow reader was never dropped"
            # A few more after the drop: the fast reader still gets them.
            for i in range(len(sent), len(sent) + 10):
                seq += 1
                board.offer(dict(base, seq=seq, status=dict(base["status"], padding_seq=i)))
                sent.append(i)
                await asyncio.sleep(0.01)
            for _ in range(250):
                if received and received[-1] == sent[-1]:
                    break
                await asyncio.sleep(0.02)
            reader.cancel()
            assert received == sent
            assert len(board.clients["liwan"]) == 1
            # The slow reader, reading at last, finds what was under way and then 1013.
            assert await close_code(slow, 5) == 1013
            # The fast one is still served.
            seq += 1
            board.offer(dict(base, seq=seq, status=dict(base["status"], padding_seq=-1)))
            assert json.loads(await asyncio.wait_for(fast.recv(), RECV_S))["padding_seq"] == -1
    finally:
        await slow.close()


async def test_a_websocket_that_never_reads_is_cut_off_and_frees_its_handler(
    live: LiveServer,
) -> None:
    """A reader that never reads again: dropped, and its connection cut after the flush time,
    so nothing of it (queue, sender, handler) stays behind."""
    board = live.app.ctx.hall_board
    await status_of(live)
    base = board.envelopes["liwan"]
    slow = await slow_websocket(live)
    try:
        for _ in range(100):
            if board.clients.get("liwan"):
                break
            await asyncio.sleep(0.02)
        tasks_before = len(live.app.websocket_tasks)
        assert tasks_before >= 1
        padding = "x" * 64 * 1024
        seq = int(base["seq"])
        for i in range(2000):
            seq += 1
            board.offer(dict(base, seq=seq, status=dict(base["status"], padding=padding, n=i)))
            await asyncio.sleep(0.002)
            if board.dropped_total:
                break
        assert board.dropped_total == 1
        assert "liwan" not in board.clients
        # Its handler ends at once; its connection within the flush time (plus a little).
        for _ in range(100):
            if not live.app.websocket_tasks:
                break
            await asyncio.sleep(0.02)
        assert not live.app.websocket_tasks
        # Reading only after the flush time: the connection was cut with frames still unsent,
        # so the stream ends without a close frame.
        await asyncio.sleep(CLOSE_FLUSH_SECONDS + 0.5)
        assert await close_code(slow, 5) is None
    finally:
        await slow.close()


async def test_live_readers_are_closed_with_1001_when_the_server_stops(
    settings: Any,
) -> None:
    async with serve_app(settings) as server:
        clients = [await connect(ws_url(server)) for _ in range(3)]
        for ws in clients:
            # The first status may be computed now (wait estimates from the history): not quick.
            json.loads(await asyncio.wait_for(ws.recv(), 15))
        board = server.app.ctx.hall_board
        for _ in range(100):
            if len(board.clients.get("liwan", ())) == 3:
                break
            await asyncio.sleep(0.02)
        stopping = asyncio.get_running_loop().time()
    # The server is stopped (before_server_stop ran): every reader sees 1001 promptly.
    for ws in clients:
        assert await close_code(ws, 3) == 1001
        await ws.close()
    assert asyncio.get_running_loop().time() - stopping < 5
