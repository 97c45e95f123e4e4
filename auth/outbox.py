"""The outbox: what must be announced about a change, written in the change's own transaction and
delivered afterwards by a background job, with retries and backoff.

Delivery is at-least-once. A worker *claims* a row with a conditional UPDATE (it owns the row
until ``locked_until``) and counts the attempt in the same statement; the attempt count is the
claim's fence, so a worker whose lease ran out can no longer mark the row. Two workers therefore
never send the same row at the same time. What cannot be prevented is a crash (or a lease running
out) after Tencent accepted a message and before it was marked delivered: the row is claimed again
and the message goes out a second time. Tencent offers no idempotency key for these sends, so the
receiver sees the rare duplicate; the dedupe key only keeps us from *writing* one announcement
twice.

Payloads: channel ``subscribe`` holds ``{"data": {template key: value}, "page": "..."}`` with the
template id in ``template``; channel ``wecom`` holds the body of the WeCom message type named in
``template`` (e.g. ``textcard``: ``{"title", "description", "url", "btntxt"}``).

No WeChat import here (auth imports nothing of ours): a :data:`Sender` turns its own failures into
:class:`DeliveryFailed`, saying whether retrying can help; anything else it raises is treated as
transient.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from auth import clock
from auth.models import OutboxMessage

log = logging.getLogger("suban.outbox")

CHANNELS = ("subscribe", "wecom")

# Wait before attempt n+1 after attempt n failed. Short first (a blip at Tencent or on our
# network), then longer so an outage of hours is ridden out without hammering the API; after the
# last entry's retry fails the message is given up (status failed), about 7.7 hours after the
# first attempt, when a "your request was approved" notice has lost most of its point.
BACKOFF: tuple[timedelta, ...] = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
ERROR_LENGTH = 255  # OutboxMessage.last_error
CLAIM_ROUNDS = 3


class DeliveryFailed(Exception):
    """A sender could not deliver. ``reason`` is stored on the row, so it must carry no personal
    data (an errcode and a class name, not the recipient or the text); ``permanent`` says that
    retrying cannot help (the user refused the subscription, the openid is invalid, …)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


Sender = Callable[[OutboxMessage], Awaitable[None]]
"""Sends one message; returns when the receiver accepted it, raises otherwise."""


@dataclass(frozen=True)
class DeliveryReport:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    # Claimed, but the lease ran out before sending or another worker took the row over: left
    # alone for whoever holds it now.
    abandoned: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.claimed + other.claimed,
            self.delivered + other.delivered,
            self.retrying + other.retrying,
            self.failed + other.failed,
            self.abandoned + other.abandoned,
        )


async def enqueue_message(
    *,
    channel: str,
    recipient: str,
    template: str,
    payload: Mapping[str, Any],
    dedupe_key: str,
    now: datetime,
    using_db: BaseDBAsyncClient | None = None,
) -> None:
    """Write a message to deliver, due at once. Call it inside the transaction that makes the
    change it announces (tortoise finds the transaction by itself; ``using_db`` names it
    explicitly). A ``dedupe_key`` already present is a no-op.

    The insert is ``INSERT … ON CONFLICT DO NOTHING`` (``INSERT OR IGNORE`` on SQLite): a
    check-then-insert could still collide with a concurrent transaction, and on PostgreSQL the
    unique violation would abort the caller's whole transaction."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown outbox channel {channel!r}")
    row = OutboxMessage(
        channel=channel,
        recipient=recipient,
        template=template,
        payload=dict(payload),
        dedupe_key=dedupe_key,
        next_attempt_at=clock.local(now),
    )
    await OutboxMessage.bulk_create([row], ignore_conflicts=True, using_db=using_db)


def retry_delay(attempts: int) -> timedelta | None:
    """How long to wait after ``attempts`` failed attempts; None once they are used up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return BACKOFF[max(attempts, 1) - 1]


