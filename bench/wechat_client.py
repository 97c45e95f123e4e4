"""What one jscode2session call costs the caller's CPU, by HTTP client, against a running simulator.

Callers run concurrently in one process on uvloop (as in a Sanic worker), each making calls back to
back for SECONDS after a 2 s warm-up; printed per client: calls/s, client CPU per call and the
share of a core used. Clients:

- ``transport``: the project's ``wechat.transport.Transport`` + ``MiniProgramClient.code2session``
  (httpx + httpcore + anyio + h11, ``ShardedPool``), what a login uses;
- ``raw``: a minimal keep-alive HTTP/1.1 client on asyncio streams (one write, read head, read
  body, json.loads): the floor of "one HTTP call" on this machine;
- ``aiohttp``: only if it is importable (it is not a project dependency).

    .venv/bin/python -m wechat.simulator --port 8903 &    # with latency set through /control
    .venv/bin/python bench/wechat_client.py --base http://127.0.0.1:8903/wechat [--clients 100]

bench/login.py runs it against its own simulator and records the lines with its results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The simulator accepts only the credentials of its run (bench/login.py passes them).
APPID = os.environ.get("BENCH_WECHAT_APPID", "wx-sim-appid")
SECRET = os.environ.get("BENCH_WECHAT_SECRET", "wx-sim-secret")
Call = Callable[[int], Awaitable[Any]]


def cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


class _NoTokens:
    async def get(self, key: Any, fetch: Any) -> str:
        raise AssertionError("code2session needs no access token")


async def transport_client(base: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from wechat.miniprogram import MiniProgramClient
    from wechat.transport import Transport

    transport = Transport(timeout=5.0)
    mp = MiniProgramClient(APPID, SECRET, base, transport, _NoTokens())  # type: ignore[arg-type]

    async def call(i: int) -> Any:
        return await mp.code2session(f"sim:client-{i}")

    return call, transport.aclose


async def raw_client(base: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened: list[asyncio.StreamWriter] = []

    async def call(i: int) -> Any:
        if idle:
            reader, writer = idle.pop()
        else:
            reader, writer = await asyncio.open_connection(host, port)
            opened.append(writer)
        query = urlencode(
            {
                "appid": APPID,
                "secret": SECRET,
                "js_code": f"sim:client-{i}",
                "grant_type": "authorization_code",
            }
        )
        writer.write(
            f"GET {parts.path}/sns/jscode2session?{query} HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        body = json.loads(await reader.readexactly(length))
        idle.append((reader, writer))
        return body

    async def close() -> None:
        for writer in opened:
            writer.close()

    return call, close


async def aiohttp_client(base: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import aiohttp  # type: ignore[import-not-found]

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))

    async def call(i: int) -> Any:
        params = {
            "appid": APPID,
            "secret": SECRET,
            "js_code": f"sim:client-{i}",
            "grant_type": "authorization_code",
        }
        async with session.get(f"{base}/sns/jscode2session", params=params) as response:
            return await response.json(content_type=None)

    return call, session.close


CLIENTS = {"transport": transport_client, "raw": raw_client, "aiohttp": aiohttp_client}


async def measure(kind: str, base: str, clients: int, seconds: float) -> str:
    call, close = await CLIENTS[kind](base)
    done = [0]

    async def caller(until: float) -> None:
        while time.monotonic() < until:
            await call(done[0])
            done[0] += 1

    try:
        await asyncio.gather(*(caller(time.monotonic() + 2) for _ in range(clients)))
        done[0] = 0
        cpu0, t0 = cpu_seconds(), time.monotonic()
        await asyncio.gather(*(caller(t0 + seconds) for _ in range(clients)))
        used, wall = cpu_seconds() - cpu0, time.monotonic() - t0
    finally:
        await close()
    return (
        f"{kind:9s} {clients} concurrent: {done[0] / wall:6.0f} calls/s, client CPU "
        f"{used / done[0] * 1e6:5.0f} us/call, {used / wall:4.0%} of a core"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8903/wechat")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--only", choices=sorted(CLIENTS), help="one client only")
    opts = parser.parse_args()
    import uvloop

    kinds = [opts.only] if opts.only else list(CLIENTS)
    for kind in kinds:
        if kind == "aiohttp" and not opts.only:
            try:
                import aiohttp  # type: ignore[import-not-found]  # noqa: F401
            except ImportError:
                continue
        # Each client in a fresh event loop, so one's leftovers do not load the next.
        print(uvloop.run(measure(kind, opts.base, opts.clients, opts.seconds)), flush=True)


if __name__ == "__main__":
    main()
