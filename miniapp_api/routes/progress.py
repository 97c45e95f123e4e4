"""Public progress lookup (文书进度查询) by tracking number and check.

No login: whoever holds the tracking number and the last four characters of the applicant's ID
number (or of the taxpayer id) sees where the filing stands. A wrong check is the same 404 as an
unknown number, so the lookup tells nothing about which numbers exist, and both the asking
address and the number are rate limited against guessing. Timeline notes (a reviewer's reasons)
stay out of the public answer: a company's taxpayer id is public, so this check is weaker than a
login.

While Redis is down the lookup still answers, from PostgreSQL: the two limits are then counted
in this worker's memory instead (see :class:`LocalLimits`), and nothing is cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from auth.ratelimit import Limit, Verdict
from forms import progress
from forms.tracking import normalize_tracking_no
from miniapp_api.callers import keyring, limiter, too_many
from miniapp_api.errors import REDIS_DOWN_ERRORS, NotFound
from miniapp_api.openapi_docs import doc
from miniapp_api.request_context import client_address
from miniapp_api.validation import parse_query

bp = Blueprint("progress")

WINDOW = 600
PER_NUMBER = Limit(10, WINDOW)


class ProgressQuery(BaseModel):
    tracking_no: str = Field(min_length=1, max_length=40)
    check: str = Field(min_length=4, max_length=4, pattern=r"^[0-9A-Za-z]{4}$")


class ProgressStep(BaseModel):
    status: str
    status_label: str
    action: str
    at: datetime
    actor_kind: str
    note: str | None = Field(
        description="always null here: reviewers' notes stay out of the lookup"
    )


class ProgressView(BaseModel):
    """forms/progress.py's public ``view``, as cached and answered."""

    tracking_no: str
    form_title: str
    status: str
    status_label: str
    timeline: list[ProgressStep]


class LocalLimits:
    """The lookup's limits counted in one worker's memory, for while Redis is down.

    Why not answer 503 instead: the lookup is how taxpayers follow a filing without logging in,
    and PostgreSQL can still answer it. Why this is safe enough: each worker enforces the same
    limits on its own, so a guesser gets at most ``workers`` times the usual attempts, and only
    for the minutes Redis is away. Fixed windows like the Redis script's; the table is cleared
    when full, which can only ever let more through, never lock someone out.
    """

    def __init__(self, max_keys: int = 50_000, clock: Callable[[], float] = time.monotonic):
        self._max_keys = max_keys
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def hit_each(self, counts: Sequence[tuple[str, str, Limit]]) -> Verdict:
        now = self._clock()
        if len(self._windows) + len(counts) > self._max_keys:
            self._windows.clear()
        retry_after = 0
        for bucket, key, limit in counts:
            name = f"{bucket}:{key}"
            started, count = self._windows.get(name, (now, 0))
            if now - started >= limit.window:
                started, count = now, 0
            count += 1
            self._windows[name] = (started, count)
            if count > limit.limit:
                retry_after = max(retry_after, max(1, int(started + limit.window - now)))
        return Verdict(retry_after == 0, retry_after)


class _NoCache:
    """Stands in for Redis as the answer cache while Redis is down: stores nothing."""

    async def set(self, *args: Any, **kwargs: Any) -> None:
        return None


def _local_limits(request: Request) -> LocalLimits:
    # Per worker on purpose: it exists only for when the shared counters are out of reach.
    limits: LocalLimits | None = getattr(request.app.ctx, "progress_local_limits", None)
    if limits is None:
        limits = request.app.ctx.progress_local_limits = LocalLimits()
    return limits


def _not_found() -> NotFound:
    return NotFound("未找到匹配的文书，请核对受理编号和校验码")


@bp.get("/progress", name="progress_lookup")
# Metadata only (see openapi_docs.doc): the benchmarked handler below is what the route runs.
@doc(
    "Public progress lookup by tracking number and check",
    "forms",
    query=ProgressQuery,
    answer=ProgressView,
    description="`check`: the last 4 characters of the applicant's ID number or of the taxpayer "
    "id. A wrong check is the same 404 as an unknown number; both the asking address and the "
    "number are rate limited (429).",
)
async def lookup(request: Request) -> HTTPResponse:
    query = parse_query(request, ProgressQuery)
    tracking_no = normalize_tracking_no(query.tracking_no)
    per_address = Limit(request.app.ctx.settings.progress_ip_limit, WINDOW)
    counts = [("progress_ip", client_address(request), per_address)]
    if tracking_no is not None:
        counts.append(("progress_no", tracking_no, PER_NUMBER))
    cache: Any = request.app.ctx.redis
    try:
        # The limits and the cached answer in one round trip: the common case touches no SQL.
        verdict, cached = await limiter(request).hit_each(
            counts, also_get=progress.cache_key(tracking_no) if tracking_no else None
        )
    except REDIS_DOWN_ERRORS:
        verdict, cached, cache = _local_limits(request).hit_each(counts), None, _NoCache()
    if not verdict.allowed:
        raise too_many(verdict.retry_after, "查询过于频繁，请稍后再试")
    if tracking_no is None:
        raise _not_found()
    entry = await progress.load(cache, tracking_no, cached)
    if entry is None or not progress.fits(entry, tracking_no, query.check, keyring(request)):
        raise _not_found()
    return json(entry["view"])
