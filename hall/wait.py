"""Wait estimates per category: Erlang C (M/M/c) and the observed queue.

Rates are per minute. The arrival rate λ of a category is the tickets taken in the last hour, the
service rate μ of one window is 1 / the mean handling time (called → finished) of the tickets
finished in the last hour; an hour with too few tickets falls back to the same weekday and
30-minute slot over the last eight weeks. The same tallying code runs over database rows and over
in-memory tickets (the backtest in ``hall/wait_backtest.py``).

Which estimate the hall shows: the live status always knows how many people wait, and for a
person joining now that count says more than the stationary Erlang C mean, which only knows the
rates (the backtest measures by how much). So ``estimate_wait`` uses the queue when it is known
and Erlang C when it is not; with nobody waiting, the M/M/c model still supplies the one unknown,
whether all windows are busy (see ``queue_wait``).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce

from tortoise.expressions import Q

from auth.clock import local
from hall.models import QueueTicket

RECENT = timedelta(hours=1)
# Fewer tickets than this in the last hour make a rate too noisy to trust on its own.
MIN_TICKETS = 5
SLOT = timedelta(minutes=30)
HISTORY_WEEKS = 8
# A ticket finished in a span was taken at most this long before it (tickets restart daily);
# bounding taken_at lets the (hall_id, taken_at) index serve the "finished in span" arm too.
_LONGEST_VISIT = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class QueueLoad:
    """What the live status knows about one category right now."""

    category: str
    waiting: int
    open_windows: int  # c: windows that serve this category now


@dataclass(frozen=True, slots=True)
class TicketTimes:
    """The part of a queue ticket the rates need (a QueueTicket row or a HistoricTicket)."""

    category: str
    taken_at: datetime
    called_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Tally:
    """What some span of queue history says about one category."""

    minutes: float = 0.0  # how long the span(s) observed the hall
    arrivals: int = 0
    served: int = 0  # tickets finished with a known handling time
    service_minutes: float = 0.0  # their handling time, summed

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.minutes + other.minutes,
            self.arrivals + other.arrivals,
            self.served + other.served,
            self.service_minutes + other.service_minutes,
        )


@dataclass(frozen=True, slots=True)
class Rates:
    """λ (arrivals per minute) and μ (services per minute of one window; None when no ticket
    was finished to measure it), with where each came from: "recent" or "history"."""

    arrival_rate: float
    service_rate: float | None
    arrival_source: str
    service_source: str


# --------------------------------------------------------------------------- queueing formulas


def erlang_b(c: int, offered_load: float) -> float:
    """Blocking probability of M/M/c/c: all c servers busy. The recurrence
    B(k) = a·B(k−1) / (k + a·B(k−1)) stays within [0, 1], so no factorial ever overflows."""
    if offered_load < 0:
        raise ValueError("offered load must not be negative")
    blocking = 1.0
    for k in range(1, c + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return blocking


def erlang_c(c: int, offered_load: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = λ/μ. 1 when the queue
    is unstable (a ≥ c) or there is no server: everyone waits."""
    if c <= 0 or offered_load >= c:
        return 1.0
    blocking = erlang_b(c, offered_load)
    return c * blocking / (c - offered_load * (1.0 - blocking))


def expected_wait(arrival_rate: float, service_rate: float, c: int) -> float | None:
    """Stationary mean wait Wq = C(c, λ/μ) / (cμ − λ), in the rates' time unit (minutes here).

    None when λ ≥ cμ or c = 0: the M/M/c queue then has no steady state (it grows without bound
    or nobody serves), so any number would be made up; the caller says "unknown" instead."""
    if c <= 0 or service_rate <= 0 or arrival_rate >= c * service_rate:
        return None
    if arrival_rate <= 0:
        return 0.0
    return erlang_c(c, arrival_rate / service_rate) / (c * service_rate - arrival_rate)


def queue_wait(waiting: int, arrival_rate: float, service_rate: float, c: int) -> float | None:
    """Expected wait of someone who takes a ticket now with ``waiting`` people (not yet called)
    ahead, FIFO over c windows each serving at rate μ.

    With anyone waiting all c windows are busy (else that person would have been called), and
    the newcomer starts at the (waiting + 1)-th departure: (waiting + 1) / (cμ), because
    exponential handling times make busy windows free up at rate cμ whatever they have done.
    (Counted in people in the system, n = waiting + c, this is the textbook (n − c + 1) / (cμ).)
    With nobody waiting the windows may or may not all be busy; the M/M/c stationary law gives
    P(all busy | queue empty) = Erlang B(c, λ/μ), and then the wait is one departure, 1 / (cμ).
    Unlike ``expected_wait`` this holds in overload too: the people ahead are counted, not
    assumed to be in steady state."""
    if c <= 0 or service_rate <= 0:
        return None
    departures = c * service_rate
    if waiting > 0:
        return (waiting + 1) / departures
    return erlang_b(c, max(arrival_rate, 0.0) / service_rate) / departures


def estimate_wait(waiting: int | None, rates: Rates | None, c: int) -> float | None:
    """The wait shown for a category: the observed queue when ``waiting`` is known, stationary
    Erlang C when it is not; None without open windows or a measured service rate."""
    if rates is None or rates.service_rate is None or c <= 0:
        return None
    if waiting is None:
        return expected_wait(rates.arrival_rate, rates.service_rate, c)
    return queue_wait(waiting, rates.arrival_rate, rates.service_rate, c)


# --------------------------------------------------------------------------- rates from tickets


