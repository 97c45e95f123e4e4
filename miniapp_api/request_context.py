"""Per-request bookkeeping: the request id (a well-formed ``X-Request-ID`` or a new one, echoed
back) and the timing that feeds the metrics.

``/healthz`` must stay close to a bare Sanic route, and Sanic middleware is dear (each one
dispatches two signals per request; bench/README.md has the measurements). So there is one
response middleware and no request middleware: the id is made on first use (a log line, an
error, the response) from Sanic's current-request context variable, and the start time is the
one Sanic's HTTP/1 parser takes when the request head arrives. (Overriding ``Request.respond``
instead measured slower than this middleware.)
"""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import ServerError
from sanic.response import BaseHTTPResponse

from miniapp_api import metrics
from miniapp_api.logging_setup import request_id_var, set_request_id_source

# A client-supplied id lands in every log line of the request: accept only a short, plain token.
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# A random per-process prefix and a counter: unique across workers and restarts, and far cheaper
# than uuid4 (a getrandom syscall per request).
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):016x}"


def request_id_of(request: Request) -> str:
    """The request's id, made (and kept on the request) on first use."""
    rid: str | None = getattr(request.ctx, "request_id", None)
    if rid is None:
        incoming = request.headers.get("x-request-id")
        rid = incoming if incoming and _SAFE_ID.fullmatch(incoming) else new_request_id()
        request.ctx.request_id = rid
    return rid


def current_request_id() -> str:
    """The id of the request being handled, else whatever the context set (a job), else "-"."""
    try:
        request = Request.get_current()
    except ServerError:
        return request_id_var.get()
    return request_id_of(request)


# Answers under these carry personal data: no proxy or browser cache may keep them (a route may
# still say more, e.g. "private, no-store").
_PRIVATE_PREFIXES = ("/api/v1/mp/", "/api/v1/staff/")
HSTS = "max-age=31536000; includeSubDomains"


async def end_request(request: Request, response: BaseHTTPResponse) -> None:
    headers = response.headers
    headers["X-Request-ID"] = request_id_of(request)
    # No answer may be sniffed into something else (an uploaded file into HTML, JSON into script).
    headers["X-Content-Type-Options"] = "nosniff"
    if request.path.startswith(_PRIVATE_PREFIXES):
        headers.setdefault("Cache-Control", "no-store")
    started = getattr(request.stream, "perft0", None)
    if started is not None:
        metrics.observe(request, response.status, time.perf_counter() - started)


async def end_request_behind_proxy(request: Request, response: BaseHTTPResponse) -> None:
    """:func:`end_request`, plus HSTS when the trusted proxy says the client came over TLS
    (X-Forwarded-Proto, read by Sanic only with PROXIES_COUNT >= 1). Never on plain HTTP: a
    browser ignores it there, and a forged header must not pin a host that has no TLS."""
    await end_request(request, response)
    if request.scheme == "https":
        response.headers["Strict-Transport-Security"] = HSTS


def setup_request_context(app: Sanic[Any, Any]) -> None:
    set_request_id_source(current_request_id)
    # Only behind a proxy can a request have come over TLS (the app itself serves plain HTTP);
    # without one, /healthz pays nothing for the check.
    behind_proxy = app.config.PROXIES_COUNT > 0
    middleware = end_request_behind_proxy if behind_proxy else end_request
    app.register_middleware(middleware, "response", priority=100)


def client_address(request: Request) -> str:
    """The client's address for per-address limits. Behind ``SUBAN_PROXIES_COUNT`` proxies Sanic
    reads it from X-Forwarded-For (``remote_addr``); ``request.ip`` would be the proxy's, putting
    every client behind nginx into one bucket."""
    return request.remote_addr or request.ip or "unknown"
