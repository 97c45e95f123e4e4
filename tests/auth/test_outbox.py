"""The outbox (auth/outbox.py): written once per dedupe key inside the caller's transaction, claimed
by exactly one worker at a time, retried on the backoff schedule, given up on permanent failures
and when the attempts are used up, and taken over when a worker's lease ran out.

Claims and counts are asserted exactly, so these tests get a private database of the backend under
test (migrated by the real CLI) and empty the outbox before each test.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import pytest
from tortoise import Tortoise
from tortoise.transactions import in_transaction

from auth import clock
from auth.models import OutboxMessage
from auth.outbox import (
    BACKOFF,
    ERROR_LENGTH,
    MAX_ATTEMPTS,
    DeliveryFailed,
    DeliveryReport,
    claim_due,
    deliver_due,
    enqueue_message,
    mark_delivered,
    retry_delay,
)
from miniapp_api.database import tortoise_config
from tests.auth.test_rotation import private_database

_keys = itertools.count(1)


@pytest.fixture(scope="module")
def outbox_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_database(tmp_path_factory.mktemp("outbox")) as url:
        yield url


@pytest.fixture
async def orm(outbox_db: str) -> AsyncIterator[str]:
    await Tortoise.init(config=tortoise_config(outbox_db), _enable_global_fallback=True)
    await OutboxMessage.all().delete()
    try:
        yield outbox_db
    finally:
        await Tortoise.close_connections()


class Clock:
    """A frozen clock the test moves by hand; in the database's zone, as every query needs."""

    def __init__(self) -> None:
        self.at = clock.now().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


