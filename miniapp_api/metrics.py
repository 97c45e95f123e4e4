"""Prometheus metrics: requests by route, method and status, and a latency histogram.

With several workers each process counts on its own; when ``PROMETHEUS_MULTIPROC_DIR`` is set
(the CLI sets it for ``serve --workers N``) prometheus-client keeps the counts in shared files
and ``/metrics`` adds them up, so whichever worker answers the scrape reports the whole service.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from sanic import Blueprint, HTTPResponse, Request, Sanic
from sanic.response import BaseHTTPResponse, raw

REQUESTS = Counter(
    "suban_http_requests_total",
    "HTTP requests answered, by route, method and status.",
    ("route", "method", "status"),
)
LATENCY = Histogram(
    "suban_http_request_duration_seconds",
    "Time from the request's arrival to its response, by route and method.",
    ("route", "method"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# Unmatched paths share one label so a scanner cannot blow up the series count.
UNMATCHED = "<unmatched>"


def route_label(request: Request) -> str:
    route = request.route
    if route is None:
        return UNMATCHED
    return "/" + route.path.lstrip("/")


def metrics_registry() -> CollectorRegistry | None:
    """The registry to expose: an aggregate over all workers in multiprocess mode."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return None


bp = Blueprint("metrics")


@bp.get("/metrics", name="metrics")
async def metrics_view(request: Request) -> HTTPResponse:
    registry = metrics_registry()
    payload = generate_latest(registry) if registry is not None else generate_latest()
    return raw(payload, content_type=CONTENT_TYPE_LATEST)


async def start_timer(request: Request) -> None:
    request.ctx.started = time.perf_counter()


async def observe(request: Request, response: BaseHTTPResponse) -> None:
    started = getattr(request.ctx, "started", None)
    route = route_label(request)
    REQUESTS.labels(route, request.method, str(response.status)).inc()
    if started is not None:
        LATENCY.labels(route, request.method).observe(time.perf_counter() - started)


def setup_metrics(app: Sanic[Any, Any]) -> None:
    app.blueprint(bp)
    app.register_middleware(start_timer, "request", priority=99)
    app.register_middleware(observe, "response", priority=99)
