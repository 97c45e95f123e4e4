"""The synthetic queue history: deterministic, shaped by the calendar, plausible as a queue, and
bulk-loaded into the database (both backends)."""

from __future__ import annotations

import itertools
import statistics
import uuid
from collections import Counter
from datetime import date, timedelta

from hall.comfort_backtest import count_arrivals
from hall.filing_calendar import filing_deadline, is_working_day
from hall.halls import upsert_hall
from hall.history import (
    DEFAULT_OPEN_HOURS,
    HistoricTicket,
    arrivals_by_slot,
    generate_history,
    has_history,
    load_history,
)
from hall.models import QueueTicket
from tests.conftest import LiveServer

CATEGORIES = ["invoice", "filing", "registration", "consulting"]


def _history(start: date, end: date, seed: int = 6) -> list[HistoricTicket]:
    return list(generate_history(categories=CATEGORIES, start=start, end=end, seed=seed))


def test_the_same_seed_gives_the_same_history_and_another_seed_another() -> None:
    first = _history(date(2024, 3, 4), date(2024, 3, 8))
    assert first == _history(date(2024, 3, 4), date(2024, 3, 8))
    assert first != _history(date(2024, 3, 4), date(2024, 3, 8), seed=7)
    # A day does not depend on the range it was asked in.
    wider = _history(date(2024, 3, 1), date(2024, 3, 12))
    assert [t for t in wider if date(2024, 3, 4) <= t.service_date <= date(2024, 3, 8)] == first


def test_closed_on_holidays_and_weekends_open_on_adjusted_working_days() -> None:
    days = {t.service_date for t in _history(date(2024, 9, 28), date(2024, 10, 14))}
    # 调休: Sunday 09-29 and Saturday 10-12 were working days.
    assert date(2024, 9, 29) in days
    assert date(2024, 10, 12) in days
    assert not days & {date(2024, 10, d) for d in range(1, 8)}
    assert date(2024, 9, 28) not in days  # an ordinary Saturday
    assert date(2024, 10, 13) not in days
    assert all(is_working_day(d) for d in days)
    day = date(2024, 9, 28)
    while day <= date(2024, 10, 14):
        assert (day in days) == is_working_day(day)
        day += timedelta(days=1)


def test_deadline_days_are_busier_than_the_second_half_of_the_month() -> None:
    tickets = _history(date(2024, 1, 1), date(2024, 12, 31))
    per_day = Counter(t.service_date for t in tickets)
    deadlines = [per_day[filing_deadline(2024, m)] for m in range(1, 13)]
    late = [
        n for d, n in per_day.items() if 22 <= d.day <= 28 and d != filing_deadline(2024, d.month)
    ]
    assert statistics.mean(deadlines) > 1.3 * statistics.mean(late)
    # Ordinary days stay in the hall's range.
    assert 800 <= statistics.median(per_day.values()) <= 1500
    # Quarter-start months are heavier than the month before them.
    months = Counter(t.service_date.month for t in tickets)
    working = Counter(d.month for d in per_day)
    assert months[4] / working[4] > months[2] / working[2]
    # Mondays are heavier than Fridays.
    by_weekday: dict[int, list[int]] = {}
    for d, n in per_day.items():
        by_weekday.setdefault(d.weekday(), []).append(n)
    assert statistics.mean(by_weekday[0]) > statistics.mean(by_weekday[4])


def test_the_morning_peak_and_the_open_hours() -> None:
    tickets = _history(date(2024, 6, 3), date(2024, 6, 28))
    by_slot = Counter((t.taken_at.hour, t.taken_at.minute // 30 * 30) for t in tickets)
    assert max(by_slot, key=by_slot.__getitem__) in {(9, 30), (10, 0)}
    by_hour = Counter(t.taken_at.hour for t in tickets)
    assert by_hour[12] == 0  # lunch
    assert by_hour[14] > by_hour[13]
    assert min(by_hour) == 9
    assert max(by_hour) == 16
    assert all(t.taken_at.tzinfo is not None for t in tickets)


def test_the_queue_is_plausible() -> None:
    tickets = _history(date(2024, 5, 6), date(2024, 6, 28))
    waits = [(t.called_at - t.taken_at).total_seconds() / 60 for t in tickets if t.called_at]
    served = [
        (t.finished_at - t.called_at).total_seconds() / 60
        for t in tickets
        if t.called_at and t.finished_at and t.outcome != "no_show"
    ]
    assert len(waits) == len(tickets)
    assert min(waits) >= 0
    assert 2.0 <= statistics.mean(waits) <= 10.0
    assert 1.3 <= statistics.mean(served) <= 2.0
    outcomes = Counter(t.outcome for t in tickets)
    assert set(outcomes) == {"done", "no_show", "returned"}
    assert 0.03 <= outcomes["no_show"] / len(tickets) <= 0.07
    windows = {t.window for t in tickets}
    assert windows <= {f"W{n:02d}" for n in range(1, 48)}
    # Each window serves one ticket at a time.
    by_window: dict[tuple[date, str | None], list[HistoricTicket]] = {}
    for t in tickets:
        by_window.setdefault((t.service_date, t.window), []).append(t)
    for served_by_one in by_window.values():
        served_by_one.sort(key=lambda t: (t.called_at, t.finished_at))
        for before, after in itertools.pairwise(served_by_one):
            assert before.finished_at is not None
            assert after.called_at is not None
            assert after.called_at >= before.finished_at - timedelta(seconds=1)
    # Ticket numbers are unique per day, as the table requires.
    assert len({(t.service_date, t.ticket_no) for t in tickets}) == len(tickets)


async def test_bulk_load_writes_every_ticket_and_the_slot_counts_match(live: LiveServer) -> None:
    hall_id = f"h{uuid.uuid4().hex[:10]}"
    await upsert_hall(
        hall_id, "测试厅", "某路 1 号", list(DEFAULT_OPEN_HOURS), [("invoice", "发票")]
    )
    assert not await has_history(hall_id)
    tickets = _history(date(2024, 9, 23), date(2024, 10, 11))
    written = await load_history(hall_id, tickets)
    assert written == len(tickets)
    assert await QueueTicket.filter(hall_id=hall_id).count() == len(tickets)
    assert await has_history(hall_id)
    counts = await arrivals_by_slot(hall_id, date(2024, 9, 23), date(2024, 10, 11))
    assert counts == count_arrivals(tickets)
    # A row reads back as it was generated (instants, not wall-clock text).
    sample = tickets[len(tickets) // 2]
    row = await QueueTicket.get(
        hall_id=hall_id, service_date=sample.service_date, ticket_no=sample.ticket_no
    )
    assert row.taken_at == sample.taken_at
    assert row.called_at == sample.called_at
    assert row.finished_at == sample.finished_at
    assert (row.window, row.outcome, row.booked, row.category) == (
        sample.window,
        sample.outcome,
        sample.booked,
        sample.category,
    )
    # A narrower range counts only its days.
    one_day = await arrivals_by_slot(hall_id, date(2024, 9, 30), date(2024, 9, 30))
    assert sum(one_day.values()) == sum(1 for t in tickets if t.service_date == date(2024, 9, 30))
