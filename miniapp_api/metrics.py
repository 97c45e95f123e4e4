"""Prometheus metrics: requests by route, method and status, and a latency histogram.

With several workers each process counts on its own; when ``PROMETHEUS_MULTIPROC_DIR`` is set
(the CLI sets it for ``serve --workers N``) prometheus-client keeps the counts in shared files
and ``/metrics`` adds them up, so whichever worker answers the scrape reports the whole service.
"""

from __future__ import annotations

import os
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
from sanic.response import raw

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


# Label lookups cost more than the increments themselves (a lock and a tuple per call):
# children are looked up once per (route, method, status) and kept.
_request_children: dict[tuple[str, str, int], Any] = {}
_latency_children: dict[tuple[str, str], Any] = {}


# Sanic passes any token as a method; a made-up one must not become a series of its own.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe(request: Request, status: int, seconds: float) -> None:
    route = route_label(request)
    method = request.method if request.method in _METHODS else "OTHER"
    key = (route, method, status)
    counter = _request_children.get(key)
    if counter is None:
        counter = _request_children[key] = REQUESTS.labels(route, method, str(status))
    counter.inc()
    histogram = _latency_children.get((route, method))
    if histogram is None:
        histogram = _latency_children[(route, method)] = LATENCY.labels(route, method)
    histogram.observe(seconds)


def setup_metrics(app: Sanic[Any, Any]) -> None:
    """The ``/metrics`` route; the per-request counting is done by :mod:`request_context`."""
    app.blueprint(bp)
