"""Backtest of the comfort index: fit on the first part of a generated history, predict the
rest, and compare with the naive seasonal baseline (the same weekday and slot, mean of the
previous four weeks' actuals)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta

import numpy as np

from hall.comfort import SLOT_MINUTES, Counts, day_slots, fit
from hall.history import DEFAULT_OPEN_HOURS, HistoricTicket, generate_history

BASELINE_WEEKS = 4


@dataclass(frozen=True, slots=True)
class BacktestResult:
    train_from: date
    train_to: date
    test_from: date
    test_to: date
    slots_scored: int
    days_scored: int
    model_slot_mape: float
    baseline_slot_mape: float
    model_day_mape: float
    baseline_day_mape: float

    def table(self) -> str:
        return "\n".join(
            [
                f"train {self.train_from} .. {self.train_to}, "
                f"test {self.test_from} .. {self.test_to}",
                "| MAPE | per day-slot | per day total |",
                "| --- | --- | --- |",
                f"| comfort model | {self.model_slot_mape:.1%} | {self.model_day_mape:.1%} |",
                f"| naive baseline (same weekday and slot, mean of previous {BASELINE_WEEKS} "
                f"weeks) | {self.baseline_slot_mape:.1%} | {self.baseline_day_mape:.1%} |",
                f"scored: {self.slots_scored} day-slots with arrivals, {self.days_scored} days",
            ]
        )


def count_arrivals(tickets: Iterable[HistoricTicket]) -> dict[tuple[date, time], int]:
    """What ``arrivals_by_slot`` reads from the database, counted from tickets in memory."""
    counts: dict[tuple[date, time], int] = {}
    for ticket in tickets:
        minute = ticket.taken_at.hour * 60 + ticket.taken_at.minute
        minute -= minute % SLOT_MINUTES
        key = (ticket.service_date, time(minute // 60, minute % 60))
        counts[key] = counts.get(key, 0) + 1
    return counts


def _mape(actual: Sequence[float], predicted: Sequence[float]) -> float:
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    return float(np.mean(np.abs(p - a) / a))


def backtest(
    counts: Counts,
    train_to: date,
    open_hours: Sequence[Mapping[str, object]] = DEFAULT_OPEN_HOURS,
) -> BacktestResult:
    """Fit on the days up to ``train_to``, score every later day with arrivals. MAPE per
    day-slot over the slots with arrivals, and per day total; both on the same slots and days
    for the model and the baseline (those with four weeks before them)."""
    train = {key: n for key, n in counts.items() if key[0] <= train_to}
    model = fit(train, open_hours)
    test_days = sorted({day for day, _ in counts if day > train_to})
    open_days = {day for day, _ in counts}
    keys: list[tuple[date, time]] = []
    baseline: list[float] = []
    for day in test_days:
        earlier = [day - timedelta(weeks=w) for w in range(1, BASELINE_WEEKS + 1)]
        earlier = [d for d in earlier if d in open_days]
        if not earlier:
            continue
        for slot in day_slots(day, open_hours):
            keys.append((day, slot))
            baseline.append(float(np.mean([counts.get((d, slot), 0) for d in earlier])))
    predicted = model.predict(keys)
    actual = [float(counts.get(key, 0)) for key in keys]
    scored = [i for i, a in enumerate(actual) if a > 0]
    day_actual: dict[date, float] = {}
    day_model: dict[date, float] = {}
    day_base: dict[date, float] = {}
    for i, (day, _slot) in enumerate(keys):
        day_actual[day] = day_actual.get(day, 0.0) + actual[i]
        day_model[day] = day_model.get(day, 0.0) + float(predicted[i])
        day_base[day] = day_base.get(day, 0.0) + baseline[i]
    days = [d for d in day_actual if day_actual[d] > 0]
    return BacktestResult(
        train_from=model.trained_from,
        train_to=model.trained_to,
        test_from=test_days[0] if test_days else train_to,
        test_to=test_days[-1] if test_days else train_to,
        slots_scored=len(scored),
        days_scored=len(days),
        model_slot_mape=_mape([actual[i] for i in scored], [predicted[i] for i in scored]),
        baseline_slot_mape=_mape([actual[i] for i in scored], [baseline[i] for i in scored]),
        model_day_mape=_mape([day_actual[d] for d in days], [day_model[d] for d in days]),
        baseline_day_mape=_mape([day_actual[d] for d in days], [day_base[d] for d in days]),
    )


def backtest_generated(
    *,
    categories: Sequence[str],
    start: date,
    train_to: date,
    end: date,
    seed: int,
) -> BacktestResult:
    """Generate ``start`` .. ``end`` with the demo generator and backtest at ``train_to``."""
    counts = count_arrivals(
        generate_history(categories=categories, start=start, end=end, seed=seed)
    )
    return backtest(counts, train_to)
