"""Backtest of the wait estimates on the demo queue history, in memory.

At each ticket's taken time the estimators see only what the live status would have seen then:
the people of its category still waiting, the open windows (distinct windows that served the
category in the last 30 minutes), λ and μ from the preceding hour (the slot's history of the
previous eight weeks when the hour was too thin; ``hall.wait`` does the tallying). Their
estimates are compared with the ticket's actual wait (called − taken):

- Erlang C: the stationary M/M/c mean, ``expected_wait(λ, μ, c)``;
- queue: the observed queue, ``queue_wait(waiting, λ, μ, c)`` (what the hall shows);
- naive: the mean wait of the tickets called in the last hour.

Run ``python -m hall.wait_backtest [output path]``.
"""

from __future__ import annotations

import bisect
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from auth.clock import ZONE
from hall.history import HistoricTicket, generate_history
from hall.wait import (
    RECENT,
    Rates,
    Tally,
    TicketTimes,
    choose_rates,
    expected_wait,
    history_spans,
    needs_history,
    queue_wait,
    tally,
    tally_spans,
)

CATEGORIES = ("invoice", "filing", "registration", "consulting")
SEED = 20261129
# Eight weeks evaluated, after eight weeks that give the first of them their slot history.
EVALUATED_FROM = date(2026, 9, 7)
EVALUATED_TO = date(2026, 11, 1)
WARM_UP = timedelta(weeks=8)
OPEN_WINDOW_LOOKBACK = timedelta(minutes=30)
ESTIMATORS = ("erlang_c", "queue", "naive")
DEFAULT_OUTPUT = Path("bench/results/wait_backtest.txt")


@dataclass(slots=True)
class _DayQueue:
    """One day's tickets of one category, indexed for "what was known at time t"."""

    tickets: list[HistoricTicket]
    taken: list[datetime] = field(default_factory=list)
    called: list[datetime] = field(default_factory=list)  # sorted on its own
    longest_visit: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        self.tickets.sort(key=lambda t: t.taken_at)
        self.taken = [t.taken_at for t in self.tickets]
        self.called = sorted(t.called_at for t in self.tickets if t.called_at is not None)
        self.longest_visit = max(
            ((t.finished_at or t.called_at or t.taken_at) - t.taken_at for t in self.tickets),
            default=timedelta(0),
        )

    def since(self, moment: datetime, end: datetime) -> list[HistoricTicket]:
        """Tickets taken in (moment − longest visit, end]: all that can have been taken or
        finished in (moment, end]."""
        first = bisect.bisect_right(self.taken, moment - self.longest_visit)
        last = bisect.bisect_right(self.taken, end)
        return self.tickets[first:last]

    def waiting_at(self, moment: datetime) -> int:
        """Taken before ``moment`` and not yet called."""
        return max(
            0, bisect.bisect_left(self.taken, moment) - bisect.bisect_right(self.called, moment)
        )


@dataclass(frozen=True, slots=True)
class Observation:
    actual: float
    waiting: int
    estimates: dict[str, float | None]


def _times(tickets: Sequence[HistoricTicket]) -> list[TicketTimes]:
    return [TicketTimes(t.category, t.taken_at, t.called_at, t.finished_at) for t in tickets]


class Replay:
    """The history, by day and category, and the state the estimators see at a moment."""

    def __init__(self, tickets: Sequence[HistoricTicket]) -> None:
        grouped: dict[tuple[date, str], list[HistoricTicket]] = {}
        for t in tickets:
            grouped.setdefault((t.service_date, t.category), []).append(t)
        self.days = {key: _DayQueue(group) for key, group in grouped.items()}
        self._history: dict[tuple[datetime, str], Tally | None] = {}

    def _slot_history(self, moment: datetime, category: str) -> Tally | None:
        spans = history_spans(moment)
        key = (spans[0][0], category)
        if key not in self._history:
            rows: list[HistoricTicket] = []
            for start, end in spans:
                day = self.days.get((start.date(), category))
                if day is not None:
                    rows.extend(day.since(start, end))
            self._history[key] = tally_spans(_times(rows), spans).get(category)
        return self._history[key]

    def rates_at(self, day: _DayQueue, moment: datetime, category: str) -> Rates | None:
        start = moment - RECENT
        # Strictly before the moment: the ticket being estimated is not yet history.
        before = moment - timedelta(microseconds=1)
        recent = tally(_times(day.since(start, before)), start, before).get(category)
        history = self._slot_history(moment, category) if needs_history(recent) else None
        return choose_rates(recent, history)

    @staticmethod
    def open_windows(day: _DayQueue, moment: datetime) -> int:
        start = moment - OPEN_WINDOW_LOOKBACK
        return len(
            {
                t.window
                for t in day.since(start, moment)
                if t.called_at is not None
                and t.called_at < moment
                and (t.finished_at is None or t.finished_at > start)
            }
        )

    @staticmethod
    def naive(day: _DayQueue, moment: datetime) -> float | None:
        start = moment - RECENT
        waits = [
            (t.called_at - t.taken_at).total_seconds() / 60.0
            for t in day.since(start, moment)
            if t.called_at is not None and start < t.called_at < moment
        ]
        return statistics.fmean(waits) if waits else None

    def observe(self, ticket: HistoricTicket) -> Observation | None:
        if ticket.called_at is None:
            return None
        day = self.days[(ticket.service_date, ticket.category)]
        moment = ticket.taken_at
        rates = self.rates_at(day, moment, ticket.category)
        c = self.open_windows(day, moment)
        waiting = day.waiting_at(moment)
        erlang: float | None = None
        queue: float | None = None
        if rates is not None and rates.service_rate is not None:
            erlang = expected_wait(rates.arrival_rate, rates.service_rate, c)
            queue = queue_wait(waiting, rates.arrival_rate, rates.service_rate, c)
        return Observation(
            actual=(ticket.called_at - ticket.taken_at).total_seconds() / 60.0,
            waiting=waiting,
            estimates={"erlang_c": erlang, "queue": queue, "naive": self.naive(day, moment)},
        )


