"""Wait estimates: Erlang B/C against the factorial formulas, the monotonic properties of the
M/M/c wait, the queue-length estimate, and rates read from the queue history in the database
(last hour, the slot's history as fallback) on both backends."""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tortoise import Tortoise

from auth.clock import ZONE
from hall.models import QueueTicket
from hall.wait import (
    QueueLoad,
    current_rates,
    erlang_b,
    erlang_c,
    estimate_waits,
    expected_wait,
    queue_wait,
)
from hall.wait_backtest import run_backtest
from miniapp_api.database import tortoise_config

HALL = "liwan"
# A Thursday mid-morning years after any demo history, so only the rows a test writes count.
NOW = datetime(2035, 3, 8, 10, 15, tzinfo=ZONE)
_ticket_numbers = itertools.count(1)


def factorial_erlang_c(c: int, a: float) -> float:
    """The textbook formula, term by term with factorials (fine for small c)."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


# --------------------------------------------------------------------------- the formulas


@pytest.mark.parametrize("a", [0.0, 0.1, 0.5, 0.93])
def test_erlang_c_with_one_window_is_the_utilisation(a: float) -> None:
    assert erlang_c(1, a) == pytest.approx(a)


@pytest.mark.parametrize(
    ("c", "a"), [(2, 1.0), (2, 1.9), (3, 2.5), (5, 1.0), (5, 4.5), (8, 6.0), (10, 9.99)]
)
def test_erlang_c_matches_the_factorial_formula(c: int, a: float) -> None:
    assert erlang_c(c, a) == pytest.approx(factorial_erlang_c(c, a), rel=1e-9)


def test_erlang_c_known_value() -> None:
    # Two agents, one erlang offered: C = (1/2!·2/1) / (1 + 1 + 1) = 1/3.
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)


def test_erlang_c_stays_finite_for_sixty_windows() -> None:
    # 60! and 59^60 are beyond what a naive float term-by-term sum survives in general; the
    # recurrence never forms them.
    value = erlang_c(60, 59.0)
    assert 0.0 < value < 1.0
    assert value == pytest.approx(factorial_erlang_c(60, 59.0), rel=1e-6)
    assert erlang_c(400, 390.0) < 1.0


def test_erlang_c_is_one_without_steady_state() -> None:
    assert erlang_c(3, 3.0) == 1.0
    assert erlang_c(3, 7.5) == 1.0
    assert erlang_c(0, 0.5) == 1.0


def test_erlang_b_known_value() -> None:
    # B(2, 1) = (1/2) / (1 + 1 + 1/2) = 0.2.
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="negative"):
        erlang_b(2, -1.0)


def test_expected_wait_single_window_is_mm1() -> None:
    # M/M/1: Wq = ρ / (μ − λ) = 0.5 / 0.5 = 1 minute for λ = 0.5, μ = 1.
    assert expected_wait(0.5, 1.0, 1) == pytest.approx(1.0)
    assert expected_wait(0.0, 1.0, 1) == 0.0


def test_expected_wait_is_unknown_without_windows_or_in_overload() -> None:
    assert expected_wait(0.5, 1.0, 0) is None
    assert expected_wait(2.0, 1.0, 2) is None  # λ = cμ
    assert expected_wait(2.5, 1.0, 2) is None  # λ > cμ


rates = st.floats(min_value=0.01, max_value=5.0)
windows = st.integers(min_value=1, max_value=60)


@given(service=rates, c=windows, low=st.floats(0.0, 0.98), step=st.floats(0.001, 0.5))
def test_wait_grows_with_arrivals(service: float, c: int, low: float, step: float) -> None:
    high = min(low + step, 0.99)
    slower = expected_wait(low * c * service, service, c)
    faster = expected_wait(high * c * service, service, c)
    assert slower is not None
    assert faster is not None
    assert faster >= slower


@given(service=rates, c=windows, load=st.floats(0.0, 0.99))
def test_wait_shrinks_with_windows(service: float, c: int, load: float) -> None:
    arrival = load * c * service
    fewer = expected_wait(arrival, service, c)
    more = expected_wait(arrival, service, c + 1)
    assert fewer is not None
    assert more is not None
    assert more <= fewer
    assert erlang_c(c + 1, arrival / service) <= erlang_c(c, arrival / service) + 1e-12


@given(c=windows, load=st.floats(0.0, 200.0))
def test_erlang_probabilities_are_probabilities(c: int, load: float) -> None:
    assert 0.0 <= erlang_b(c, load) <= erlang_c(c, load) <= 1.0


def test_queue_wait_counts_the_people_ahead() -> None:
    # Three ahead, two windows at μ = 0.5: the fourth departure, 4 / (2 · 0.5) = 4 minutes.
    assert queue_wait(3, 0.5, 0.5, 2) == pytest.approx(4.0)
    # Overloaded, but the people ahead are known: still an answer.
    assert queue_wait(10, 5.0, 0.5, 2) == pytest.approx(11.0)
    # Nobody waiting: all busy with probability B(2, 1) = 0.2, then one departure (1 minute).
    assert queue_wait(0, 0.5, 0.5, 2) == pytest.approx(0.2)
    assert queue_wait(0, 0.0, 0.5, 2) == 0.0
    assert queue_wait(3, 0.5, 0.5, 0) is None


# --------------------------------------------------------------------------- over the database


@pytest.fixture
async def orm(database_url: str) -> AsyncIterator[None]:
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    try:
        yield
    finally:
        await Tortoise.close_connections()


@pytest.fixture
async def categories(orm: None) -> AsyncIterator[list[str]]:
    """Category codes of this test only (QueueTicket.category is free text), removed after."""
    codes = [f"w{uuid.uuid4().hex[:10]}" for _ in range(3)]
    try:
        yield codes
    finally:
        await QueueTicket.filter(hall_id=HALL, category__in=codes).delete()


async def add_tickets(
    category: str, first_taken: datetime, count: int, *, every: float, wait: float, service: float
) -> None:
    """``count`` tickets taken ``every`` minutes from ``first_taken``, each called after
    ``wait`` minutes and finished ``service`` minutes later."""
    rows = []
    for index in range(count):
        taken = first_taken + timedelta(minutes=index * every)
        called = taken + timedelta(minutes=wait)
        rows.append(
            QueueTicket(
                hall_id=HALL,
                service_date=taken.date(),
                ticket_no=f"{category[-6:]}-{next(_ticket_numbers)}",
                category=category,
                taken_at=taken,
                called_at=called,
                finished_at=called + timedelta(minutes=service),
                window="W01",
                outcome="done",
            )
        )
    await QueueTicket.bulk_create(rows)


async def test_waits_from_the_last_hour(categories: list[str]) -> None:
    busy, quiet, unknown = categories
    # 30 tickets over the last hour (λ = 0.5 per minute), two minutes each (μ = 0.5).
    await add_tickets(busy, NOW - timedelta(minutes=59), 30, every=1.9, wait=1.0, service=2.0)
    # Taken exactly an hour ago (the hour is (now − 1 h, now]) and after now: not arrivals.
    await add_tickets(busy, NOW - timedelta(hours=1), 1, every=1.0, wait=1.0, service=2.0)
    await add_tickets(busy, NOW + timedelta(minutes=1), 2, every=1.0, wait=1.0, service=2.0)
    # Finished before the hour: no handling time counted (it would pull μ towards 2).
    await add_tickets(busy, NOW - timedelta(minutes=75), 3, every=1.0, wait=0.0, service=0.5)
    rates = await current_rates(HALL, [busy], NOW)
    busy_rates = rates[busy]
    assert busy_rates is not None
    assert busy_rates.arrival_rate == pytest.approx(30 / 60)
    assert busy_rates.service_rate == pytest.approx(0.5)
    assert (busy_rates.arrival_source, busy_rates.service_source) == ("recent", "recent")

    waits = await estimate_waits(
        HALL,
        [
            QueueLoad(busy, waiting=3, open_windows=2),
            QueueLoad(quiet, waiting=0, open_windows=2),
            QueueLoad(unknown, waiting=4, open_windows=1),
        ],
        NOW,
    )
    assert waits[busy] == pytest.approx(4.0)  # (3 + 1) / (2 · 0.5)
    # No handling time measured anywhere for the others: unknown, not zero.
    assert waits[quiet] is None
    assert waits[unknown] is None


async def test_now_in_another_zone_is_the_same_instant(categories: list[str]) -> None:
    # On SQLite times compare as Shanghai-time text; a UTC `now` must still mean the same hour.
    busy = categories[0]
    await add_tickets(busy, NOW - timedelta(minutes=50), 10, every=4.0, wait=1.0, service=2.0)
    shanghai = await current_rates(HALL, [busy], NOW)
    utc = await current_rates(HALL, [busy], NOW.astimezone(UTC))
    assert shanghai == utc
    assert shanghai[busy] is not None
    assert shanghai[busy].arrival_rate == pytest.approx(10 / 60)  # type: ignore[union-attr]


async def test_empty_hour_falls_back_to_the_slots_history(categories: list[str]) -> None:
    category, elsewhere = categories[0], categories[1]
    slot = NOW.replace(minute=0)  # NOW's slot is 10:00–10:30
    # Same weekday and slot, one and two weeks ago: 16 tickets in 2 × 30 minutes, 3 minutes each.
    await add_tickets(
        category, slot - timedelta(weeks=1, minutes=-1), 10, every=2.5, wait=1.0, service=3.0
    )
    await add_tickets(
        category, slot - timedelta(weeks=2, minutes=-2), 6, every=3.0, wait=1.0, service=3.0
    )
    # Another weekday's same slot and nine weeks back: not this slot's history.
    await add_tickets(category, slot - timedelta(days=6), 20, every=1.0, wait=0.0, service=0.5)
    await add_tickets(category, slot - timedelta(weeks=9), 20, every=1.0, wait=0.0, service=0.5)
    # Last hour: two tickets, too few to trust.
    await add_tickets(category, NOW - timedelta(minutes=30), 2, every=5.0, wait=0.0, service=1.0)
    # A category with a full last hour next to it keeps its own rates.
    await add_tickets(elsewhere, NOW - timedelta(minutes=59), 12, every=4.5, wait=0.0, service=1.0)

    rates = await current_rates(HALL, [category, elsewhere], NOW)
    fallback = rates[category]
    assert fallback is not None
    assert (fallback.arrival_source, fallback.service_source) == ("history", "history")
    assert fallback.arrival_rate == pytest.approx(16 / 60)
    assert fallback.service_rate == pytest.approx(1 / 3)
    own = rates[elsewhere]
    assert own is not None
    assert (own.arrival_source, own.service_source) == ("recent", "recent")
    assert own.service_rate == pytest.approx(1.0)

    waits = await estimate_waits(
        HALL,
        [QueueLoad(category, waiting=2, open_windows=1), QueueLoad(elsewhere, 1, 0)],
        NOW,
    )
    assert waits[category] == pytest.approx(9.0)  # (2 + 1) / (1 · 1/3)
    assert waits[elsewhere] is None  # no open window


async def test_other_halls_tickets_do_not_count(categories: list[str]) -> None:
    category = categories[0]
    await add_tickets(category, NOW - timedelta(minutes=40), 8, every=4.0, wait=0.0, service=2.0)
    rates = await current_rates("no-such-hall", [category], NOW)
    assert rates[category] is not None
    assert rates[category].service_rate is None  # type: ignore[union-attr]
    assert rates[category].arrival_rate == 0.0  # type: ignore[union-attr]


# --------------------------------------------------------------------------- the backtest


def test_backtest_queue_estimate_beats_the_naive_baseline() -> None:
    # One week replayed after eight of warm-up: the estimate the hall shows must do better than
    # "the mean wait of the last hour", and stationary Erlang C must be the one it improves on.
    result = run_backtest(start=date(2026, 10, 12), end=date(2026, 10, 16))
    assert result.tickets > 2000
    assert len(result.observations) == result.tickets  # every demo ticket is called
    queue = result.errors("queue", common=True)
    naive = result.errors("naive", common=True)
    erlang = result.errors("erlang_c", common=True)
    assert queue is not None
    assert naive is not None
    assert erlang is not None
    assert queue.count == naive.count == erlang.count > 0.7 * result.tickets
    assert queue.mae < naive.mae
    assert queue.mae < erlang.mae
    assert queue.p90 < naive.p90
