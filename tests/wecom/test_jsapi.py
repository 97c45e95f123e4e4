"""JS-SDK signatures for our pages inside WeCom: the signature against an independent SHA-1, the
URL check, tickets fetched once and again after they expire, and the public route over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio

from auth.ratelimit import Limit
from miniapp_api.routes import wecom_jsapi
from miniapp_api.settings import Settings
from tests.conftest import BACKEND, LiveServer, _real_redis_or_skip, serve_app
from tests.processes import free_port, serving_in_loop
from wechat import RedisTokenStore, Transport, WeComClient
from wechat.simulator import SimulatorConfig, SimulatorState, create_simulator_app
from wecom import jsapi

ROUTE = "/api/v1/wecom/jsapi-config"


def expected_signature(ticket: str, nonce: str, timestamp: int, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(plain.encode()).hexdigest()  # noqa: S324 - WeCom's algorithm


def test_signature_matches_the_documented_example() -> None:
    # The worked example of the JS-SDK documentation (附录1), with its published signature.
    ticket = (
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    )
    url = "http://mp.weixin.qq.com?params=value"
    signed = jsapi.signature(ticket, "Wm3WZYTPz0wzccnW", 1414587457, url)
    assert signed == expected_signature(ticket, "Wm3WZYTPz0wzccnW", 1414587457, url)
    assert signed == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_signature_depends_on_every_field() -> None:
    base = ("ticket-a", "nonce-a", 1700000000, "https://tax.example/h5/")
    variants = [
        ("ticket-b", *base[1:]),
        (base[0], "nonce-b", *base[2:]),
        (*base[:2], 1700000001, base[3]),
        (*base[:3], "https://tax.example/h5/x"),
    ]
    signed = jsapi.signature(*base)
    for variant in variants:
        assert jsapi.signature(*variant) != signed
        assert jsapi.signature(*variant) == expected_signature(*variant)


def test_nonces_are_random_letters_and_digits() -> None:
    nonces = {jsapi.new_nonce() for _ in range(50)}
    assert len(nonces) == 50
    assert all(len(n) == 16 and n.isalnum() and n.isascii() for n in nonces)


PUBLIC = "https://tax.example/suban"


@pytest.mark.parametrize(
    ("url", "signed"),
    [
        ("https://tax.example/suban", "https://tax.example/suban"),
        ("https://tax.example/suban/h5/bind?x=1#step2", "https://tax.example/suban/h5/bind?x=1"),
        ("https://TAX.example/suban/console/", "https://TAX.example/suban/console/"),
    ],
)
def test_pages_under_the_public_url_are_signed_without_fragment(url: str, signed: str) -> None:
    assert jsapi.page_url(url, PUBLIC) == signed


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/suban/h5/",
        "http://tax.example/suban/h5/",  # another scheme
        "https://tax.example:8443/suban/h5/",  # another port
        "https://tax.example/subanother/",  # a sibling path, not under /suban
        "https://tax.example/",
        "https://tax.example.evil.example/suban/",
        "https://user@tax.example/suban/",
        "https://tax.example@evil.example/suban/",
        "javascript:alert(1)//tax.example/suban/",
        "/suban/h5/",
        "//tax.example/suban/",
        "https://tax.example/suban/\\evil",
        "https://tax.example/suban/a b",
        "https://tax.example/suban/\r\nx",
        "https://tax.example/suban/" + "a" * 3000,
        "",
    ],
)
def test_urls_we_do_not_serve_are_refused(url: str) -> None:
    with pytest.raises(jsapi.UnsignableUrl):
        jsapi.page_url(url, PUBLIC)


# ------------------------------------------------------------------ tickets against a simulator


@pytest.fixture
async def short_ticket_sim() -> AsyncIterator[tuple[str, SimulatorState]]:
    """A simulator whose tickets live 2 s, so a cached one (kept half of that) expires fast."""
    state = SimulatorState()
    app = create_simulator_app(SimulatorConfig(ticket_ttl=2), state=state)
    async with serving_in_loop(app, "127.0.0.1", free_port()) as base_url:
        yield base_url, state


async def test_tickets_fetched_once_for_many_pages_and_again_after_expiry(
    short_ticket_sim: tuple[str, SimulatorState], redis_client: redis_asyncio.Redis
) -> None:
    base_url, state = short_ticket_sim
    sim = SimulatorConfig()
    async with Transport(timeout=5.0, trust_env=False) as transport:
        client = WeComClient(
            sim.corp_id,
            sim.corp_secret,
            sim.agent_id,
            f"{base_url}/wecom",
            transport,
            RedisTokenStore(redis_client),
        )
        pages = [f"{PUBLIC}/h5/page{i}" for i in range(10)]
        signed = await asyncio.gather(*(jsapi.jsapi_config(client, p, now=1e9) for p in pages))
        assert state.counters["get_jsapi_ticket"] == 1
        assert state.counters["ticket_get"] == 1
        corp_ticket = next(t for t, i in state.tokens.items() if i.kind == "wecom_jsapi")
        agent_ticket = next(t for t, i in state.tokens.items() if i.kind == "wecom_agent_jsapi")
        for page, result in zip(pages, signed, strict=True):
            config, agent = result.config, result.agent_config
            assert config["signature"] == expected_signature(
                corp_ticket, config["nonceStr"], 1000000000, page
            )
            assert agent["signature"] == expected_signature(
                agent_ticket, agent["nonceStr"], 1000000000, page
            )
        await asyncio.sleep(1.2)
        await jsapi.jsapi_config(client, pages[0], now=1e9)
        assert state.counters["get_jsapi_ticket"] == 2
        assert state.counters["ticket_get"] == 2


# ------------------------------------------------------------------------------ over HTTP


@pytest.fixture
async def jlive(settings: Settings) -> AsyncIterator[LiveServer]:
    if BACKEND == "postgres":
        client = await _real_redis_or_skip()
        await client.flushdb()
        await client.aclose()
    async with serve_app(settings) as server:
        yield server


def live_ticket(live: LiveServer, kind: str) -> str:
    state: SimulatorState = live.app.ctx.simulator_state
    now = state.clock()
    return next(t for t, i in state.tokens.items() if i.kind == kind and i.expires_at > now)


def check_answer(live: LiveServer, body: dict[str, Any], url: str) -> None:
    settings = live.app.ctx.settings
    config, agent = body["config"], body["agent_config"]
    assert set(config) == {"beta", "appId", "timestamp", "nonceStr", "signature"}
    assert set(agent) == {"corpid", "agentid", "timestamp", "nonceStr", "signature"}
    assert config["beta"] is True
    assert config["appId"] == agent["corpid"] == settings.wecom_corp_id
    assert agent["agentid"] == str(settings.wecom_agent_id)
    assert config["nonceStr"] != agent["nonceStr"]
    assert config["signature"] == expected_signature(
        live_ticket(live, "wecom_jsapi"), config["nonceStr"], config["timestamp"], url
    )
    assert agent["signature"] == expected_signature(
        live_ticket(live, "wecom_agent_jsapi"), agent["nonceStr"], agent["timestamp"], url
    )


async def test_route_signs_a_page_of_ours(jlive: LiveServer) -> None:
    page = f"{jlive.base_url}/h5/bind?from=menu"
    r = await jlive.http.get(ROUTE, params={"url": f"{page}#top"})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    check_answer(jlive, r.json(), page)
    again = await jlive.http.get(ROUTE, params={"url": page})
    assert again.json()["config"]["nonceStr"] != r.json()["config"]["nonceStr"]
    counters = jlive.app.ctx.simulator_state.counters
    assert (counters["get_jsapi_ticket"], counters["ticket_get"]) == (1, 1)


@pytest.mark.parametrize(
    "url", ["https://evil.example/h5/", "/h5/bind", "javascript:alert(1)", "http://127.0.0.2/"]
)
async def test_route_refuses_pages_we_do_not_serve(jlive: LiveServer, url: str) -> None:
    r = await jlive.http.get(ROUTE, params={"url": url})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert "url" in error["fields"]
    assert jlive.app.ctx.simulator_state.counters["get_jsapi_ticket"] == 0


async def test_route_without_url_is_422(jlive: LiveServer) -> None:
    r = await jlive.http.get(ROUTE)
    assert r.status_code == 422
    assert "url" in r.json()["error"]["fields"]


async def test_route_checks_against_the_configured_public_url(settings: Settings) -> None:
    public = replace(settings, public_url="https://tax.example/suban")
    async with serve_app(public) as live:
        ours = await live.http.get(ROUTE, params={"url": "https://tax.example/suban/h5/"})
        assert ours.status_code == 200, ours.text
        check_answer(live, ours.json(), "https://tax.example/suban/h5/")
        loopback = await live.http.get(ROUTE, params={"url": f"{live.base_url}/h5/"})
        assert loopback.status_code == 422


async def test_refresh_after_wecom_ended_the_tickets_signs_with_new_ones(
    jlive: LiveServer,
) -> None:
    page = f"{jlive.base_url}/console/"
    first = await jlive.http.get(ROUTE, params={"url": page})
    assert first.status_code == 200
    old = live_ticket(jlive, "wecom_jsapi")
    state: SimulatorState = jlive.app.ctx.simulator_state
    state.expire_tokens()  # WeCom ended token and tickets; the page's wx.config fails
    refreshed = await jlive.http.get(ROUTE, params={"url": page, "refresh": "true"})
    assert refreshed.status_code == 200, refreshed.text
    assert live_ticket(jlive, "wecom_jsapi") != old
    check_answer(jlive, refreshed.json(), page)
    fetched = (state.counters["get_jsapi_ticket"], state.counters["ticket_get"])
    # Within the refresh interval another refresh request is served from the cache: anyone can
    # ask, and WeCom caps ticket fetches per hour.
    again = await jlive.http.get(ROUTE, params={"url": page, "refresh": "true"})
    assert again.status_code == 200
    assert (state.counters["get_jsapi_ticket"], state.counters["ticket_get"]) == fetched


async def test_route_is_rate_limited_per_address(
    jlive: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wecom_jsapi, "PER_ADDRESS", Limit(3, 600))
    page = f"{jlive.base_url}/h5/"
    answers: list[httpx.Response] = [
        await jlive.http.get(ROUTE, params={"url": page}) for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error"]["code"] == "TOO_MANY_ATTEMPTS"
    assert int(answers[-1].headers["retry-after"]) > 0
