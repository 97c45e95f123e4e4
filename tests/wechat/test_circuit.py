"""The circuit breaker: its states on a frozen clock, then through real calls to the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.wechat.conftest import FAST_RETRY, SimControl, make_miniprogram
from wechat import MiniProgramClient, RedisTokenStore, Transport, WeChatUnavailable
from wechat.circuit import CircuitBreaker, CircuitOpen
from wechat.errors import InvalidCode

BASE = "https://api.weixin.qq.com"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, open_seconds=10, clock=clock)
    for _ in range(3):
        breaker.before_call(BASE)
        breaker.failed(BASE)
    assert breaker.state(BASE) == "open"
    with pytest.raises(CircuitOpen) as raised:
        breaker.before_call(BASE)
    assert isinstance(raised.value, WeChatUnavailable)
    assert raised.value.retry_in == pytest.approx(10)


def test_a_success_between_failures_keeps_it_closed() -> None:
    breaker = CircuitBreaker(failures=3, clock=Clock())
    for outcome in ("failed", "failed", "succeeded", "failed", "failed"):
        breaker.before_call(BASE)
        getattr(breaker, outcome)(BASE)
    assert breaker.state(BASE) == "closed"
    breaker.before_call(BASE)


def test_half_open_lets_one_probe_through_and_its_success_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, open_seconds=5, clock=clock)
    breaker.before_call(BASE)
    breaker.failed(BASE)
    clock.now += 5
    assert breaker.state(BASE) == "half-open"
    breaker.before_call(BASE)  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call(BASE)  # others wait for its outcome
    breaker.succeeded(BASE)
    assert breaker.state(BASE) == "closed"
    breaker.before_call(BASE)


def test_a_failed_probe_opens_it_again_for_the_whole_period() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, open_seconds=5, clock=clock)
    for _ in range(2):
        breaker.before_call(BASE)
        breaker.failed(BASE)
    clock.now += 6
    breaker.before_call(BASE)
    breaker.failed(BASE)
    assert breaker.state(BASE) == "open"
    clock.now += 4
    with pytest.raises(CircuitOpen):
        breaker.before_call(BASE)


def test_an_abandoned_probe_lets_the_next_call_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, open_seconds=5, clock=clock)
    breaker.before_call(BASE)
    breaker.failed(BASE)
    clock.now += 5
    breaker.before_call(BASE)
    breaker.abandoned(BASE)
    breaker.before_call(BASE)


def test_each_api_base_has_its_own_circuit() -> None:
    breaker = CircuitBreaker(failures=1, clock=Clock())
    breaker.before_call(BASE)
    breaker.failed(BASE)
    breaker.before_call("https://qyapi.weixin.qq.com")
    assert breaker.state("https://qyapi.weixin.qq.com") == "closed"


@pytest.fixture
async def breaking_transport() -> AsyncIterator[Transport]:
    breaker = CircuitBreaker(failures=2, open_seconds=0.5)
    async with Transport(timeout=2.0, retry=FAST_RETRY, trust_env=False, breaker=breaker) as t:
        yield t


@pytest.fixture
def fragile_miniprogram(
    sim: SimControl,
    simulator_url: str,
    breaking_transport: Transport,
    token_store: RedisTokenStore,
) -> MiniProgramClient:
    return make_miniprogram(simulator_url, breaking_transport, token_store)


async def test_a_failing_api_is_left_alone_then_probed_and_used_again(
    fragile_miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    await sim.fault("jscode2session", "http", count=100, status=500)
    for _ in range(2):
        with pytest.raises(WeChatUnavailable):
            await fragile_miniprogram.code2session("sim:o-circuit")
    calls = (await sim.counters())["jscode2session"]
    assert calls == 2 * FAST_RETRY.attempts
    started = time.monotonic()
    with pytest.raises(CircuitOpen):
        await fragile_miniprogram.code2session("sim:o-circuit")
    assert time.monotonic() - started < 0.05
    assert (await sim.counters())["jscode2session"] == calls  # not even tried
    await sim.http.delete("/control/faults")
    await asyncio.sleep(0.5)
    session = await fragile_miniprogram.code2session("sim:o-circuit")
    assert session.openid == "o-circuit"


async def test_an_errcode_is_an_answer_and_keeps_the_circuit_closed(
    fragile_miniprogram: MiniProgramClient, breaking_transport: Transport, sim: SimControl
) -> None:
    for _ in range(4):
        with pytest.raises(InvalidCode):
            await fragile_miniprogram.code2session("not-a-sim-code")
    assert (
        breaking_transport.breaker.state(
            sim.http.base_url.scheme + "://" + sim.http.base_url.netloc.decode()
        )
        == "closed"
    )