class Recorder:
    """A sender that records what it was asked to send, optionally slow or failing."""

    def __init__(self, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.delay = delay
        self.fail = fail
        self.sent: list[int] = []

    async def __call__(self, message: OutboxMessage) -> None:
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        self.sent.append(message.id)


async def enqueue(now: datetime, *, key: str | None = None, text: str = "已受理") -> str:
    key = key or f"test:{next(_keys)}"
    await enqueue_message(
        channel="subscribe",
        recipient=f"o-outbox-{key}",
        template="tmpl-status",
        payload={"data": {"phrase3": text}, "page": "pages/progress/index"},
        dedupe_key=key,
        now=now,
    )
    return key


async def row(key: str) -> OutboxMessage:
    return await OutboxMessage.get(dedupe_key=key)


# --------------------------------------------------------------------------------- enqueue


async def test_enqueue_writes_a_pending_message_due_at_once(orm: str) -> None:
    now = Clock()
    key = await enqueue(now())
    message = await row(key)
    assert (message.channel, message.status, message.attempts) == ("subscribe", "pending", 0)
    assert message.payload == {"data": {"phrase3": "已受理"}, "page": "pages/progress/index"}
    assert message.next_attempt_at == now()
    assert message.locked_until is None
    assert message.delivered_at is None


async def test_the_same_dedupe_key_twice_is_a_no_op(orm: str) -> None:
    now = Clock()
    key = await enqueue(now(), text="第一次")
    await enqueue(now(), key=key, text="第二次")
    assert await OutboxMessage.filter(dedupe_key=key).count() == 1
    assert (await row(key)).payload["data"] == {"phrase3": "第一次"}


async def test_a_duplicate_inside_a_transaction_leaves_the_transaction_usable(orm: str) -> None:
    # On PostgreSQL a unique violation would abort the transaction; ON CONFLICT DO NOTHING does
    # not, so the caller's later statements and its commit still go through.
    now = Clock()
    key = await enqueue(now())
    async with in_transaction() as conn:
        await enqueue_message(
            channel="subscribe",
            recipient="o-x",
            template="t",
            payload={},
            dedupe_key=key,
            now=now(),
            using_db=conn,
        )
        after = await enqueue(now())
        assert await OutboxMessage.filter(dedupe_key=key).using_db(conn).count() == 1
    assert await OutboxMessage.filter(dedupe_key__in=[key, after]).count() == 2


async def test_a_rolled_back_change_leaves_no_message(orm: str) -> None:
    now = Clock()
    key = f"rollback:{next(_keys)}"

    async def failing_change() -> None:
        async with in_transaction():
            # No using_db: tortoise finds the surrounding transaction (forms/lifecycle.py's way).
            await enqueue(now(), key=key)
            raise RuntimeError("the status change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    assert not await OutboxMessage.filter(dedupe_key=key).exists()


async def test_two_transactions_writing_the_same_key_at_once_both_commit(orm: str) -> None:
    now = Clock()
    key = f"race:{next(_keys)}"

    async def change() -> None:
        async with in_transaction():
            await enqueue(now(), key=key)
            await asyncio.sleep(0.05)

    await asyncio.gather(change(), change())
    assert await OutboxMessage.filter(dedupe_key=key).count() == 1


async def test_an_unknown_channel_is_refused(orm: str) -> None:
    with pytest.raises(ValueError, match="channel"):
        await enqueue_message(
            channel="sms",
            recipient="x",
            template="t",
            payload={},
            dedupe_key="sms:1",
            now=clock.now(),
        )


# ----------------------------------------------------------------------------------- claims


async def test_two_concurrent_runs_send_each_message_exactly_once(orm: str) -> None:
    now = Clock()
    keys = [await enqueue(now()) for _ in range(12)]
    sender = Recorder(delay=0.02)
    # Small batches, so the two runs interleave over several claims each.
    first, second = await asyncio.gather(
        deliver_due(sender, now, limit=3), deliver_due(sender, now, limit=3)
    )
    ids = sorted(m.id for m in await OutboxMessage.filter(dedupe_key__in=keys))
    assert sorted(sender.sent) == ids
    assert first.delivered + second.delivered == 12
    assert first.delivered > 0
    assert second.delivered > 0
    assert await OutboxMessage.filter(dedupe_key__in=keys, status="delivered").count() == 12
    assert await deliver_due(sender, now) == DeliveryReport()


async def test_concurrent_claims_are_disjoint(orm: str) -> None:
    now = Clock()
    for _ in range(8):
        await enqueue(now())
    claims = await asyncio.gather(*(claim_due(now(), limit=8, lease_seconds=60) for _ in range(4)))
    taken = [m.id for claim in claims for m in claim]
    assert len(taken) == len(set(taken)) == 8
    assert all(
        m.attempts == 1 and m.locked_until == now() + timedelta(seconds=60)
        for c in claims
        for m in c
    )


async def test_claims_take_the_oldest_due_first_and_nothing_early(orm: str) -> None:
    now = Clock()
    late = await enqueue(now() + timedelta(minutes=1))
    early = await enqueue(now() - timedelta(minutes=1))
    due = await enqueue(now())
    claimed = await claim_due(now(), limit=10, lease_seconds=60)
    assert [m.dedupe_key for m in claimed] == [early, due]
    assert (await row(late)).locked_until is None


# ---------------------------------------------------------------------------------- backoff


def test_backoff_schedule() -> None:
    schedule = [timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10)]
    schedule += [timedelta(hours=1), timedelta(hours=6)]
    assert list(BACKOFF) == schedule
    assert [retry_delay(n) for n in range(1, MAX_ATTEMPTS + 1)] == [*BACKOFF, None]


async def test_transient_failures_retry_on_the_backoff_schedule_then_give_up(orm: str) -> None:
    now = Clock()
    key = await enqueue(now())
    sender = Recorder(fail=DeliveryFailed("SystemBusy errcode -1", permanent=False))
    for attempt, delay in enumerate(BACKOFF, start=1):
        report = await deliver_due(sender, now)
        assert report == DeliveryReport(claimed=1, retrying=1)
        message = await row(key)
        assert (message.status, message.attempts) == ("pending", attempt)
        assert message.next_attempt_at == now() + delay
        assert message.locked_until is None
        assert message.last_error == "SystemBusy errcode -1"
        # A second before it is due: nothing to do.
        now.advance(seconds=delay.total_seconds() - 1)
        assert await deliver_due(sender, now) == DeliveryReport()
        now.advance(seconds=1)
    assert await deliver_due(sender, now) == DeliveryReport(claimed=1, failed=1)
    message = await row(key)
    assert (message.status, message.attempts) == ("failed", MAX_ATTEMPTS)
    now.advance(days=1)
    assert await deliver_due(sender, now) == DeliveryReport()


async def test_a_transient_failure_then_success_delivers_once(orm: str) -> None:
    now = Clock()
    key = await enqueue(now())
    sender = Recorder(fail=DeliveryFailed("WeChatUnavailable: HTTP 502", permanent=False))
    await deliver_due(sender, now)
    sender.fail = None
    now.advance(seconds=30)
    assert await deliver_due(sender, now) == DeliveryReport(claimed=1, delivered=1)
    message = await row(key)
    assert sender.sent == [message.id]
    assert (message.status, message.attempts, message.delivered_at) == ("delivered", 2, now())
    assert message.last_error is None


async def test_a_permanent_failure_is_given_up_at_once(orm: str) -> None:
    now = Clock()
    key = await enqueue(now())
    sender = Recorder(fail=DeliveryFailed("OtherWeChatError errcode 43101", permanent=True))
    assert await deliver_due(sender, now) == DeliveryReport(claimed=1, failed=1)
    message = await row(key)
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.last_error == "OtherWeChatError errcode 43101"
    now.advance(hours=12)
    assert await deliver_due(sender, now) == DeliveryReport()


async def test_an_unexpected_exception_is_retried_and_stores_only_its_type(orm: str) -> None:
    now = Clock()
    key = await enqueue(now())
    sender = Recorder(fail=KeyError("o-outbox-secret-openid 4401"))
    assert await deliver_due(sender, now) == DeliveryReport(claimed=1, retrying=1)
    assert (await row(key)).last_error == "unexpected KeyError"


async def test_a_long_error_is_cut_to_the_column(orm: str) -> None:
    now = Clock()
    key = await enqueue(now())
    await deliver_due(Recorder(fail=DeliveryFailed("x" * 1000, permanent=False)), now)
    assert (await row(key)).last_error == "x" * ERROR_LENGTH


async def test_a_hung_send_times_out_inside_the_lease(orm: str) -> None:
    now = Clock()
    key = await enqueue(now())
    report = await deliver_due(Recorder(delay=5), now, lease_seconds=0.2)
    assert report == DeliveryReport(claimed=1, retrying=1)
    assert (await row(key)).last_error == "send timed out"


# ----------------------------------------------------------------------------------- leases


async def test_a_lease_that_ran_out_is_claimed_again_and_the_old_claim_is_fenced(
    orm: str,
) -> None:
    now = Clock()
    key = await enqueue(now())
    # A worker claims it and dies mid-send.
    (dead,) = await claim_due(now(), limit=10, lease_seconds=60)
    sender = Recorder()
    now.advance(seconds=59)
    assert await deliver_due(sender, now) == DeliveryReport()
    now.advance(seconds=2)
    assert await deliver_due(sender, now) == DeliveryReport(claimed=1, delivered=1)
    message = await row(key)
    assert sender.sent == [message.id]
    assert (message.status, message.attempts) == ("delivered", 2)
    # The first worker coming back late changes nothing: its claim was attempt 1.
    assert not await mark_delivered(dead, now())


async def test_a_lease_already_over_before_sending_is_left_alone(orm: str) -> None:
    class Ticking(Clock):
        def __call__(self) -> datetime:
            # Every reading is two minutes later: the lease is over by the time it would send.
            self.advance(minutes=2)
            return self.at

    now = Ticking()
    key = await enqueue(now() - timedelta(hours=1))
    sender = Recorder()
    assert await deliver_due(sender, now) == DeliveryReport(claimed=1, abandoned=1)
    assert sender.sent == []
    message = await row(key)
    assert (message.status, message.attempts) == ("pending", 1)


async def test_a_message_whose_workers_keep_dying_runs_out_of_attempts(orm: str) -> None:
    now = Clock()
    key = await enqueue(now())
    for _ in range(MAX_ATTEMPTS):
        assert len(await claim_due(now(), limit=10, lease_seconds=60)) == 1
        now.advance(seconds=61)
    sender = Recorder()
    assert await deliver_due(sender, now) == DeliveryReport(claimed=1, failed=1)
    assert sender.sent == []
    message = await row(key)
    assert message.status == "failed"
    assert message.last_error == "attempts used up (worker lost)"


async def test_one_run_is_bounded_and_the_next_goes_on(orm: str) -> None:
    now = Clock()
    for _ in range(5):
        await enqueue(now())
    sender = Recorder()
    assert await deliver_due(sender, now, budget_seconds=0) == DeliveryReport()
    assert (await deliver_due(sender, now, limit=2, max_batches=2)).delivered == 4
    assert (await deliver_due(sender, now, limit=2, max_batches=2)).delivered == 1
    assert len(set(sender.sent)) == 5
