"""Every failure answers in the contract's shape; no traceback ever reaches a client."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import BaseModel, Field
from redis import exceptions as redis_exc
from sanic import HTTPResponse, Request
from sanic.response import json
from tortoise import exceptions as tortoise_exc

from miniapp_api.errors import dependency_down
from miniapp_api.settings import Settings
from miniapp_api.validation import parse_body
from tests.conftest import LiveServer, serve_app


class _Line(BaseModel):
    name: str = Field(min_length=1)
    amount: float = Field(gt=0)


class _Quote(BaseModel):
    kind: str
    lines: list[_Line]


def _add_probe_routes(app: Any) -> None:
    @app.post("/_probe/echo")
    async def echo(request: Request) -> HTTPResponse:
        body = parse_body(request, _Quote)
        return json(body.model_dump())

    @app.get("/_probe/boom")
    async def boom(request: Request) -> HTTPResponse:
        raise RuntimeError("secret internals: 44010319850612301X")

    @app.get("/_probe/redis-down")
    async def redis_down(request: Request) -> HTTPResponse:
        try:
            raise OSError(111, "Connection refused")
        except OSError as exc:
            raise redis_exc.ConnectionError("Error 111 connecting to 127.0.0.1:6379.") from exc

    @app.get("/_probe/database-down")
    async def database_down(request: Request) -> HTTPResponse:
        raise asyncpg.AdminShutdownError("terminating connection due to administrator command")

    @app.get("/_probe/database-wrapped")
    async def database_wrapped(request: Request) -> HTTPResponse:
        try:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed")
        except asyncpg.PostgresError as exc:
            raise tortoise_exc.OperationalError(exc) from exc


@pytest.fixture
async def probe(settings: Settings) -> Any:
    async with serve_app(settings, _add_probe_routes) as server:
        yield server


def _assert_error_shape(body: dict[str, Any], code: str) -> None:
    assert set(body) >= {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]


async def test_unknown_route_is_404_in_contract_shape(live: LiveServer) -> None:
    r = await live.http.get("/api/v1/no-such-thing")
    assert r.status_code == 404
    _assert_error_shape(r.json(), "NOT_FOUND")
    assert r.headers["x-request-id"]


async def test_wrong_method_is_405_in_contract_shape(live: LiveServer) -> None:
    r = await live.http.delete("/healthz")
    assert r.status_code == 405
    _assert_error_shape(r.json(), "METHOD_NOT_ALLOWED")


async def test_invalid_fields_are_422_naming_each_field(probe: LiveServer) -> None:
    r = await probe.http.post(
        "/_probe/echo", json={"lines": [{"name": "", "amount": -1}, {"name": "x", "amount": "a"}]}
    )
    assert r.status_code == 422
    body = r.json()
    _assert_error_shape(body, "VALIDATION_FAILED")
    assert body["error"]["fields"] == {
        "kind": "必填",
        "lines.0.name": "内容过短",
        "lines.0.amount": "数值过小",
        "lines.1.amount": "应为数字",
    }


async def test_valid_body_passes_validation(probe: LiveServer) -> None:
    r = await probe.http.post("/_probe/echo", json={"kind": "a", "lines": []})
    assert r.status_code == 200
    assert r.json() == {"kind": "a", "lines": []}


async def test_an_oversized_json_body_is_413(probe: LiveServer) -> None:
    big = {"kind": "a" * (300 * 1024), "lines": []}
    r = await probe.http.post("/_probe/echo", json=big)
    assert r.status_code == 413
    _assert_error_shape(r.json(), "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_malformed_body_is_400(probe: LiveServer, raw: bytes) -> None:
    r = await probe.http.post(
        "/_probe/echo", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    _assert_error_shape(r.json(), "BAD_REQUEST")


async def test_unhandled_exception_is_500_with_request_id_and_logged_traceback(
    probe: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="suban.errors")
    r = await probe.http.get("/_probe/boom", headers={"X-Request-ID": "trace-me-123"})
    assert r.status_code == 500
    body = r.json()
    _assert_error_shape(body, "INTERNAL_ERROR")
    assert body["error"]["request_id"] == "trace-me-123"
    assert r.headers["x-request-id"] == "trace-me-123"
    # The client sees neither the exception nor any of its text.
    assert "RuntimeError" not in r.text
    assert "secret internals" not in r.text
    assert "Traceback" not in r.text
    records = [rec for rec in caplog.records if rec.name == "suban.errors"]
    assert len(records) == 1
    assert records[0].request_id == "trace-me-123"  # type: ignore[attr-defined]
    assert records[0].exc_info is not None
    assert records[0].exc_info[0] is RuntimeError


async def test_unsafe_request_id_is_replaced(live: LiveServer) -> None:
    r = await live.http.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    rid = r.headers["x-request-id"]
    assert rid != "bad id\twith spaces"
    assert len(rid) == 32


async def test_a_client_that_leaves_early_is_no_error(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    def slow(app: Any) -> None:
        @app.get("/_probe/slow")
        async def wait(request: Request) -> HTTPResponse:
            await asyncio.sleep(2)
            return json({})

    caplog.set_level(logging.INFO, logger="suban.errors")
    async with serve_app(settings, slow) as server:
        with pytest.raises(httpx.ReadTimeout):
            await server.http.get("/_probe/slow", timeout=0.2)
        await asyncio.sleep(0.3)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("client left" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("path", "failing", "named"),
    [
        ("/_probe/redis-down", "redis", "Redis"),
        ("/_probe/database-down", "database", "数据库"),
        ("/_probe/database-wrapped", "database", "数据库"),
    ],
)
async def test_a_dependency_that_is_down_is_503_naming_it_without_traceback(
    probe: LiveServer, caplog: pytest.LogCaptureFixture, path: str, failing: str, named: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="suban.errors"):
        r = await probe.http.get(path)
    assert r.status_code == 503
    _assert_error_shape(r.json(), "DEPENDENCY_DOWN")
    assert r.json()["error"]["failing"] == [failing]
    assert named in r.json()["error"]["message"]
    assert r.headers["retry-after"] == "5"
    # Expected while a dependency restarts: one warning line, no traceback.
    assert not any(record.exc_info for record in caplog.records)


def _raised_by_asyncpg_connect() -> ConnectionRefusedError:
    """A refused connection as asyncpg's pool raises it: a bare socket error from its frames."""

    async def connect() -> None:
        await asyncpg.connect("postgres://nobody@127.0.0.1:9/none", timeout=2)

    try:
        asyncio.run(connect())
    except ConnectionRefusedError as exc:
        return exc
    raise AssertionError("port 9 answered")


def test_a_bare_socket_error_counts_as_the_database_only_when_raised_inside_its_driver() -> None:
    down = dependency_down(_raised_by_asyncpg_connect())
    assert down is not None
    assert down.details["failing"] == ["database"]
    assert dependency_down(ConnectionRefusedError(111, "Connection refused")) is None
    assert dependency_down(ValueError("no")) is None
