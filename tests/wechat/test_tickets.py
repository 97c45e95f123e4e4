"""WeComClient's JS-SDK tickets against the simulator: cached in the token store for WeCom's
``expires_in``, fetched once across workers, dropped only while still the cached one, and fetched
through the access-token retry like any other call."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis_asyncio

from tests.wechat.conftest import SIM, SimControl, make_wecom, second_connection
from wechat import FrequencyLimited, RedisTokenStore, TokenKey, Transport, WeComClient


async def test_each_ticket_is_fetched_once_then_served_from_the_cache(
    wecom: WeComClient, sim: SimControl
) -> None:
    corp = {await wecom.jsapi_ticket("corp") for _ in range(5)}
    agent = {await wecom.jsapi_ticket("agent") for _ in range(5)}
    assert len(corp) == 1
    assert len(agent) == 1
    assert corp != agent, "wx.config and wx.agentConfig are signed with different tickets"
    counters = await sim.counters()
    assert counters["get_jsapi_ticket"] == 1
    assert counters["ticket_get"] == 1
    assert counters["gettoken"] == 1, "both tickets are fetched with the one cached token"


async def test_ticket_is_cached_for_its_expires_in_less_the_margin(
    wecom: WeComClient, redis_client: redis_asyncio.Redis
) -> None:
    ticket = await wecom.jsapi_ticket("corp")
    key = TokenKey("wecom_jsapi", SIM.corp_id, str(SIM.agent_id)).redis_key("suban:wechat")
    assert (await redis_client.get(key)).decode() == ticket
    # The simulator answers WeCom's 7200 s; the store keeps it 300 s less.
    assert 6890 <= await redis_client.ttl(key) <= 6900


async def test_dropped_ticket_is_fetched_again_but_a_stale_drop_keeps_the_new_one(
    wecom: WeComClient, sim: SimControl
) -> None:
    old = await wecom.jsapi_ticket("agent")
    # WeCom ended it (here: the simulator expires every token and ticket it issued).
    await sim.expire_tokens()
    assert await wecom.drop_jsapi_ticket("agent", old)
    new = await wecom.jsapi_ticket("agent")
    assert new != old
    # A second worker that also saw the old ticket fail must not throw away the new one.
    assert not await wecom.drop_jsapi_ticket("agent", old)
    assert await wecom.jsapi_ticket("agent") == new
    # Three calls for two tickets: the expired access token was refused once (42001) on the way.
    assert (await sim.counters())["ticket_get"] == 3


async def test_ticket_fetch_with_a_rejected_token_refreshes_the_token_once(
    wecom: WeComClient, sim: SimControl
) -> None:
    await wecom.access_token()
    await sim.expire_tokens()
    assert await wecom.jsapi_ticket("corp")
    counters = await sim.counters()
    assert counters["gettoken"] == 2
    assert counters["get_jsapi_ticket"] == 2, "the first try was answered 42001"


async def test_ticket_errors_are_raised_and_nothing_is_cached(
    wecom: WeComClient, sim: SimControl
) -> None:
    await sim.fault("get_jsapi_ticket", "errcode", errcode=45011)
    with pytest.raises(FrequencyLimited):
        await wecom.jsapi_ticket("corp")
    assert await wecom.jsapi_ticket("corp")
    assert (await sim.counters())["get_jsapi_ticket"] == 2


async def test_one_ticket_fetch_across_two_workers(
    sim: SimControl,
    simulator_url: str,
    transport: Transport,
    shared_redis: redis_asyncio.Redis,
) -> None:
    await shared_redis.flushdb()
    other = second_connection(shared_redis)
    try:
        workers = [
            make_wecom(simulator_url, transport, RedisTokenStore(client, lock_ttl=5))
            for client in (shared_redis, other)
        ]
        # A slow answer keeps every caller waiting on the one refresh.
        await sim.latency("get_jsapi_ticket", 200)
        tickets = await asyncio.gather(*(workers[i % 2].jsapi_ticket("corp") for i in range(20)))
    finally:
        await other.aclose()
    assert len(set(tickets)) == 1
    assert (await sim.counters())["get_jsapi_ticket"] == 1


async def test_simulated_agent_ticket_needs_type_agent_config(
    wecom: WeComClient, sim: SimControl
) -> None:
    token = await wecom.access_token()
    answer = await sim.http.get(
        "/wecom/cgi-bin/ticket/get", params={"access_token": token, "type": "jsapi"}
    )
    assert answer.json()["errcode"] == 40058
    unauthorised = await sim.http.get("/wecom/cgi-bin/get_jsapi_ticket")
    assert unauthorised.json()["errcode"] == 41001