async def claim_due(now: datetime, *, limit: int, lease_seconds: float) -> list[OutboxMessage]:
    """Claim up to ``limit`` due messages until ``now + lease_seconds``, oldest due first.

    Candidates are read without a lock; each one is then taken by a conditional UPDATE that only
    succeeds if nobody claimed it meanwhile (still pending, still due, lease free, attempt count
    unchanged). One affected row means it is ours. The same UPDATE counts the attempt, so a
    message that keeps killing its worker still runs out of attempts."""
    now = clock.local(now)
    until = now + timedelta(seconds=lease_seconds)
    free = Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    claimed: list[OutboxMessage] = []
    # Racing claimers read the same candidates, so a loser may come back nearly empty while
    # more is due; it reads again (the rows just taken are no longer free) a few times.
    for _ in range(CLAIM_ROUNDS):
        candidates = (
            await OutboxMessage.filter(free, status="pending", next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .limit(limit - len(claimed))
        )
        lost = False
        for row in candidates:
            taken = await OutboxMessage.filter(
                free,
                id=row.id,
                status="pending",
                attempts=row.attempts,
                next_attempt_at__lte=now,
            ).update(locked_until=until, attempts=row.attempts + 1)
            if taken == 1:
                row.locked_until = until
                row.attempts += 1
                claimed.append(row)
            else:
                lost = True
        if not lost or len(claimed) >= limit:
            break
    return claimed


def _owned(message: OutboxMessage) -> Any:
    # The claim's fence: still pending with the attempt count our claim wrote. A worker that
    # lost its lease to another finds the count moved on and changes nothing.
    return OutboxMessage.filter(id=message.id, status="pending", attempts=message.attempts)


async def mark_delivered(message: OutboxMessage, now: datetime) -> bool:
    """Record the delivery; False if the claim was lost (another worker holds the row now)."""
    now = clock.local(now)
    updated: int = await _owned(message).update(
        status="delivered", delivered_at=now, locked_until=None, last_error=None
    )
    if updated:
        message.status, message.delivered_at, message.locked_until = "delivered", now, None
        message.last_error = None
    return updated == 1


async def mark_failed(
    message: OutboxMessage, now: datetime, error: str, *, permanent: bool
) -> bool:
    """Record a failed attempt: retry after the backoff, or give up (status failed) when the
    failure is permanent or the attempts are used up. ``error`` must carry no personal data; it
    is cut to the column's length. False if the claim was lost."""
    now = clock.local(now)
    error = error[:ERROR_LENGTH]
    delay = None if permanent else retry_delay(message.attempts)
    changes: dict[str, Any] = {"locked_until": None, "last_error": error}
    if delay is None:
        changes["status"] = "failed"
    else:
        changes["next_attempt_at"] = now + delay
    updated: int = await _owned(message).update(**changes)
    if updated:
        for name, value in changes.items():
            setattr(message, name, value)
    return updated == 1


async def _deliver_one(
    message: OutboxMessage, sender: Sender, now_fn: Callable[[], datetime], send_timeout: float
) -> DeliveryReport:
    if message.attempts > MAX_ATTEMPTS:
        # Claimed again after its last attempt's worker vanished mid-send: give up rather than
        # keep a message that kills workers going round forever.
        await mark_failed(message, now_fn(), "attempts used up (worker lost)", permanent=True)
        return DeliveryReport(claimed=1, failed=1)
    if message.locked_until is None or now_fn() >= message.locked_until:
        # Another worker may claim it from now on; sending as well would send it twice.
        return DeliveryReport(claimed=1, abandoned=1)
    try:
        # Bounded below the lease, so a hung send cannot outlive the claim.
        await asyncio.wait_for(sender(message), send_timeout)
    except DeliveryFailed as exc:
        error, permanent = exc.reason, exc.permanent
    except TimeoutError:
        error, permanent = "send timed out", False
    except Exception as exc:
        # A bug or an unexpected failure: retried like a transient one and bounded by the
        # attempts; only the type is stored, since an exception's text may quote the payload.
        log.exception("outbox message %s: sender raised", message.id)
        error, permanent = f"unexpected {type(exc).__name__}", False
    else:
        if await mark_delivered(message, now_fn()):
            return DeliveryReport(claimed=1, delivered=1)
        log.warning("outbox message %s was delivered after its claim passed on", message.id)
        return DeliveryReport(claimed=1, abandoned=1)
    if not await mark_failed(message, now_fn(), error, permanent=permanent):
        return DeliveryReport(claimed=1, abandoned=1)
    if message.status == "failed":
        log.warning(
            "outbox message %s (%s) given up after %d attempts: %s",
            message.id,
            message.channel,
            message.attempts,
            error,
        )
        return DeliveryReport(claimed=1, failed=1)
    log.info("outbox message %s attempt %d failed: %s", message.id, message.attempts, error)
    return DeliveryReport(claimed=1, retrying=1)


async def deliver_due(
    sender: Sender,
    now_fn: Callable[[], datetime] = clock.now,
    *,
    limit: int = 50,
    lease_seconds: float = 60,
    max_batches: int = 20,
    budget_seconds: float = 120,
) -> DeliveryReport:
    """Claim due messages in batches of ``limit``, send each batch concurrently (so a batch takes
    about one send's time, well inside the lease) and record each outcome. Stops when a batch
    comes back short, after ``max_batches`` or once ``budget_seconds`` have passed, so one run
    stays well inside arq's job timeout (300 s) under a large backlog; the next run goes on.
    Safe to run in several workers at once: claims are exclusive."""
    report = DeliveryReport()
    send_timeout = lease_seconds / 2
    loop = asyncio.get_running_loop()
    # Real elapsed time, not now_fn: tests freeze that clock.
    deadline = loop.time() + budget_seconds
    for _ in range(max_batches):
        if loop.time() >= deadline:
            break
        batch = await claim_due(now_fn(), limit=limit, lease_seconds=lease_seconds)
        if batch:
            outcomes = await asyncio.gather(
                *(_deliver_one(m, sender, now_fn, send_timeout) for m in batch)
            )
            for outcome in outcomes:
                report += outcome
        if len(batch) < limit:
            break
    return report
