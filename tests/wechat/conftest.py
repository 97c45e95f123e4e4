"""Fixtures for the wechat package: the simulator as a separate server process on loopback, so
every client call goes through httpx over real TCP, plus clients wired to it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio
from fakeredis import FakeAsyncRedis

from tests.processes import free_port, running_process
from wechat import MiniProgramClient, RedisTokenStore, RetryPolicy, Transport, WeComClient
from wechat.simulator import SimulatorConfig

SIM = SimulatorConfig()
# Fast backoff keeps retry tests quick; the policy itself is what is under test, not its delays.
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="session")
def simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of ``python -m wechat.simulator`` running for the whole session."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_process(
        [sys.executable, "-m", "wechat.simulator", "--host", "127.0.0.1", "--port", str(port)],
        ready_url=f"{base}/control/counters",
        log_path=tmp_path_factory.mktemp("simulator") / "simulator.log",
    ):
        yield base


class SimControl:
    """The simulator's control API, as a test uses it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(f"/control{path}", json=body or {})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    async def reset(self) -> None:
        await self._post("/reset")
        await self.http.delete("/control/callback")

    async def counters(self) -> dict[str, int]:
        response = await self.http.get("/control/counters")
        counters: dict[str, int] = response.json()["counters"]
        return counters

    async def fault(self, endpoint: str, kind: str, count: int = 1, **extra: Any) -> None:
        await self._post("/faults", {"endpoint": endpoint, "kind": kind, "count": count, **extra})

    async def latency(self, endpoint: str, ms: int) -> None:
        await self._post("/latency", {"endpoint": endpoint, "ms": ms})

    async def expire_tokens(self) -> int:
        expired: int = (await self._post("/tokens/expire"))["expired"]
        return expired

    async def decide(self, sp_no: str, decision: str, **body: Any) -> dict[str, Any]:
        return await self._post(f"/approvals/{sp_no}/{decision}", body)

    async def messages(self, channel: str) -> list[dict[str, Any]]:
        response = await self.http.get("/control/messages", params={"channel": channel})
        sent: list[dict[str, Any]] = response.json()["messages"]
        return sent

    async def set_callback(self, url: str, token: str, aes_key: str) -> None:
        response = await self.http.put(
            "/control/callback", json={"url": url, "token": token, "aes_key": aes_key}
        )
        assert response.status_code == 200, response.text


@pytest.fixture
async def sim(simulator_url: str) -> AsyncIterator[SimControl]:
    """Control of the shared simulator, reset before each test."""
    async with httpx.AsyncClient(base_url=simulator_url, timeout=10, trust_env=False) as http:
        control = SimControl(http)
        await control.reset()
        yield control


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with Transport(timeout=2.0, retry=FAST_RETRY, trust_env=False) as shared:
        yield shared


@pytest.fixture
def token_store(redis_client: redis_asyncio.Redis) -> RedisTokenStore:
    return RedisTokenStore(redis_client, lock_ttl=5, wait_timeout=8)


def make_miniprogram(
    simulator_url: str, transport: Transport, tokens: RedisTokenStore, secret: str = SIM.secret
) -> MiniProgramClient:
    return MiniProgramClient(SIM.appid, secret, f"{simulator_url}/wechat", transport, tokens)


def make_wecom(
    simulator_url: str, transport: Transport, tokens: RedisTokenStore, secret: str = SIM.corp_secret
) -> WeComClient:
    return WeComClient(
        SIM.corp_id, secret, SIM.agent_id, f"{simulator_url}/wecom", transport, tokens
    )


@pytest.fixture
def miniprogram(
    sim: SimControl, simulator_url: str, transport: Transport, token_store: RedisTokenStore
) -> MiniProgramClient:
    return make_miniprogram(simulator_url, transport, token_store)


@pytest.fixture
def wecom(
    sim: SimControl, simulator_url: str, transport: Transport, token_store: RedisTokenStore
) -> WeComClient:
    return make_wecom(simulator_url, transport, token_store)


@pytest.fixture(params=["real_redis", "redis_client"])
def shared_redis(request: pytest.FixtureRequest) -> redis_asyncio.Redis:
    """Each backend the single-flight guarantee must hold on: real Redis, and the backend's own
    (fakeredis with Lua on the embedded backend)."""
    client: redis_asyncio.Redis = request.getfixturevalue(request.param)
    return client


def second_connection(client: redis_asyncio.Redis) -> redis_asyncio.Redis:
    """Another client of the same Redis, as a second worker process would have."""
    kwargs = dict(client.connection_pool.connection_kwargs)
    if isinstance(client, FakeAsyncRedis):
        # fakeredis shares one in-process server between clients of the same host:port.
        return FakeAsyncRedis(
            host=kwargs["host"],
            port=kwargs["port"],
            version=kwargs["version"],
            server_type=kwargs["server_type"],
        )
    return redis_asyncio.Redis(**kwargs)


# ------------------------------------------------------------------------ callback receiver


@dataclass
class ReceivedRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackReceiver:
    """A minimal HTTP server standing in for the app's /wecom/callback: records each request
    and answers ``success`` as the app would."""

    url: str = ""
    received: asyncio.Queue[ReceivedRequest] = field(default_factory=asyncio.Queue)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        await self.received.put(ReceivedRequest(method, target, headers, body))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n"
            b"Connection: close\r\n\r\nsuccess"
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def callback_receiver() -> AsyncIterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/wecom/callback"
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()
