"""Security headers, HSTS behind TLS, the request size limit and slow-client timeouts (issue 9
item 4)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Any

from miniapp_api.request_context import HSTS
from miniapp_api.settings import Settings
from tests.conftest import LiveServer, serve_app
from tests.miniapp_api.filing_helpers import reviewer_token
from tests.miniapp_api.test_mp_realname import auth, login


async def test_pages_carry_a_strict_csp_and_no_framing(live: LiveServer) -> None:
    for path in ("/console/", "/hall/liwan/display", "/h5/"):
        r = await live.http.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert "'unsafe-inline'" not in csp, path
        assert "'unsafe-eval'" not in csp, path
        assert directives["script-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["base-uri"] == "'none'"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        # The page itself has no inline script for the policy to block.
        assert "<script>" not in r.text, path
        assert "onload=" not in r.text.lower(), path


async def test_api_answers_are_nosniff_and_personal_ones_never_cached(live: LiveServer) -> None:
    mp, staff = await login(live), await reviewer_token(live)
    personal = [
        ("/api/v1/mp/me", mp),
        ("/api/v1/mp/submissions", mp),
        ("/api/v1/mp/nothing-here", mp),  # a 404 under /mp too
        ("/api/v1/mp/me", ""),  # and a 401
        ("/api/v1/staff/me", staff),
        ("/api/v1/staff/submissions", staff),
    ]
    for path, token in personal:
        r = await live.http.get(path, headers=auth(token) if token else {})
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert "no-store" in r.headers["cache-control"], path
        assert r.headers.get_list("x-content-type-options") == ["nosniff"]
    r = await live.http.post("/api/v1/mp/login", json={"code": "sim:o-hdr"})
    assert (r.headers["cache-control"], r.headers["x-content-type-options"]) == (
        "no-store",
        "nosniff",
    )
    # Public answers keep their own caching.
    r = await live.http.get("/api/v1/forms")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "public, max-age=300"
    r = await live.http.get("/healthz")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in r.headers


async def test_hsts_only_when_the_trusted_proxy_says_tls(settings: Settings) -> None:
    tls = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    plain = tls | {"X-Forwarded-Proto": "http"}
    # Behind one proxy: its X-Forwarded-Proto decides.
    async with serve_app(dataclasses.replace(settings, proxies_count=1)) as live:
        for path in ("/healthz", "/api/v1/forms", "/console/"):
            r = await live.http.get(path, headers=tls)
            assert r.headers["strict-transport-security"] == HSTS, path
            assert r.headers.get_list("strict-transport-security") == [HSTS]
            r = await live.http.get(path, headers=plain)
            assert "strict-transport-security" not in r.headers, path
        r = await live.http.get("/healthz")  # no proxy headers at all
        assert "strict-transport-security" not in r.headers
    # With no proxy trusted, a client's own header is ignored: the app serves plain HTTP.
    async with serve_app(settings) as live:
        r = await live.http.get("/healthz", headers=tls)
        assert "strict-transport-security" not in r.headers


async def _raw(live: LiveServer, data: bytes, *, wait: float = 10.0) -> tuple[bytes, float]:
    """Send ``data`` on a fresh connection (while reading: the server may answer and close before
    it has all of it) and read one answer; what it said and when, from the start."""
    host, port = live.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            for at in range(0, len(data), 65536):
                writer.write(data[at : at + 65536])
                await writer.drain()

    sending = asyncio.create_task(send())
    answer = b""
    try:
        async with asyncio.timeout(wait):
            while not _complete(answer):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                answer += chunk
    except ConnectionError:
        pass
    finally:
        took = time.monotonic() - started
        sending.cancel()
        writer.close()
    return answer, took


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _status_and_body(answer: bytes) -> tuple[int, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_a_body_over_the_limit_is_413_in_the_contract_shape(live: LiveServer) -> None:
    limit = live.app.config.REQUEST_MAX_SIZE
    assert limit == 20 * 1024 * 1024
    head = (
        "POST /api/v1/mp/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {limit + 1}\r\n\r\n"
    ).encode()
    answer, _ = await _raw(live, head + b"{")
    status, body = _status_and_body(answer)
    assert status == 413
    assert b'"code":"PAYLOAD_TOO_LARGE"' in body
    # A chunked body is counted as it arrives.
    chunk = b"x" * (1024 * 1024)
    head = (
        b"POST /api/v1/mp/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(21)) + b"0\r\n\r\n"
    answer, _ = await _raw(live, head + chunks)
    status, body = _status_and_body(answer)
    assert status == 413
    assert b'"code":"PAYLOAD_TOO_LARGE"' in body


def test_timeouts_are_set_explicitly(settings: Settings) -> None:
    assert Settings().request_timeout == 15
    assert (
        Settings.from_env(
            {"SUBAN_REQUEST_TIMEOUT": "7", "SUBAN_VAR_DIR": "/tmp/suban-timeout-test"}  # noqa: S108
        ).request_timeout
        == 7
    )
    from miniapp_api.app import create_app

    app = create_app(settings, name="suban_timeouts", configure_logs=False)
    assert app.config.REQUEST_TIMEOUT == 15
    assert app.config.RESPONSE_TIMEOUT == 60
    assert app.config.KEEP_ALIVE_TIMEOUT == 75


async def test_a_client_that_stalls_is_cut_off(settings: Settings) -> None:
    def short_response_timeout(app: Any) -> None:
        app.config.RESPONSE_TIMEOUT = 2

    quick = dataclasses.replace(settings, request_timeout=1)
    async with serve_app(quick, short_response_timeout) as live:
        # Half a request head, then nothing: 408 after REQUEST_TIMEOUT, and the connection closed.
        answer, took = await _raw(live, b"GET /api/v1/forms HTTP/1.1\r\nHost: t\r\n")
        assert 0.9 <= took < 5, took
        status, body = _status_and_body(answer)
        assert status == 408
        assert b'"code":"REQUEST_TIMEOUT"' in body
        # A whole head promising a body that never comes: the handler waits for it no longer
        # than RESPONSE_TIMEOUT, then the connection is cut.
        head = (
            b"POST /api/v1/mp/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        answer, took = await _raw(live, head)
        assert 1.9 <= took < 6, took
        status, body = _status_and_body(answer)
        assert status == 503
        assert b'"code":"SERVICE_UNAVAILABLE"' in body
        # Nothing of this stopped the server.
        assert (await live.http.get("/healthz")).status_code == 200
