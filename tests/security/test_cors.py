"""The CORS policy (issue 9 item 4, miniapp_api/cors.py): no cross-origin browser access unless
SUBAN_CORS_ORIGINS lists the origin, and then exactly that origin, without credentials."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from miniapp_api.cors import MAX_AGE
from miniapp_api.settings import Settings, SettingsError
from tests.conftest import LiveServer, serve_app
from tests.miniapp_api.test_mp_realname import auth, login

LISTED = "https://console.suban.example.cn"
ALSO_LISTED = "http://localhost:5173"
UNLISTED = ("https://evil.example.com", "https://console.suban.example.cn.evil.com", "null")


def _cors_headers(headers: object) -> dict[str, str]:
    return {
        k.lower(): v for k, v in dict(headers).items() if k.lower().startswith("access-control")
    }  # type: ignore[call-overload]


@pytest.fixture
async def with_origins(settings: Settings) -> AsyncIterator[LiveServer]:
    listed = dataclasses.replace(settings, cors_origins=(LISTED, ALSO_LISTED))
    async with serve_app(listed) as server:
        yield server


def _preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key, x-evil",
    }


def test_the_setting_takes_exact_http_origins_only() -> None:
    env = {"SUBAN_VAR_DIR": "/tmp/suban-cors-test"}  # noqa: S108 - a dev key may be made there
    read = Settings.from_env(env | {"SUBAN_CORS_ORIGINS": f" {LISTED} ,{ALSO_LISTED},"})
    assert read.cors_origins == (LISTED, ALSO_LISTED)
    assert Settings.from_env(env).cors_origins == ()
    for bad in (
        "*",
        f"{LISTED}/",
        f"{LISTED}/console",
        "ftp://x.cn",
        "console.example.cn",
        "https://x.cn:99999",
        "https://user@x.cn",
        "https://x.cn?q=1",
    ):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env(env | {"SUBAN_CORS_ORIGINS": bad})
        assert caught.value.lines[0].startswith("SUBAN_CORS_ORIGINS"), bad


async def test_by_default_no_origin_gets_access(live: LiveServer) -> None:
    token = await login(live)
    for origin in (LISTED, *UNLISTED):
        r = await live.http.get("/api/v1/mp/me", headers=auth(token) | {"Origin": origin})
        assert r.status_code == 200
        assert _cors_headers(r.headers) == {}
        r = await live.http.options("/api/v1/mp/me", headers=_preflight(origin, "GET"))
        assert _cors_headers(r.headers) == {}
        assert r.status_code >= 400  # no preflight route: the browser gives up


async def test_an_unlisted_origin_gets_no_allow_origin(with_origins: LiveServer) -> None:
    token = await login(with_origins)
    for origin in UNLISTED:
        r = await with_origins.http.get("/api/v1/mp/me", headers=auth(token) | {"Origin": origin})
        assert r.status_code == 200
        assert _cors_headers(r.headers) == {}, origin


async def test_a_listed_origin_gets_exactly_itself_and_no_credentials(
    with_origins: LiveServer,
) -> None:
    token = await login(with_origins)
    for origin in (LISTED, ALSO_LISTED):
        r = await with_origins.http.get("/api/v1/mp/me", headers=auth(token) | {"Origin": origin})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-credentials" not in r.headers
        assert "origin" in r.headers["vary"].lower()
        exposed = {h.strip() for h in r.headers["access-control-expose-headers"].split(",")}
        assert exposed == {"retry-after", "x-request-id"}
    # Errors too, so a page can show them.
    r = await with_origins.http.get("/api/v1/mp/me", headers={"Origin": LISTED})
    assert (r.status_code, r.headers["access-control-allow-origin"]) == (401, LISTED)
    # No Origin, no CORS headers.
    r = await with_origins.http.get("/api/v1/forms")
    assert _cors_headers(r.headers) == {}


async def test_a_preflight_from_a_listed_origin_is_answered(with_origins: LiveServer) -> None:
    r = await with_origins.http.options("/api/v1/mp/submissions", headers=_preflight(LISTED))
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] == LISTED
    methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
    assert methods == {"GET", "POST"}  # what the path has, of what the policy allows
    headers = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
    assert headers == {"authorization", "content-type", "idempotency-key"}  # not x-evil
    assert r.headers["access-control-max-age"] == str(MAX_AGE)
    assert "access-control-allow-credentials" not in r.headers
    r = await with_origins.http.options(
        "/api/v1/mp/drafts/1", headers=_preflight(ALSO_LISTED, "PUT")
    )
    methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
    assert methods == {"GET", "PUT", "DELETE"}


async def test_a_preflight_from_an_unlisted_origin_gets_no_allow_headers(
    with_origins: LiveServer,
) -> None:
    for origin in UNLISTED:
        r = await with_origins.http.options("/api/v1/mp/submissions", headers=_preflight(origin))
        assert _cors_headers(r.headers) == {}, origin
