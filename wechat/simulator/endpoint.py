"""What every simulated endpoint does before its own logic: count the call, add configured latency,
play an injected fault, check the access token. Plus Tencent-shaped answers."""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Request
from sanic.exceptions import BadRequest
from sanic.response import HTTPResponse, empty, json

from wechat.simulator.faults import Fault, FaultKind
from wechat.simulator.state import SimulatorState

Handler = Callable[[Request], Awaitable[HTTPResponse]]


def wechat_error(errcode: int, errmsg: str) -> HTTPResponse:
    # Tencent appends a request id to errmsg; callers must not parse errmsg, so neither do we.
    return json({"errcode": errcode, "errmsg": f"{errmsg} rid: {secrets.token_hex(6)}"})


def wechat_ok(**fields: Any) -> HTTPResponse:
    return json({"errcode": 0, "errmsg": "ok", **fields})


def json_body(request: Request) -> dict[str, Any] | None:
    """The JSON object posted, or None when the body is not one (Tencent's 47001)."""
    try:
        data = request.json
    except BadRequest:
        return None
    return data if isinstance(data, dict) else None


def posted(request: Request) -> dict[str, Any]:
    """The JSON object a ``posts_json`` endpoint received (checked by :func:`simulated`)."""
    body: dict[str, Any] = request.ctx.posted
    return body


def simulated(
    state: SimulatorState, endpoint: str, *, kind: str | None = None, posts_json: bool = False
) -> Callable[[Handler], Handler]:
    """Wraps a handler of ``endpoint``; with ``kind`` ("miniprogram" / "wecom") the call must
    carry a live access token issued for that API; with ``posts_json`` its body must be a JSON
    object (else Tencent's 47001), which the handler finds as ``posted(request)``."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: Request) -> HTTPResponse:
            state.counters[endpoint] += 1
            latency = state.latency_ms.get(endpoint, 0)
            if latency > 0:
                await asyncio.sleep(latency / 1000)
            fault = state.take_fault(endpoint)
            if fault is not None:
                return await _play(request, fault)
            if kind is not None:
                check = state.check_token(kind, request.args.get("access_token"))
                if check.errcode:
                    return wechat_error(check.errcode, check.errmsg)
            if posts_json:
                body = json_body(request)
                if body is None:
                    return wechat_error(47001, "data format error")
                request.ctx.posted = body
            return await handler(request)

        return run

    return decorate


async def _play(request: Request, fault: Fault) -> HTTPResponse:
    if fault.kind is FaultKind.ERRCODE:
        return wechat_error(fault.errcode, fault.errmsg)
    if fault.kind is FaultKind.HTTP:
        return json({"error": "simulated HTTP failure"}, status=fault.status)
    if fault.kind is FaultKind.HANG:
        await asyncio.sleep(fault.ms / 1000)
        return wechat_error(-1, "system error (after a simulated hang)")
    # DROP: close without a response. Sanic cancels this handler once it sees the connection
    # gone; the sleep only waits for that.
    request.transport.close()
    await asyncio.sleep(60)
    return empty(status=500)
