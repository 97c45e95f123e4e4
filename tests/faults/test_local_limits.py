"""The progress lookup's fallback limits, counted in a worker's memory while Redis is down."""

from __future__ import annotations

from auth.ratelimit import Limit
from miniapp_api.routes.progress import LocalLimits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_same_limits_hold_in_memory_and_the_window_ends() -> None:
    clock = Clock()
    limits = LocalLimits(clock=clock)
    counts = [("progress_ip", "10.0.0.1", Limit(100, 600)), ("progress_no", "N1", Limit(3, 600))]
    assert [limits.hit_each(counts).allowed for _ in range(4)] == [True, True, True, False]
    clock.now += 599
    refused = limits.hit_each(counts)
    assert not refused.allowed
    assert refused.retry_after == 1
    clock.now += 1
    assert limits.hit_each(counts).allowed


def test_a_full_table_is_cleared_rather_than_grown() -> None:
    limits = LocalLimits(max_keys=10, clock=Clock())
    for i in range(50):
        assert limits.hit_each([("progress_no", f"N{i}", Limit(1, 600))]).allowed
    assert len(limits._windows) <= 10
