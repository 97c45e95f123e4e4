"""The request id: a well-formed ``X-Request-ID`` or a new one, set for logging, echoed back."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse

from miniapp_api.logging_setup import request_id_var

# A client-supplied id lands in every log line of the request: accept only a short, plain token.
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


async def assign_request_id(request: Request) -> None:
    incoming = request.headers.get("x-request-id")
    rid = incoming if incoming and _SAFE_ID.fullmatch(incoming) else uuid.uuid4().hex
    request.ctx.request_id = rid
    request_id_var.set(rid)


async def echo_request_id(request: Request, response: BaseHTTPResponse) -> None:
    rid = getattr(request.ctx, "request_id", None)
    if rid is not None:
        response.headers["X-Request-ID"] = rid


def setup_request_context(app: Sanic[Any, Any]) -> None:
    # Highest priority: everything after, logging included, sees the id.
    app.register_middleware(assign_request_id, "request", priority=100)
    app.register_middleware(echo_request_id, "response", priority=100)
