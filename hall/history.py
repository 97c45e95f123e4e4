"""Queue history: the synthetic demo history, its bulk load, and arrivals per time slot.

The generator draws arrivals from a calendar-shaped intensity (filing deadline, quarter-start
months, the annual settlement season, weekdays, holidays, time of day) and then simulates each
day's queue (FIFO per category over the windows staffed for the expected load), so called and
finished times are the consequences of the arrivals, as a wait estimate expects them to be.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
from tortoise import connections

from auth.clock import ZONE
from hall import filing_calendar
from hall.models import QueueTicket

OUTCOMES = ("done", "no_show", "returned")
_BATCH_ROWS = 20_000
_COLUMNS = (
    "hall_id",
    "service_date",
    "ticket_no",
    "category",
    "taken_at",
    "called_at",
    "finished_at",
    "window",
    "outcome",
    "booked",
)

# The demo hall's hours (miniapp_api/demo.py); a hall's ``open_hours`` JSON has the same shape.
DEFAULT_OPEN_HOURS: tuple[Mapping[str, object], ...] = (
    {"weekdays": [1, 2, 3, 4, 5], "start": "09:00", "end": "12:00"},
    {"weekdays": [1, 2, 3, 4, 5], "start": "13:00", "end": "17:00"},
)


@dataclass(frozen=True, slots=True)
class HistoricTicket:
    service_date: date
    ticket_no: str
    category: str
    taken_at: datetime  # aware, Asia/Shanghai
    called_at: datetime | None
    finished_at: datetime | None
    window: str | None
    outcome: str  # done | no_show | returned
    booked: bool


@dataclass(frozen=True, slots=True)
class _Profile:
    """How one category behaves: its share of the day, handling time, windows, deadline pull."""

    share: float
    service_minutes: float
    windows: tuple[int, int]  # first and last window number, inclusive
    deadline_pull: float
    settlement_pull: float


# Known categories of the demo hall; others share what is left evenly. Handling times average
# ~1.6 minutes over the mix (DOMAIN.md: 1.63); the 47 windows are split between the categories.
_PROFILES: dict[str, _Profile] = {
    "invoice": _Profile(0.40, 1.35, (1, 16), 0.35, 0.0),
    "filing": _Profile(0.30, 1.55, (17, 32), 1.2, 0.25),
    "registration": _Profile(0.12, 2.6, (33, 40), 0.1, 0.0),
    "consulting": _Profile(0.18, 1.8, (41, 47), 0.4, 0.3),
}
_WEEKDAY_FACTOR = (1.18, 1.03, 1.0, 0.97, 0.9, 0.85, 0.85)
_MONTH_FACTOR = (1.12, 0.9, 1.08, 1.15, 1.1, 0.95, 1.1, 0.92, 0.97, 1.08, 0.97, 1.05)
_QUARTER_START = frozenset({1, 4, 7, 10})
_BASE_DAILY_TICKETS = 880.0
_NO_SHOW = 0.05
_RETURNED = 0.03
_BOOKED = 0.04
# Staff open as many windows as the expected load (in Erlangs) plus this margin, rounded down:
# the hall runs hot, and that gives the few minutes' average wait the bureau reports (5.04).
_STAFFING_MARGIN = 0.75
_STEP_MINUTES = 5
_SLOT_MINUTES = 30


def _profiles(categories: Sequence[str]) -> dict[str, _Profile]:
    known = {c: _PROFILES[c] for c in categories if c in _PROFILES}
    unknown = [c for c in categories if c not in _PROFILES]
    rest = max(0.0, 1.0 - sum(p.share for p in known.values()))
    result = dict(known)
    for index, code in enumerate(unknown):
        first = 1 + (index * 47) // len(unknown)
        last = ((index + 1) * 47) // len(unknown)
        share = rest / len(unknown) if rest > 0 else 0.1
        result[code] = _Profile(share, 1.6, (first, max(first, last)), 0.3, 0.0)
    total = sum(p.share for p in result.values())
    return {
        c: _Profile(
            p.share / total, p.service_minutes, p.windows, p.deadline_pull, p.settlement_pull
        )
        for c, p in result.items()
    }


def _parse_hhmm(text: object) -> int:
    hours, minutes = str(text).split(":")
    return int(hours) * 60 + int(minutes)


def open_periods(day: date, open_hours: Sequence[Mapping[str, object]]) -> list[tuple[int, int]]:
    """The day's open periods as (start, end) minutes after midnight; none on holidays and
    weekends, the Monday hours on a weekend day made a working day (调休)."""
    if not filing_calendar.is_working_day(day):
        return []
    weekday = day.isoweekday() if day.isoweekday() <= 5 else 1
    periods = []
    for entry in open_hours:
        weekdays = entry.get("weekdays", [])
        if isinstance(weekdays, list) and weekday in weekdays:
            periods.append((_parse_hhmm(entry["start"]), _parse_hhmm(entry["end"])))
    return sorted(periods)


def _time_of_day_shape(minute: float) -> float:
    """Relative arrival intensity: a morning peak ~9:30–10:30, an early-afternoon bump, a quiet
    last hour."""
    hour = minute / 60.0
    morning = 0.95 * math.exp(-(((hour - 10.0) / 0.65) ** 2))
    afternoon = 0.45 * math.exp(-(((hour - 14.4) / 0.75) ** 2))
    late = 0.35 / (1.0 + math.exp(-(hour - 16.2) * 4.0))
    return max(0.1, 0.55 + morning + afternoon - late)


def _day_factor(day: date, profile: _Profile) -> float:
    """The calendar's multiplier of a category's daily volume on a working day."""
    factor = _WEEKDAY_FACTOR[day.weekday()] * _MONTH_FACTOR[day.month - 1]
    to_deadline = filing_calendar.working_days_to_deadline(day)
    if to_deadline >= 0:
        pull = profile.deadline_pull * (1.4 if day.month in _QUARTER_START else 1.0)
        factor *= 1.0 + pull * math.exp(-to_deadline / 1.8)
        if day.month in _QUARTER_START:
            factor *= 1.0 + 0.12 * (profile.deadline_pull > 0.3)
    else:
        factor *= 0.8 if to_deadline >= -3 else 0.9
    if 3 <= day.month <= 5:
        factor *= 1.0 + profile.settlement_pull
    if filing_calendar.is_after_holiday(day):
        factor *= 1.25
    return factor


# Every second of a day as a timedelta, built once: adding one to the day's midnight is the
# cheapest way to the ~800k aware datetimes of three years.
_SECONDS = [timedelta(seconds=s) for s in range(86400 + 4 * 3600)]


def _simulate_category(
    day: date,
    code: str,
    prefix: str,
    profile: _Profile,
    arrivals: list[float],
    staffing: Mapping[int, int],
    rng: np.random.Generator,
) -> list[HistoricTicket]:
    """FIFO over the category's windows; window k serves while its slot's staffing exceeds k.
    Between periods and after closing the last slot's staffing holds until the queue is empty
    (nobody who took a ticket is sent home)."""
    first_window = profile.windows[0]
    count = len(arrivals)
    service = (rng.exponential(profile.service_minutes - 0.2, count) + 0.2).tolist()
    fate = rng.random(count).tolist()
    booked = (rng.random(count) < _BOOKED).tolist()
    max_open = max(staffing.values(), default=1)
    free_at = [0.0] * max_open
    # Staffing by slot number over the whole day, gaps filled with the slot before them.
    last_slot = max(staffing, default=0) // _SLOT_MINUTES
    by_slot = []
    current = 1
    for slot in range(last_slot + 1):
        current = staffing.get(slot * _SLOT_MINUTES, current)
        by_slot.append(current)
    closing_staff = by_slot[-1]

    midnight = datetime(day.year, day.month, day.day, tzinfo=ZONE)
    tickets = []
    for index in range(count):
        arrival = arrivals[index]
        best_start, best_window = math.inf, 0
        for window in range(max_open):
            start = free_at[window]
            if start < arrival:
                start = arrival
            slot = int(start // _SLOT_MINUTES)
            if slot >= last_slot:
                if window >= closing_staff:
                    continue  # closed for the rest of the day
            else:
                while window >= by_slot[slot]:
                    slot += 1
                    start = slot * _SLOT_MINUTES
                    if slot >= last_slot and window >= closing_staff:
                        start = math.inf
                        break
            if start < best_start:
                best_start, best_window = start, window
        chance = fate[index]
        if chance < _NO_SHOW:
            outcome, busy = "no_show", 0.5
        else:
            outcome = "returned" if chance < _NO_SHOW + _RETURNED else "done"
            busy = service[index]
        finish = best_start + busy
        free_at[best_window] = finish
        tickets.append(
            HistoricTicket(
                service_date=day,
                ticket_no=f"{prefix}{index + 1:03d}",
                category=code,
                taken_at=midnight + _SECONDS[int(arrival * 60)],
                called_at=midnight + _SECONDS[int(best_start * 60)],
                finished_at=midnight + _SECONDS[int(finish * 60)],
                window=f"W{first_window + best_window:02d}",
                outcome=outcome,
                booked=booked[index],
            )
        )
    return tickets


def _generate_day(
    day: date,
    profiles: Mapping[str, _Profile],
    open_hours: Sequence[Mapping[str, object]],
    seed: int,
) -> list[HistoricTicket]:
    periods = open_periods(day, open_hours)
    if not periods:
        return []
    # One generator per day: any date range of the same seed draws the same days.
    rng = np.random.default_rng([seed, day.toordinal()])
    day_noise = float(rng.lognormal(0.0, 0.07))
    steps = [m for start, end in periods for m in range(start, end, _STEP_MINUTES)]
    shape = np.array([_time_of_day_shape(m + _STEP_MINUTES / 2) for m in steps])
    shape /= shape.sum()
    tickets: list[HistoricTicket] = []
    for position, (code, profile) in enumerate(profiles.items()):
        expected = _BASE_DAILY_TICKETS * profile.share * _day_factor(day, profile) * shape
        # Overdispersed counts: a gamma-mixed Poisson per 5-minute step.
        counts = rng.poisson(expected * day_noise * rng.gamma(25.0, 1 / 25.0, len(steps)))
        offsets = rng.random(int(counts.sum())) * _STEP_MINUTES
        arrivals = np.sort(np.repeat(np.asarray(steps, dtype=float), counts) + offsets).tolist()
        per_slot: dict[int, float] = {}
        for step, load in zip(steps, expected, strict=True):
            slot = step // _SLOT_MINUTES * _SLOT_MINUTES
            per_slot[slot] = per_slot.get(slot, 0.0) + float(load)
        low, high = profile.windows
        staffing = {
            slot: min(
                high - low + 1,
                max(1, int(n / _SLOT_MINUTES * profile.service_minutes + _STAFFING_MARGIN)),
            )
            for slot, n in per_slot.items()
        }
        prefix = chr(ord("A") + position) if position < 26 else f"Z{position}"
        tickets.extend(_simulate_category(day, code, prefix, profile, arrivals, staffing, rng))
    tickets.sort(key=lambda t: t.taken_at)
    return tickets


def generate_history(
    *,
    categories: Sequence[str],
    start: date,
    end: date,
    seed: int,
    open_hours: Sequence[Mapping[str, object]] = DEFAULT_OPEN_HOURS,
) -> Iterator[HistoricTicket]:
    """Synthetic tickets from ``start`` to ``end`` inclusive, day by day in arrival order.
    Deterministic for a seed; a day's tickets do not depend on the range asked for."""
    profiles = _profiles(categories)
    day = start
    while day <= end:
        yield from _generate_day(day, profiles, open_hours, seed)
        day += timedelta(days=1)


