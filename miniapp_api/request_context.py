"""Per-request bookkeeping, in one request and one response middleware: the request id (a
well-formed ``X-Request-ID`` or a new one, set for logging and echoed back) and the timing that
feeds the metrics. Kept to one pair on purpose: every middleware costs on every request."""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any

from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse

from miniapp_api import metrics
from miniapp_api.logging_setup import request_id_var

# A client-supplied id lands in every log line of the request: accept only a short, plain token.
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# A random per-process prefix and a counter: unique across workers and restarts, and far cheaper
# than uuid4 (a getrandom syscall per request).
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):016x}"


async def begin_request(request: Request) -> None:
    request.ctx.started = time.perf_counter()
    incoming = request.headers.get("x-request-id")
    rid = incoming if incoming and _SAFE_ID.fullmatch(incoming) else new_request_id()
    request.ctx.request_id = rid
    request_id_var.set(rid)


async def end_request(request: Request, response: BaseHTTPResponse) -> None:
    rid = getattr(request.ctx, "request_id", None)
    if rid is not None:
        response.headers["X-Request-ID"] = rid
    started = getattr(request.ctx, "started", None)
    if started is not None:
        metrics.observe(request, response.status, time.perf_counter() - started)


def setup_request_context(app: Sanic[Any, Any]) -> None:
    # Highest priority: everything after, logging included, sees the id.
    app.register_middleware(begin_request, "request", priority=100)
    app.register_middleware(end_request, "response", priority=100)
