"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import logging
from typing import Any

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json
from sanic_ext import openapi

from miniapp_api.database import ping_database
from miniapp_api.errors import DependencyDown
from miniapp_api.redis_setup import ping_redis

log = logging.getLogger("suban.ops")

bp = Blueprint("ops")

_NAMES = {"database": "数据库", "redis": "Redis"}


@bp.get("/healthz", name="healthz")
@openapi.definition(summary="Liveness: 200 while the process lives", tag="operations")
async def healthz(request: Request) -> HTTPResponse:
    return json({"status": "ok"})


@bp.get("/readyz", name="readyz")
@openapi.definition(
    summary="Readiness: 200 when the database and Redis answer, else 503 naming which",
    tag="operations",
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
