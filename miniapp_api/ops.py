"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from miniapp_api.database import ping_database
from miniapp_api.errors import DependencyDown
from miniapp_api.openapi_docs import doc
from miniapp_api.redis_setup import ping_redis

log = logging.getLogger("suban.ops")

bp = Blueprint("ops")

_NAMES = {"database": "数据库", "redis": "Redis"}


class Alive(BaseModel):
    status: Literal["ok"]


class ReadyChecks(BaseModel):
    database: Literal["ok"]
    redis: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: ReadyChecks


# For probes, not clients: none of the API's error answers apply (no input, no session), so only
# readiness has one, its 503 naming what is down in ``error.failing``.
@bp.get("/healthz", name="healthz")
@doc("Liveness: 200 while the process lives", "ops", answer=Alive, base_errors=())
async def healthz(request: Request) -> HTTPResponse:
    return json({"status": "ok"})


@bp.get("/readyz", name="readyz")
@doc(
    "Readiness: 200 when the database and Redis answer, else 503 naming which",
    "ops",
    answer=Ready,
    base_errors=(503,),
    description="503 DEPENDENCY_DOWN with `error.failing`: `database`, `redis` or both.",
)
async def readyz(request: Request) -> HTTPResponse:
    checks: dict[str, Any] = {}
    try:
        await ping_database()
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the kind goes to the log only
        log.warning("readiness: database does not answer (%s)", type(exc).__name__)
        checks["database"] = "down"
    try:
        await ping_redis(request.app.ctx.redis)
        checks["redis"] = "ok"
    except Exception as exc:
        log.warning("readiness: redis does not answer (%s)", type(exc).__name__)
        checks["redis"] = "down"
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        raise DependencyDown("依赖服务不可用：" + "、".join(_NAMES[n] for n in failing), failing)
    return json({"status": "ready", "checks": checks})
