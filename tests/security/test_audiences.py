"""Each audience's routes refuse the others' tokens (issue 9 item 4): every /staff route with a
taxpayer's token (mini-program or WeCom member), every /mp route with a staff token, and the
WeCom member routes with either: 401 or 403 in the contract's shape, never 2xx, never 500.

The routes come from the running app's router, every method of each; the path values name real
objects (a missing check would show as a 2xx, not as a 404), and the bodies are empty, so a
route that validates its body before asking who is calling fails here too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.miniapp_api.test_mp_realname import auth
from tests.security.routes import MP, STAFF, WECOM_API, Route, under
from tests.security.world import World, world_of
from tests.wecom.test_binding import bound_member

REFUSED = {401, 403}
# Called without a session by design: where one starts, and the JS-SDK signature a WeCom page
# asks for before anyone logs in (wecom_jsapi.py, "Public").
LOGINS = {"mp.login", "staff.login", "wecom_jsapi.wecom_jsapi_config"}


@pytest.fixture
async def world(live: LiveServer) -> AsyncIterator[World]:
    async with world_of(live) as built:
        yield built


async def _sweep(
    live: LiveServer, routes: list[Route], values: dict[str, Any], token: str
) -> list[str]:
    problems = []
    for route in routes:
        if route.name in LOGINS:
            continue
        url = route.url(values)
        for method in route.methods:
            body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            r = await live.http.request(method, url, headers=auth(token), **body)
            if r.status_code not in REFUSED:
                problems.append(f"{method} {url} ({route.name}): {r.status_code} {r.text[:160]}")
            elif not r.json()["error"]["code"]:
                problems.append(f"{method} {url}: no error code")
    return problems


async def test_staff_routes_refuse_taxpayers(live: LiveServer, world: World) -> None:
    _, member, _ = await bound_member(live)
    routes = under(live.app, STAFF)
    assert len(routes) >= 10
    problems = []
    for token in (world.owner, member):
        problems += await _sweep(live, routes, world.values, token)
    assert not problems, "\n".join(problems)


async def test_mp_routes_refuse_staff(live: LiveServer, world: World) -> None:
    routes = under(live.app, MP)
    assert len(routes) >= 20
    problems = await _sweep(live, routes, world.values, world.staff)
    assert not problems, "\n".join(problems)


async def test_member_routes_refuse_taxpayers_and_staff(live: LiveServer, world: World) -> None:
    # /api/v1/wecom/bind takes a WeCom member's session only (a new member's, before binding).
    routes = under(live.app, WECOM_API)
    assert routes
    problems = []
    for token in (world.owner, world.staff):
        problems += await _sweep(live, routes, world.values, token)
    assert not problems, "\n".join(problems)


async def test_no_token_is_401_everywhere(live: LiveServer, world: World) -> None:
    problems = []
    for prefix in (MP, STAFF, WECOM_API):
        for route in under(live.app, prefix):
            if route.name in LOGINS:
                continue
            url = route.url(world.values)
            for method in route.methods:
                r = await live.http.request(method, url)
                if r.status_code != 401:
                    problems.append(f"{method} {url}: {r.status_code} {r.text[:160]}")
    assert not problems, "\n".join(problems)
