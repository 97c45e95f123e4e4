"""Prometheus metrics: requests by route, method and status, and a latency histogram.

With several workers each process counts on its own; when ``PROMETHEUS_MULTIPROC_DIR`` is set
(the CLI sets it for ``serve --workers N``) prometheus-client keeps the counts in shared files
and ``/metrics`` adds them up, so whichever worker answers the scrape reports the whole service.

A request only bumps plain in-memory tallies (about 1 µs); they are written into the Prometheus
values once a second and before every scrape. Writing each request straight through cost about
6 µs in multiprocess mode (a lock and several mmap writes), some 5% of a bare route.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
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
    flush()
    registry = metrics_registry()
    payload = generate_latest(registry) if registry is not None else generate_latest()
    return raw(payload, content_type=CONTENT_TYPE_LATEST)


# Sanic passes any token as a method; a made-up one must not become a series of its own.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BOUNDS = LATENCY._upper_bounds  # includes +Inf, so every duration has a bucket
FLUSH_EVERY = 1.0

_counts: dict[tuple[str, str, int], int] = {}
# (route, method) -> [count per bucket..., sum of seconds]
_latency: dict[tuple[str, str], list[float]] = {}


def observe(request: Request, status: int, seconds: float) -> None:
    route = route_label(request)
    method = request.method if request.method in _METHODS else "OTHER"
    key = (route, method, status)
    _counts[key] = _counts.get(key, 0) + 1
    tally = _latency.get((route, method))
    if tally is None:
        tally = _latency[(route, method)] = [0.0] * (len(_BOUNDS) + 1)
    tally[bisect.bisect_left(_BOUNDS, seconds)] += 1
    tally[-1] += seconds


def flush() -> None:
    """Write the tallies into the Prometheus values (this worker's share of the totals)."""
    global _counts, _latency
    counts, latency = _counts, _latency
    _counts, _latency = {}, {}
    for (route, method, status), n in counts.items():
        REQUESTS.labels(route, method, str(status)).inc(n)
    for (route, method), tally in latency.items():
        child = LATENCY.labels(route, method)
        # prometheus-client has no "observe many"; its per-bucket values take a bulk increment
        # (tests/miniapp_api/test_ops.py reads the buckets back, so a change there shows).
        for index, hits in enumerate(tally[:-1]):
            if hits:
                child._buckets[index].inc(hits)
        child._sum.inc(tally[-1])


async def _flush_periodically() -> None:
    while True:
        await asyncio.sleep(FLUSH_EVERY)
        flush()


def setup_metrics(app: Sanic[Any, Any]) -> None:
    """The ``/metrics`` route and the flush timer; requests are counted by
    :mod:`miniapp_api.request_context`."""
    app.blueprint(bp)

    @app.after_server_start
    async def start_flushing(app: Sanic[Any, Any]) -> None:
        app.ctx.metrics_flusher = asyncio.create_task(_flush_periodically())

    @app.before_server_stop
    async def stop_flushing(app: Sanic[Any, Any]) -> None:
        task = getattr(app.ctx, "metrics_flusher", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        flush()