@dataclass(frozen=True, slots=True)
class Errors:
    count: int
    mae: float
    median: float
    p90: float
    bias: float  # mean of estimate − actual

    @staticmethod
    def of(pairs: Sequence[tuple[float, float]]) -> Errors | None:
        if not pairs:
            return None
        absolute = sorted(abs(e - a) for e, a in pairs)
        return Errors(
            count=len(pairs),
            mae=statistics.fmean(absolute),
            median=statistics.median(absolute),
            p90=absolute[min(len(absolute) - 1, int(0.9 * len(absolute)))],
            bias=statistics.fmean(e - a for e, a in pairs),
        )


@dataclass(frozen=True, slots=True)
class BacktestResult:
    tickets: int
    observations: list[Observation]
    seconds: float

    def errors(self, name: str, *, common: bool, waiting: str = "all") -> Errors | None:
        pairs = []
        for o in self.observations:
            if (waiting == "empty" and o.waiting > 0) or (waiting == "queued" and o.waiting == 0):
                continue
            if common and any(o.estimates[n] is None for n in ESTIMATORS):
                continue
            estimate = o.estimates[name]
            if estimate is not None:
                pairs.append((estimate, o.actual))
        return Errors.of(pairs)


def run_backtest(
    *,
    start: date = EVALUATED_FROM,
    end: date = EVALUATED_TO,
    seed: int = SEED,
    categories: Sequence[str] = CATEGORIES,
    warm_up: timedelta = WARM_UP,
) -> BacktestResult:
    began = time.perf_counter()
    history = list(
        generate_history(categories=categories, start=start - warm_up, end=end, seed=seed)
    )
    replay = Replay(history)
    evaluated = [t for t in history if start <= t.service_date <= end]
    observations = [o for t in evaluated if (o := replay.observe(t)) is not None]
    return BacktestResult(len(evaluated), observations, time.perf_counter() - began)


def _row(label: str, errors: Errors | None, total: int) -> str:
    if errors is None:
        return f"  {label:<28} no estimates"
    return (
        f"  {label:<28} n {errors.count:>6} ({errors.count / total:6.1%})  MAE {errors.mae:5.2f}"
        f"  median {errors.median:5.2f}  p90 {errors.p90:5.2f}  bias {errors.bias:+6.2f}"
    )


def format_report(result: BacktestResult, *, start: date, end: date, seed: int) -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "?"
    actual = [o.actual for o in result.observations]
    total = len(result.observations)
    lines = [
        f"{datetime.now(ZONE).isoformat(timespec='seconds')}  wait estimate backtest "
        f"(python -m hall.wait_backtest); code {commit or '?'}",
        f"  demo history seed {seed}, categories {', '.join(CATEGORIES)}; evaluated {start} .. "
        f"{end} after {WARM_UP.days // 7} weeks of warm-up; {result.tickets} tickets, "
        f"{total} called; replayed in {result.seconds:.1f} s",
        f"  actual wait (minutes): mean {statistics.fmean(actual):.2f}, median "
        f"{statistics.median(actual):.2f}, p90 {sorted(actual)[int(0.9 * total)]:.2f}",
        "  absolute error in minutes against the actual wait (called - taken):",
        " where all three estimators answer (no open window, overload or an empty hour gives"
        " no answer):",
    ]
    for name in ESTIMATORS:
        lines.append(_row(name, result.errors(name, common=True), total))
    lines.append(" each estimator wherever it answers:")
    for name in ESTIMATORS:
        lines.append(_row(name, result.errors(name, common=False), total))
    for waiting, label in (("empty", "nobody waiting"), ("queued", "someone waiting")):
        lines.append(f" common set, {label} when the ticket was taken:")
        for name in ESTIMATORS:
            lines.append(_row(name, result.errors(name, common=True, waiting=waiting), total))
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] = ()) -> None:
    output = Path(argv[0]) if argv else DEFAULT_OUTPUT
    result = run_backtest()
    report = format_report(result, start=EVALUATED_FROM, end=EVALUATED_TO, seed=SEED)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report, encoding="utf-8")
    sys.stdout.write(report)


if __name__ == "__main__":
    main(sys.argv[1:])
