"""The audit trail for staff with ``audit.view``: the newest events and the hash chain's state."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from auth import audit, audit_chain
from auth.audit import Actor
from auth.models import AuditEvent
from miniapp_api.openapi_docs import doc
from miniapp_api.request_context import request_id_of
from miniapp_api.sessions_setup import require_staff
from miniapp_api.validation import parse_query

bp = Blueprint("staff_audit", url_prefix="/staff")
PERMISSION = "audit.view"
# Walking the chain reads every row; an auditor paging through the log needs it once, not on
# every page. `suban audit verify` always walks it in full.
CHAIN_CHECK_TTL = 30.0
_checked: tuple[float, audit_chain.ChainReport] | None = None


class AuditQuery(BaseModel):
    since: datetime | None = None
    # ``kind`` or ``kind:id`` as events name actors (mp:12, staff:3, system).
    actor: str | None = Field(default=None, max_length=80, pattern=r"^[a-z]+(:[\w.@-]+)?$")
    limit: int = Field(default=100, ge=1, le=500)


def _event(e: AuditEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "actor": f"{e.actor_kind}:{e.actor_id}" if e.actor_id else e.actor_kind,
        "action": e.action,
        "target": e.target,
        "outcome": e.outcome,
        "request_id": e.request_id,
        "details": e.details,
        "hash": e.hash,
    }


async def _chain_state() -> audit_chain.ChainReport:
    global _checked
    now = time.monotonic()
    if _checked is None or now - _checked[0] > CHAIN_CHECK_TTL:
        _checked = (now, await audit_chain.verify_chain())
    return _checked[1]


@bp.get("/audit", name="audit")
@doc(
    "The audit log, newest first, with the state of its hash chain",
    "staff",
    auth="staff",
    query=AuditQuery,
)
async def audit_log(request: Request) -> HTTPResponse:
    caller = await require_staff(request, PERMISSION)
    query = parse_query(request, AuditQuery)
    events = await audit.events(since=query.since, actor=query.actor, limit=query.limit)
    chain = await _chain_state()
    await audit.record(
        "audit.view",
        Actor("staff", caller.user.id, request_id_of(request)),
        details={"actor_filter": query.actor, "count": len(events)},
    )
    state = chain.as_dict()
    state["problems"] = state["problems"][:20]
    return json({"chain": state, "events": [_event(e) for e in events]})
