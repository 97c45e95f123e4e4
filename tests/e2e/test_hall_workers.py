"""The hall's live status across worker processes (issue 6, Done when): ``suban serve`` with two
workers on PostgreSQL and real Redis; WebSocket readers held by both workers all see a signed
heartbeat within 1 s of its POST, whichever worker took the POST; a replayed signed request and
one 301 s old are refused; on SIGTERM every reader is closed with 1001 (going away)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from hall.device_auth import sign_request
from miniapp_api.settings import DEMO_DEVICE_SECRET
from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV
from tests.processes import suban_with_simulator, tcp_peers_by_process

pytestmark = pytest.mark.skipif(
    BACKEND != "postgres",
    reason="several workers need PostgreSQL (settings refuse SQLite with workers > 1) and the "
    "live status across workers needs a real Redis (pub/sub between processes)",
)
HEARTBEAT = "/api/v1/devices/heartbeat"
LIVE = "/api/v1/halls/liwan/live"
# The demo data was loaded without SUBAN_DEMO_DEVICE_SECRET in the environment: the default.
SECRET = os.environ.get("SUBAN_DEMO_DEVICE_SECRET") or DEMO_DEVICE_SECRET
MIN_READERS = 6
MAX_READERS = 40


@pytest.fixture
def two_workers(database_url: str, tmp_path: Path) -> Iterator[str]:
    """``suban serve`` with two workers on the suite's database and a flushed Redis db."""
    client = redis.Redis.from_url(REAL_REDIS_URL)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        raise RuntimeError(f"real Redis at {REAL_REDIS_URL} does not answer") from exc
    finally:
        client.close()
    with suban_with_simulator(
        tmp_path,
        database_url=database_url,
        redis_url=REAL_REDIS_URL,
        pii_keys=TEST_PII_KEYS_ENV,
        workers=2,
    ) as (base, _sim):
        # /readyz answers as soon as one worker is up; a loaded machine may take seconds more to
        # start the other (and a TERM during its start makes for a slow stop).
        log = tmp_path / "serve.log"
        deadline = time.monotonic() + 60
        while log.read_text(errors="replace").count("Worker ready") < 2:
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        yield base


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def _client_port(ws: ClientConnection) -> int:
    return int(ws.transport.get_extra_info("sockname")[1])


def _workers_of(base: str, readers: list[ClientConnection]) -> dict[int, int]:
    """Worker pid → how many of ``readers`` it holds."""
    ours = {_client_port(ws) for ws in readers}
    peers = tcp_peers_by_process(_port(base))
    return {pid: len(ports & ours) for pid, ports in peers.items() if ports & ours}


@asynccontextmanager
async def readers_on_both_workers(
    base: str,
) -> AsyncIterator[tuple[list[ClientConnection], list[dict[str, Any]]]]:
    """Fresh WebSocket connections until there are ``MIN_READERS`` and both workers hold some
    (the kernel spreads them); yields them with the status each got at connect."""
    url = base.replace("http://", "ws://") + LIVE
    readers: list[ClientConnection] = []
    firsts: list[dict[str, Any]] = []
    try:
        while True:
            ws = await connect(url, open_timeout=15)
            readers.append(ws)
            # The first status may be computed now (wait estimates from the history).
            firsts.append(json.loads(await asyncio.wait_for(ws.recv(), 15)))
            workers = _workers_of(base, readers)
            if len(readers) >= MIN_READERS and len(workers) == 2:
                break
            assert len(readers) < MAX_READERS, f"the readers never spread: {workers}"
        yield readers, firsts
    finally:
        for ws in readers:
            await ws.close()


def _signed(payload: Any, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    headers = sign_request("cam-1", SECRET, "POST", HEARTBEAT, body, timestamp=timestamp)
    return body, headers | {"Content-Type": "application/json"}


def _fresh_http(base: str) -> httpx.AsyncClient:
    # No keep-alive: each request a new connection, so they land on either worker.
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=base, timeout=30, limits=limits, trust_env=False)


def _people_of_cam1(status: dict[str, Any]) -> Any:
    return {c["camera_id"]: c for c in status["cameras"]}["cam-1"]["people_count"]


async def _arrival(ws: ClientConnection, people: int) -> float:
    """When ``ws`` got a status with cam-1 counting ``people`` (loop time)."""
    loop = asyncio.get_running_loop()
    while True:
        status = json.loads(await ws.recv())
        if _people_of_cam1(status) == people:
            return loop.time()


async def test_a_heartbeat_reaches_readers_on_both_workers_within_a_second(
    two_workers: str,
) -> None:
    async with (
        readers_on_both_workers(two_workers) as (readers, firsts),
        _fresh_http(two_workers) as http,
    ):
        assert all(first["hall_id"] == "liwan" for first in firsts)
        people = 100 + int(time.time() * 1000) % 800
        assert people not in {_people_of_cam1(first) for first in firsts}
        waits = [asyncio.create_task(_arrival(ws, people)) for ws in readers]
        await asyncio.sleep(0.1)  # every reader is waiting
        body, headers = _signed({"camera_id": "cam-1", "people_count": people})
        loop = asyncio.get_running_loop()
        posted = loop.time()
        r = await http.post(HEARTBEAT, content=body, headers=headers)
        assert r.status_code == 200, r.text
        try:
            arrivals = await asyncio.wait_for(asyncio.gather(*waits), 5)
        finally:
            for task in waits:
                task.cancel()
        late = [round(at - posted, 3) for at in arrivals if at - posted >= 1.0]
        assert not late, f"readers got the heartbeat after {late} s"
        # The worker that did not take the POST serves the new count from memory too.
        for _ in range(4):
            status = (await http.get("/api/v1/halls/liwan/status")).json()
            assert _people_of_cam1(status) == people


async def test_a_replayed_or_stale_signed_request_is_refused_by_every_worker(
    two_workers: str,
) -> None:
    async with _fresh_http(two_workers) as http:
        body, headers = _signed({"camera_id": "cam-1", "people_count": 3})
        first = await http.post(HEARTBEAT, content=body, headers=headers)
        assert first.status_code == 200, first.text
        # The same request again, over fresh connections: refused whichever worker takes it.
        for _ in range(4):
            replay = await http.post(HEARTBEAT, content=body, headers=headers)
            assert replay.status_code == 401, replay.text
            assert replay.json()["error"]["code"] == "DEVICE_SIGNATURE_INVALID"
        body, headers = _signed(
            {"camera_id": "cam-1", "people_count": 4}, timestamp=int(time.time()) - 301
        )
        stale = await http.post(HEARTBEAT, content=body, headers=headers)
        assert stale.status_code == 401, stale.text
        assert stale.json()["error"]["code"] == "DEVICE_SIGNATURE_INVALID"


async def _close_code(ws: ClientConnection, timeout: float) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code


async def test_sigterm_closes_every_reader_with_1001(two_workers: str) -> None:
    async with readers_on_both_workers(two_workers) as (readers, _firsts):
        workers = _workers_of(two_workers, readers)
        # The workers' process group is led by the `suban serve` process: TERM to it alone, as
        # systemd does.
        main = {os.getpgid(pid) for pid in workers}
        assert len(main) == 1
        loop = asyncio.get_running_loop()
        stopping = loop.time()
        os.kill(main.pop(), signal.SIGTERM)
        codes = await asyncio.gather(*(_close_code(ws, 10) for ws in readers))
        took = loop.time() - stopping
    assert codes == [1001] * len(readers)
    assert took < 5, f"readers were closed {took:.1f} s after SIGTERM"
