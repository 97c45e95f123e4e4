"""Retries, timeouts, concurrency and log hygiene of the transport, through real client calls."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from tests.wechat.conftest import FAST_RETRY, SimControl, make_miniprogram, make_wecom
from wechat import (
    FetchedToken,
    MiniProgramClient,
    RedisTokenStore,
    RetryPolicy,
    SystemBusy,
    TokenKey,
    Transport,
    WeChatUnavailable,
)


@pytest.fixture
async def impatient_transport() -> AsyncIterator[Transport]:
    async with Transport(timeout=0.3, retry=FAST_RETRY, trust_env=False) as transport:
        yield transport


async def test_busy_is_retried_then_succeeds(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    await sim.fault("jscode2session", "errcode", count=2, errcode=-1)
    session = await miniprogram.code2session("sim:o-alice")
    assert session.openid == "o-alice"
    assert (await sim.counters())["jscode2session"] == 3


async def test_busy_on_every_attempt_is_raised(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    await sim.fault("jscode2session", "errcode", count=5, errcode=-1)
    with pytest.raises(SystemBusy):
        await miniprogram.code2session("sim:o-alice")
    assert (await sim.counters())["jscode2session"] == FAST_RETRY.attempts


async def test_http_500_is_retried_then_succeeds(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    await sim.fault("jscode2session", "http", count=2, status=502)
    assert (await miniprogram.code2session("sim:o-alice")).openid == "o-alice"
    assert (await sim.counters())["jscode2session"] == 3


async def test_dropped_connections_end_in_unavailable(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    await sim.fault("jscode2session", "drop", count=5)
    with pytest.raises(WeChatUnavailable):
        await miniprogram.code2session("sim:o-alice")
    assert (await sim.counters())["jscode2session"] == FAST_RETRY.attempts


async def test_a_dropped_connection_once_is_survived(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    await sim.fault("jscode2session", "drop")
    assert (await miniprogram.code2session("sim:o-alice")).openid == "o-alice"
    assert (await sim.counters())["jscode2session"] == 2


async def test_side_effects_are_not_retried_after_an_unclear_failure(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    # The message may have gone out before the 500 / the dropped connection; resending could
    # notify the taxpayer twice, so the caller decides (its outbox retries idempotently).
    await miniprogram.get_phone_number("sim:13800138000")  # cache a token first
    await sim.fault("subscribe_send", "http", status=500)
    with pytest.raises(WeChatUnavailable):
        await miniprogram.send_subscribe_message("o-alice", "tmpl", {"thing1": "x"})
    await sim.fault("subscribe_send", "drop")
    with pytest.raises(WeChatUnavailable):
        await miniprogram.send_subscribe_message("o-alice", "tmpl", {"thing1": "x"})
    assert (await sim.counters())["subscribe_send"] == 2
    assert await sim.messages("subscribe") == []


async def test_busy_is_retried_even_for_side_effects(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    await sim.fault("subscribe_send", "errcode", errcode=-1)
    await miniprogram.send_subscribe_message("o-alice", "tmpl", {"thing1": "x"})
    assert len(await sim.messages("subscribe")) == 1
    assert (await sim.counters())["subscribe_send"] == 2


async def test_hanging_endpoint_times_out_then_unavailable(
    sim: SimControl,
    simulator_url: str,
    impatient_transport: Transport,
    token_store: RedisTokenStore,
) -> None:
    client = make_miniprogram(simulator_url, impatient_transport, token_store)
    await sim.fault("jscode2session", "hang", count=5, ms=3000)
    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        await client.code2session("sim:o-alice")
    elapsed = time.monotonic() - started
    assert 0.3 * FAST_RETRY.attempts <= elapsed < 2.0
    assert (await sim.counters())["jscode2session"] == FAST_RETRY.attempts


async def test_latency_is_honoured_by_the_timeout(
    sim: SimControl,
    simulator_url: str,
    impatient_transport: Transport,
    token_store: RedisTokenStore,
) -> None:
    client = make_miniprogram(simulator_url, impatient_transport, token_store)
    await sim.latency("jscode2session", 150)
    started = time.monotonic()
    assert (await client.code2session("sim:o-alice")).openid == "o-alice"
    assert time.monotonic() - started >= 0.15

    await sim.latency("jscode2session", 1000)
    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        await client.code2session("sim:o-alice")
    assert time.monotonic() - started < 0.3 * FAST_RETRY.attempts + 0.7


async def test_connection_refused_is_retried_then_unavailable(
    token_store: RedisTokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with Transport(timeout=1, retry=FAST_RETRY, trust_env=False) as transport:
        # Port 9 (discard) is closed on loopback: every connect is refused.
        client = make_miniprogram("http://127.0.0.1:9", transport, token_store)
        with (
            caplog.at_level(logging.WARNING, logger="wechat.transport"),
            pytest.raises(WeChatUnavailable),
        ):
            await client.code2session("sim:o-alice")
    retries = [r for r in caplog.records if r.name == "wechat.transport"]
    assert len(retries) == FAST_RETRY.attempts - 1


async def test_hundreds_of_concurrent_calls_do_not_serialise(
    sim: SimControl, simulator_url: str, token_store: RedisTokenStore
) -> None:
    # 200 calls that each take 2 s at the server: any pool of fewer than 200 connections (httpx's
    # default is 100) needs a second round, so 4 s or more; concurrent calls need ~2 s plus the
    # client's per-request CPU.
    calls, latency = 200, 2.0
    async with Transport(timeout=10, retry=RetryPolicy(attempts=1), trust_env=False) as transport:
        client = make_miniprogram(simulator_url, transport, token_store)
        await sim.latency("jscode2session", int(latency * 1000))
        started = time.monotonic()
        sessions = await asyncio.gather(*(client.code2session(f"sim:o-{i}") for i in range(calls)))
        elapsed = time.monotonic() - started
    assert {s.openid for s in sessions} == {f"o-{i}" for i in range(calls)}
    assert latency <= elapsed < 2 * latency - 0.1, f"{calls} concurrent calls took {elapsed:.2f}s"


async def never_fetch() -> FetchedToken:
    raise AssertionError("the token should be cached")


async def test_no_secret_reaches_a_log_line(
    sim: SimControl,
    simulator_url: str,
    transport: Transport,
    token_store: RedisTokenStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    miniprogram = make_miniprogram(simulator_url, transport, token_store)
    wecom = make_wecom(simulator_url, transport, token_store)
    caplog.set_level(logging.DEBUG)
    # The app's logging config holds httpx at WARNING; here its request lines are the point.
    caplog.set_level(logging.DEBUG, logger="httpx")
    await sim.fault("getuserphonenumber", "errcode", errcode=-1)
    session = await miniprogram.code2session("sim:o-secretive")
    phone = await miniprogram.get_phone_number("sim:13812345678")
    await sim.expire_tokens()
    await miniprogram.get_phone_number("sim:13812345678")
    await wecom.get_user_info("sim:zhangsan")
    access_token = await token_store.get(
        # The token the calls used, to look for it in the logs.
        TokenKey("miniprogram", miniprogram.appid),
        never_fetch,
    )
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "HTTP Request" in logged, "httpx request logging was captured"
    assert "retry" in logged, "our own log lines were captured"
    assert "refreshing" in logged
    for secret in (
        "wx-sim-secret",
        "ww-sim-secret",
        access_token,
        session.session_key,
        phone.phone_number,
        "sim:o-secretive",
        "sim:zhangsan",
    ):
        assert secret not in logged