def tally(tickets: Iterable[TicketTimes], start: datetime, end: datetime) -> dict[str, Tally]:
    """Arrivals (taken in (start, end]) and services (finished in (start, end]) per category."""
    minutes = (end - start).total_seconds() / 60.0
    arrivals: dict[str, int] = {}
    served: dict[str, int] = {}
    service: dict[str, float] = {}
    for t in tickets:
        if start < t.taken_at <= end:
            arrivals[t.category] = arrivals.get(t.category, 0) + 1
        if t.finished_at is not None and t.called_at is not None and start < t.finished_at <= end:
            # No-shows count too: the window was held for them all the same.
            served[t.category] = served.get(t.category, 0) + 1
            spent = (t.finished_at - t.called_at).total_seconds() / 60.0
            service[t.category] = service.get(t.category, 0.0) + spent
    return {
        category: Tally(
            minutes, arrivals.get(category, 0), served.get(category, 0), service.get(category, 0.0)
        )
        for category in arrivals.keys() | served.keys()
    }


def history_spans(now: datetime, weeks: int = HISTORY_WEEKS) -> list[tuple[datetime, datetime]]:
    """The 30-minute slot ``now`` falls in, on the same weekday of each of the last ``weeks``
    weeks, as (start, end] spans in the database's zone."""
    here = local(now)
    slot_start = here.replace(minute=here.minute - here.minute % 30, second=0, microsecond=0)
    return [
        (slot_start - timedelta(weeks=w), slot_start - timedelta(weeks=w) + SLOT)
        for w in range(1, weeks + 1)
    ]


def tally_spans(
    tickets: Iterable[TicketTimes], spans: Sequence[tuple[datetime, datetime]]
) -> dict[str, Tally]:
    """Tallies summed over the spans. A span counts as observed time for a category only if
    someone took a ticket in it: a week the hall was closed (a holiday) is no evidence that
    nobody comes."""
    rows = list(tickets)
    total: dict[str, Tally] = {}
    for start, end in spans:
        for category, part in tally(rows, start, end).items():
            if part.arrivals == 0:
                part = Tally(0.0, 0, part.served, part.service_minutes)
            total[category] = total.get(category, Tally()) + part
    return total


def needs_history(recent: Tally | None) -> bool:
    return recent is None or recent.arrivals < MIN_TICKETS or recent.served < MIN_TICKETS


def choose_rates(recent: Tally | None, history: Tally | None) -> Rates | None:
    """λ and μ from the last hour, each falling back to the slot's history when the hour saw
    fewer than MIN_TICKETS (and the history saw more than the hour did)."""
    recent = recent or Tally(minutes=RECENT.total_seconds() / 60.0)
    history = history or Tally()
    if recent.arrivals < MIN_TICKETS and history.minutes > 0 and history.arrivals > recent.arrivals:
        arrival_rate, arrival_source = history.arrivals / history.minutes, "history"
    else:
        arrival_rate, arrival_source = recent.arrivals / recent.minutes, "recent"
    service_rate: float | None = None
    service_source = "recent"
    source = recent
    if recent.served < MIN_TICKETS and history.served > recent.served:
        source, service_source = history, "history"
    if source.served > 0 and source.service_minutes > 0:
        service_rate = source.served / source.service_minutes
    return Rates(arrival_rate, service_rate, arrival_source, service_source)


# --------------------------------------------------------------------------- from the database


async def _tickets_in(
    hall_id: str, categories: Sequence[str], spans: Sequence[tuple[datetime, datetime]]
) -> list[TicketTimes]:
    """One query: the hall's tickets of ``categories`` taken or finished in any of the spans."""
    # Times go in as Shanghai time: SQLite compares them as text (auth/clock.py).
    conditions = [
        Q(taken_at__gt=local(start) - _LONGEST_VISIT, taken_at__lte=local(end))
        & (
            Q(taken_at__gt=local(start), taken_at__lte=local(end))
            | Q(finished_at__gt=local(start), finished_at__lte=local(end))
        )
        for start, end in spans
    ]
    rows = await (
        QueueTicket.filter(hall_id=hall_id, category__in=list(categories))
        .filter(reduce(operator.or_, conditions))
        .values_list("category", "taken_at", "called_at", "finished_at")
    )
    return [TicketTimes(*row) for row in rows]


async def current_rates(
    hall_id: str, categories: Sequence[str], now: datetime
) -> dict[str, Rates | None]:
    """λ and μ per category at ``now``: one query for the last hour, a second for the slot's
    history only when some category's hour was too thin."""
    if not categories:
        return {}
    recent = tally(await _tickets_in(hall_id, categories, [(now - RECENT, now)]), now - RECENT, now)
    history: dict[str, Tally] = {}
    if any(needs_history(recent.get(c)) for c in categories):
        spans = history_spans(now)
        history = tally_spans(await _tickets_in(hall_id, categories, spans), spans)
    return {c: choose_rates(recent.get(c), history.get(c)) for c in categories}


async def estimate_waits(
    hall_id: str, loads: Sequence[QueueLoad], now: datetime
) -> dict[str, float | None]:
    """Expected wait in minutes per category for someone taking a ticket now, None where it
    cannot be estimated (no open window, or no handling time measured in the last hour nor in
    this slot's history). Reads the last hour of queue history (falling back to the history of
    this time slot) for the arrival and service rates; see ``estimate_wait`` for the model."""
    rates = await current_rates(hall_id, [load.category for load in loads], now)
    return {
        load.category: estimate_wait(load.waiting, rates[load.category], load.open_windows)
        for load in loads
    }