def _batches(
    hall_id: str, tickets: Iterable[HistoricTicket], size: int, as_text: bool
) -> Iterator[list[tuple[object, ...]]]:
    """Rows in batches; ``as_text`` writes dates and times as tortoise stores them on SQLite
    (Shanghai-time text, see auth/clock.py) and booleans as 0/1."""
    batch: list[tuple[object, ...]] = []
    for t in tickets:
        if as_text:
            batch.append(
                (
                    hall_id,
                    str(t.service_date),
                    t.ticket_no,
                    t.category,
                    str(t.taken_at),
                    None if t.called_at is None else str(t.called_at),
                    None if t.finished_at is None else str(t.finished_at),
                    t.window,
                    t.outcome,
                    int(t.booked),
                )
            )
        else:
            batch.append(
                (
                    hall_id,
                    t.service_date,
                    t.ticket_no,
                    t.category,
                    t.taken_at,
                    t.called_at,
                    t.finished_at,
                    t.window,
                    t.outcome,
                    t.booked,
                )
            )
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def load_history(hall_id: str, tickets: Iterable[HistoricTicket]) -> int:
    """Bulk insert ``tickets`` as the hall's queue history; returns the rows written. COPY on
    PostgreSQL, executemany on SQLite, each batch written while the next is generated: row by
    row ORM saves would take minutes for three years."""
    connection = connections.get("default")
    postgres = connection.capabilities.dialect == "postgres"
    written = 0
    pending: asyncio.Task[None] | None = None
    async with connection.acquire_connection() as raw:
        if postgres:

            async def write(batch: list[tuple[object, ...]]) -> None:
                await raw.copy_records_to_table(
                    "hall_queue_ticket", records=batch, columns=list(_COLUMNS)
                )

        else:
            placeholders = ", ".join("?" for _ in _COLUMNS)
            sql = f"INSERT INTO hall_queue_ticket ({', '.join(_COLUMNS)}) VALUES ({placeholders})"  # noqa: S608 - fixed column names

            async def write(batch: list[tuple[object, ...]]) -> None:
                await raw.execute("BEGIN")
                await raw.executemany(sql, batch)
                await raw.commit()

        try:
            for batch in _batches(hall_id, tickets, _BATCH_ROWS, as_text=not postgres):
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(write(batch))
                written += len(batch)
                # Let the write start before the next batch is generated.
                await asyncio.sleep(0)
        finally:
            if pending is not None:
                await pending
    return written


