"""The comfort index (办税舒适度指数): expected arrivals per day and time slot of a month.

A ridge regression of log(1 + arrivals) per (day, slot) on calendar features: month, weekday,
working days to the filing deadline (bucketed, apart for quarter-start months), quarter-start
month, the annual settlement season, the day after a holiday and the slot of the day. On the log
scale the effects multiply, as a hall's do (a Monday in the deadline week at 10:00 is busy three
times over). Slots are then bucketed into 较少 / 适中 / 较多 by quantiles of the month's
predictions (tertiles by default).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from tortoise.transactions import in_transaction

from auth import clock
from hall import filing_calendar
from hall.history import (
    DEFAULT_OPEN_HOURS,
    arrivals_by_slot,
    generate_history,
    has_history,
    load_history,
    open_periods,
)
from hall.models import ComfortPublication, Hall

LEVELS = ("较少", "适中", "较多")
DEFAULT_QUANTILES = (1 / 3, 2 / 3)
SLOT_MINUTES = 30
TRAINING_DAYS = 3 * 366
TREND_MONTHS = 12
_RIDGE = 1.0
# Working days to the deadline, bucketed: the last days before it differ a lot, the rest little.
_DEADLINE_BUCKETS = (
    ("deadline", 0, 0),
    ("d-1", 1, 1),
    ("d-2", 2, 2),
    ("d-3..4", 3, 4),
    ("d-5..7", 5, 7),
    ("d-8+", 8, 99),
    ("after 1..3", -3, -1),
    ("after 4+", -99, -4),
)

Counts = Mapping[tuple[date, time], int]


class MonthInvalid(ValueError):
    """Not a month of the form YYYY-MM."""


def parse_month(text: str) -> tuple[int, int]:
    """``"2026-11"`` → (2026, 11); :class:`MonthInvalid` otherwise."""
    if len(text) != 7 or text[4] != "-" or not (text[:4].isdigit() and text[5:].isdigit()):
        raise MonthInvalid(text)
    year, month = int(text[:4]), int(text[5:])
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        raise MonthInvalid(text)
    return year, month


def month_text(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def month_days(year: int, month: int) -> list[date]:
    return [date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def day_slots(day: date, open_hours: Sequence[Mapping[str, object]]) -> list[time]:
    """The starts of the day's slots within its open hours (none on a closed day)."""
    starts = []
    for begin, end in open_periods(day, open_hours):
        minute = begin - begin % SLOT_MINUTES
        while minute < end:
            starts.append(time(minute // 60, minute % 60))
            minute += SLOT_MINUTES
    return starts


def _day_features(day: date) -> list[float]:
    to_deadline = filing_calendar.working_days_to_deadline(day)
    quarter = day.month in (1, 4, 7, 10)
    buckets = [float(low <= to_deadline <= high) for _, low, high in _DEADLINE_BUCKETS]
    return [
        *(float(day.month == m) for m in range(1, 13)),
        *(float(day.weekday() == w) for w in range(7)),
        *buckets,
        *(b * quarter for b in buckets),
        float(quarter),
        float(3 <= day.month <= 5),
        float(filing_calendar.is_after_holiday(day)),
    ]


def _feature_names(slots: Sequence[time]) -> list[str]:
    return [
        "intercept",
        *(f"month={m}" for m in range(1, 13)),
        *(f"weekday={w + 1}" for w in range(7)),
        *(f"deadline:{name}" for name, _, _ in _DEADLINE_BUCKETS),
        *(f"quarter×deadline:{name}" for name, _, _ in _DEADLINE_BUCKETS),
        "quarter_start_month",
        "settlement_season",
        "after_holiday",
        *(f"slot={s.strftime('%H:%M')}" for s in slots),
    ]


@dataclass(frozen=True, slots=True)
class ComfortModel:
    """Fitted coefficients over the feature layout of ``slots``."""

    slots: tuple[time, ...]
    coefficients: np.ndarray
    trained_from: date
    trained_to: date
    rows: int
    r2_log: float

    def _design(self, keys: Sequence[tuple[date, time]]) -> np.ndarray:
        return _design(keys, self.slots)

    def predict(self, keys: Sequence[tuple[date, time]]) -> np.ndarray:
        """Expected arrivals per (day, slot)."""
        if not keys:
            return np.zeros(0)
        log_value = self._design(keys) @ self.coefficients
        expected: np.ndarray = np.maximum(np.expm1(log_value), 0.0)
        return expected

    def info(self) -> dict[str, object]:
        return {
            "kind": "ridge regression of log(1+arrivals) per day and 30-minute slot",
            "features": _feature_names(self.slots),
            "ridge": _RIDGE,
            "trained_from": self.trained_from.isoformat(),
            "trained_to": self.trained_to.isoformat(),
            "rows": self.rows,
            "r2_log": round(self.r2_log, 4),
        }


def _design(keys: Sequence[tuple[date, time]], slots: Sequence[time]) -> np.ndarray:
    slot_index = {s: i for i, s in enumerate(slots)}
    cache: dict[date, list[float]] = {}
    width = 1 + len(_day_features(keys[0][0])) + len(slots)
    matrix = np.zeros((len(keys), width))
    matrix[:, 0] = 1.0
    for row, (day, slot) in enumerate(keys):
        features = cache.get(day)
        if features is None:
            features = cache[day] = _day_features(day)
        matrix[row, 1 : 1 + len(features)] = features
        position = slot_index.get(slot)
        if position is not None:
            matrix[row, 1 + len(features) + position] = 1.0
    return matrix


def fit(counts: Counts, open_hours: Sequence[Mapping[str, object]]) -> ComfortModel:
    """Fit on every open slot of every day that has arrivals (a day without a single ticket is
    a day the queue system was down, not a quiet day); slots without a ticket count as zero."""
    days = sorted({day for day, _ in counts})
    if not days:
        raise ValueError("no history to fit on")
    keys = [(day, slot) for day in days for slot in day_slots(day, open_hours)]
    slots = tuple(sorted({slot for _, slot in keys}))
    x = _design(keys, slots)
    y = np.log1p(np.array([counts.get(key, 0) for key in keys], dtype=float))
    penalty = np.eye(x.shape[1]) * _RIDGE
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    coefficients = np.linalg.solve(x.T @ x + penalty, x.T @ y)
    residual = y - x @ coefficients
    total = float(((y - y.mean()) ** 2).sum()) or 1.0
    return ComfortModel(
        slots=slots,
        coefficients=coefficients,
        trained_from=days[0],
        trained_to=days[-1],
        rows=len(keys),
        r2_log=1.0 - float((residual**2).sum()) / total,
    )


def cut_points(values: Iterable[float], quantiles: Sequence[float]) -> list[float]:
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        return [0.0 for _ in quantiles]
    return [float(q) for q in np.quantile(data, list(quantiles))]


def level_of(value: float, cuts: Sequence[float]) -> str:
    """较少 up to the first cut point, 适中 up to the second, 较多 above."""
    for level, cut in zip(LEVELS, cuts, strict=False):
        if value <= cut:
            return level
    return LEVELS[len(cuts)] if len(cuts) < len(LEVELS) else LEVELS[-1]


def predict_month(
    model: ComfortModel,
    year: int,
    month: int,
    open_hours: Sequence[Mapping[str, object]],
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> tuple[list[dict[str, Any]], list[float]]:
    """The ``days`` of a publication (every day of the month; a closed day has no slots) and
    the cut points between the levels."""
    per_day = [(day, day_slots(day, open_hours)) for day in month_days(year, month)]
    keys = [(day, slot) for day, slots in per_day for slot in slots]
    expected = model.predict(keys)
    cuts = cut_points(expected, quantiles)
    values = iter(expected.tolist())
    days = []
    for day, slots in per_day:
        day_out = []
        for slot in slots:
            value = round(next(values), 1)
            end = (datetime.combine(day, slot) + timedelta(minutes=SLOT_MINUTES)).time()
            day_out.append(
                {
                    "start": slot.strftime("%H:%M"),
                    "end": end.strftime("%H:%M"),
                    "expected": value,
                    "level": level_of(value, cuts),
                }
            )
        days.append({"date": day.isoformat(), "slots": day_out})
    return days, cuts


def monthly_trend(
    model: ComfortModel,
    counts: Counts,
    year: int,
    month: int,
    open_hours: Sequence[Mapping[str, object]],
    months: int = TREND_MONTHS,
) -> list[dict[str, object]]:
    """The totals of the ``months`` before ``year``-``month`` and of that month: what arrived on
    the days history has, what the model expects on the open days after it."""
    history_days = {day for day, _ in counts}
    last_known = max(history_days, default=date.min)
    totals: dict[date, int] = {}
    for (day, _slot), n in counts.items():
        totals[day] = totals.get(day, 0) + n
    wanted = [(year, month)]
    for _ in range(months):
        wanted.insert(0, previous_month(*wanted[0]))
    trend = []
    for y, m in wanted:
        actual = sum(totals.get(day, 0) for day in month_days(y, m))
        future = [
            (day, slot)
            for day in month_days(y, m)
            if day > last_known
            for slot in day_slots(day, open_hours)
        ]
        if actual == 0 and not future:
            continue  # before the history starts
        expected = actual + float(model.predict(future).sum())
        trend.append({"month": month_text(y, m), "expected_total": round(expected)})
    return trend


def build_publication(
    model: ComfortModel,
    counts: Counts,
    year: int,
    month: int,
    open_hours: Sequence[Mapping[str, object]],
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> dict[str, Any]:
    """Everything of a publication but when and by whom (API.md, Hall, comfort)."""
    days, cuts = predict_month(model, year, month, open_hours, quantiles)
    return {
        "month": month_text(year, month),
        "levels": list(LEVELS),
        "days": days,
        "trend": monthly_trend(model, counts, year, month, open_hours),
        "model_info": model.info()
        | {
            "quantiles": [round(q, 4) for q in quantiles],
            "cut_points": [round(c, 2) for c in cuts],
        },
    }


class NoHistory(LookupError):
    """The hall has no queue history to fit on."""


async def publish_comfort_index(
    hall_id: str,
    year: int,
    month: int,
    *,
    now: datetime,
    published_by: str,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> dict[str, Any]:
    """Fit on the hall's history up to yesterday, predict ``year``-``month`` and store it as the
    month's publication (replacing an earlier one); returns the publication as API.md shows it.
    Raises :class:`LookupError` for an unknown hall, :class:`NoHistory` without history."""
    hall = await Hall.get_or_none(hall_id=hall_id)
    if hall is None:
        raise LookupError(hall_id)
    open_hours: list[Mapping[str, object]] = [*hall.open_hours] or [*DEFAULT_OPEN_HOURS]
    end = now.date() - timedelta(days=1)
    counts = await arrivals_by_slot(hall_id, end - timedelta(days=TRAINING_DAYS), end)
    if not counts:
        raise NoHistory(hall_id)
    model = fit(counts, open_hours)
    content = build_publication(model, counts, year, month, open_hours, quantiles)
    async with in_transaction():
        await ComfortPublication.update_or_create(
            hall_id=hall_id,
            month=content["month"],
            defaults={
                "published_at": now,
                "published_by": published_by,
                "levels": content["levels"],
                "days": content["days"],
                "trend": content["trend"],
                "model_info": content["model_info"],
            },
        )
    return {"published_at": now.isoformat(), "published_by": published_by} | content


def publication_view(publication: ComfortPublication) -> dict[str, Any]:
    """API.md's shape of a stored publication."""
    return {
        "month": publication.month,
        "published_at": publication.published_at.isoformat(),
        "levels": list(publication.levels),
        "days": list(publication.days),
        "trend": list(publication.trend),
    }


async def get_publication(hall_id: str, month: str) -> ComfortPublication | None:
    return await ComfortPublication.get_or_none(hall_id=hall_id, month=month)


async def publish_due(
    now: datetime, quantiles: Sequence[float] = DEFAULT_QUANTILES
) -> list[tuple[str, str]]:
    """What the monthly job does: for every hall with history, publish next month when it has
    no publication yet, or on the month's last day when it was published before today (so it
    includes the month's data). Cheap when nothing is due: runs hourly. Returns (hall, month)."""
    today = now.date()
    year, month = next_month(today.year, today.month)
    target = month_text(year, month)
    last_day = today.day == calendar.monthrange(today.year, today.month)[1]
    done = []
    for hall_id in await Hall.all().values_list("hall_id", flat=True):
        existing = await get_publication(str(hall_id), target)
        if existing is not None and not (
            last_day and clock.local(existing.published_at).date() < today
        ):
            continue
        try:
            await publish_comfort_index(
                str(hall_id), year, month, now=now, published_by="job", quantiles=quantiles
            )
        except NoHistory:
            continue
        done.append((str(hall_id), target))
    return done


DEMO_HISTORY_SEED = 6


async def load_demo_comfort(
    hall_id: str,
    *,
    categories: Sequence[str],
    open_hours: Sequence[Mapping[str, object]],
    now: datetime,
    years: int = 3,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> str:
    """The demo's queue history (``years`` ending yesterday, once: a hall that has history keeps
    it) and its comfort index for this month and the next (published when missing)."""
    end = now.date() - timedelta(days=1)
    loaded = 0
    if years and not await has_history(hall_id):
        start = end - timedelta(days=round(365.25 * years)) + timedelta(days=1)
        tickets = generate_history(
            categories=categories,
            start=start,
            end=end,
            seed=DEMO_HISTORY_SEED,
            open_hours=open_hours,
        )
        loaded = await load_history(hall_id, tickets)
    published = []
    this_month = (now.year, now.month)
    for year, month in (this_month, next_month(*this_month)):
        if await get_publication(hall_id, month_text(year, month)) is not None:
            continue
        try:
            await publish_comfort_index(
                hall_id, year, month, now=now, published_by="demo", quantiles=quantiles
            )
        except NoHistory:
            break
        published.append(month_text(year, month))
    history = f"{loaded} tickets of queue history" if loaded else "queue history already there"
    return f"hall {hall_id}: {history}; comfort index published for {published or 'no new month'}"
