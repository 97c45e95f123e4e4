"""China's working days and the monthly filing deadline (征期), from the ``holidays`` package.

The package knows the public holidays, the substituted days off and, for the years the State
Council has announced, the weekend days turned into working days (调休上班). Years it has no
announcement for get the fixed holidays only, which is the best anyone can say in advance.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from functools import lru_cache

import holidays

_DEADLINE_DAY = 15
# A break of at least this many days in a row (weekends included) moves the deadline by its length.
_LONG_BREAK_DAYS = 3


@lru_cache(maxsize=64)
def _china(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("CN", years=year)


def is_holiday(day: date) -> bool:
    """A public holiday or a substituted day off (the hall is closed)."""
    return day in _china(day.year)


def is_working_day(day: date) -> bool:
    """Monday to Friday unless a holiday, plus the weekend days made working days (调休)."""
    if day in _china(day.year).weekend_workdays:
        return True
    return day.weekday() < 5 and not is_holiday(day)


def next_working_day(day: date) -> date:
    """``day`` itself if it is a working day, else the first working day after it."""
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def _break_around(day: date) -> tuple[date, date]:
    """The run of consecutive non-working days containing ``day`` (a non-working day)."""
    first = last = day
    while not is_working_day(first - timedelta(days=1)):
        first -= timedelta(days=1)
    while not is_working_day(last + timedelta(days=1)):
        last += timedelta(days=1)
    return first, last


@lru_cache(maxsize=512)
def filing_deadline(year: int, month: int) -> date:
    """The last day of the monthly filing period of ``year``-``month``.

    The rule of the State Taxation Administration: the 15th; when a holiday break of three days
    or more falls within the 1st to the 15th, later by the break's days; then, if that is not a
    working day, the next working day. The STA publishes the actual calendar each year (it
    occasionally rounds differently); we approximate it by counting every day of such a break that
    lies in this month (a break running from late January into February counts its February
    days only), which reproduces e.g. 2024-02-23, 2024-04-18 and 2025-02-19.
    """
    extension = 0
    day = date(year, month, 1)
    last_counted = date(year, month, 1) - timedelta(days=1)
    while day.day <= _DEADLINE_DAY:
        if day > last_counted and is_holiday(day):
            first, last = _break_around(day)
            if (last - first).days + 1 >= _LONG_BREAK_DAYS:
                month_last = date(year, month, calendar.monthrange(year, month)[1])
                extension += (min(last, month_last) - max(first, date(year, month, 1))).days + 1
            last_counted = last
        day += timedelta(days=1)
    return next_working_day(date(year, month, _DEADLINE_DAY) + timedelta(days=extension))


def working_days_between(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when ``end <= start``)."""
    count = 0
    day = start + timedelta(days=1)
    while day <= end:
        count += is_working_day(day)
        day += timedelta(days=1)
    return count


def working_days_to_deadline(day: date) -> int:
    """Working days from ``day`` to this month's deadline (0 on the deadline itself); negative
    after it (-1 the working day after the deadline, and so on)."""
    deadline = filing_deadline(day.year, day.month)
    if day <= deadline:
        return working_days_between(day, deadline)
    return -working_days_between(deadline, day)


def is_after_holiday(day: date) -> bool:
    """A working day right after a holiday break (people come back with what waited)."""
    previous = day - timedelta(days=1)
    while not is_working_day(previous):
        if is_holiday(previous):
            return True
        previous -= timedelta(days=1)
    return False
