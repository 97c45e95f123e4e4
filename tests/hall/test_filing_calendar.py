"""The monthly filing deadline and working days, against the `holidays` package's calendar."""

from __future__ import annotations

from datetime import date

import pytest

from hall.filing_calendar import (
    filing_deadline,
    is_after_holiday,
    is_holiday,
    is_working_day,
    working_days_to_deadline,
)


@pytest.mark.parametrize(
    ("year", "month", "deadline"),
    [
        # National Day 10-01..10-07 (7 days) lies in 1..15: 15 + 7.
        (2024, 10, date(2024, 10, 22)),
        # The Spring Festival break 01-28..02-04 has four February days: 15 + 4.
        (2025, 2, date(2025, 2, 19)),
        # The whole 2024 break 02-10..02-17 counts: 15 + 8 (the STA's published 2024-02-23).
        (2024, 2, date(2024, 2, 23)),
        # Qingming 04-04..04-06, three days: 15 + 3 (the STA's 2024-04-18).
        (2024, 4, date(2024, 4, 18)),
        # No break, the 15th a working day.
        (2024, 11, date(2024, 11, 15)),
        # 2025-03-15 is a Saturday: the next working day.
        (2025, 3, date(2025, 3, 17)),
    ],
)
def test_known_deadlines(year: int, month: int, deadline: date) -> None:
    assert filing_deadline(year, month) == deadline


def test_the_package_knows_the_breaks_the_deadlines_rest_on() -> None:
    assert all(is_holiday(date(2024, 10, d)) for d in (1, 2, 3, 4, 7))
    assert all(not is_working_day(date(2024, 10, d)) for d in range(1, 8))
    assert is_working_day(date(2024, 10, 8))
    assert all(not is_working_day(date(2025, m, d)) for m, d in ((1, 28), (2, 3), (2, 4)))
    assert is_working_day(date(2025, 2, 5))


def test_adjusted_weekend_working_days_are_working_days() -> None:
    # 调休: Sunday 2024-02-04 and Saturday 2024-10-12 were working days.
    assert date(2024, 2, 4).weekday() == 6
    assert is_working_day(date(2024, 2, 4))
    assert is_working_day(date(2024, 10, 12))
    assert not is_working_day(date(2024, 10, 13))


def test_a_deadline_is_always_a_working_day_from_the_15th_on() -> None:
    for year in (2023, 2024, 2025, 2026):
        for month in range(1, 13):
            deadline = filing_deadline(year, month)
            assert deadline.day >= 15
            assert is_working_day(deadline)


def test_working_days_to_deadline_counts_down_and_past() -> None:
    assert working_days_to_deadline(date(2024, 10, 22)) == 0
    assert working_days_to_deadline(date(2024, 10, 21)) == 1
    # Friday 10-18 to Tuesday 10-22: Mon and Tue.
    assert working_days_to_deadline(date(2024, 10, 18)) == 2
    assert working_days_to_deadline(date(2024, 10, 23)) == -1


def test_after_holiday_is_the_first_working_day_after_a_break() -> None:
    assert is_after_holiday(date(2024, 10, 8))
    assert not is_after_holiday(date(2024, 10, 9))
    # After an ordinary weekend: not a holiday.
    assert not is_after_holiday(date(2024, 11, 18))