async def has_history(hall_id: str) -> bool:
    return await QueueTicket.filter(hall_id=hall_id).exists()


async def arrivals_by_slot(
    hall_id: str, start: date, end: date, slot_minutes: int = 30
) -> dict[tuple[date, time], int]:
    """Tickets taken per (service date, slot start in Shanghai time) from ``start`` to ``end``
    inclusive; slots without a ticket are absent. Counted by the database: three years are
    ~800k rows, too many to bring over as objects."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        local = "taken_at AT TIME ZONE 'Asia/Shanghai'"
        minute = (
            f"CAST(EXTRACT(HOUR FROM {local}) AS INTEGER) * 60"
            f" + CAST(EXTRACT(MINUTE FROM {local}) AS INTEGER)"
        )
        marks: tuple[str, ...] = ("$1", "$2", "$3", "$4")
        values: list[object] = [slot_minutes, hall_id, start, end]
    else:
        # Shanghai-time text, 'YYYY-MM-DD HH:MM:SS+08:00' (see auth/clock.py).
        minute = (
            "CAST(substr(taken_at, 12, 2) AS INTEGER) * 60"
            " + CAST(substr(taken_at, 15, 2) AS INTEGER)"
        )
        marks = ("?", "?", "?", "?")
        values = [slot_minutes, hall_id, start.isoformat(), end.isoformat()]
    sql = (
        f"SELECT service_date, ({minute}) / {marks[0]} AS slot, COUNT(*) AS n"  # noqa: S608 - no input in the text
        f" FROM hall_queue_ticket WHERE hall_id = {marks[1]}"
        f" AND service_date >= {marks[2]} AND service_date <= {marks[3]}"
        " GROUP BY service_date, slot"
    )
    rows = await connection.execute_query_dict(sql, values)
    result: dict[tuple[date, time], int] = {}
    for row in rows:
        day = row["service_date"]
        if isinstance(day, str):
            day = date.fromisoformat(day)
        begin = int(row["slot"]) * slot_minutes
        result[(day, time(begin // 60, begin % 60))] = int(row["n"])
    return result
