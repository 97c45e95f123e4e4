from __future__ import annotations

import dataclasses

import redis.asyncio as redis_asyncio

from miniapp_api.settings import Settings
from tests.conftest import REAL_REDIS_URL, LiveServer, free_port, serve_app


async def test_healthz_answers_ok(live: LiveServer) -> None:
    r = await live.http.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_is_ready_when_database_and_redis_answer(live: LiveServer) -> None:
    r = await live.http.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_readyz_names_redis_when_it_is_down(settings: Settings) -> None:
    down = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with serve_app(down) as server:
        r = await server.http.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["error"]["code"] == "DEPENDENCY_DOWN"
    assert body["error"]["failing"] == ["redis"]
    assert "Redis" in body["error"]["message"]


async def test_readyz_names_the_database_when_it_is_down(settings: Settings) -> None:
    down = dataclasses.replace(
        settings, database_url=f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    )
    async with serve_app(down) as server:
        r = await server.http.get("/readyz")
        # The process itself still lives.
        alive = await server.http.get("/healthz")
    assert r.status_code == 503
    assert r.json()["error"]["failing"] == ["database"]
    assert "数据库" in r.json()["error"]["message"]
    assert alive.status_code == 200


async def _request_counts(live: LiveServer) -> dict[str, float]:
    text = (await live.http.get("/metrics")).text
    assert "suban_http_request_duration_seconds_bucket" in text
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("suban_http_requests_total{")
    }


async def test_metrics_count_requests_by_route_method_and_status(live: LiveServer) -> None:
    healthz = 'suban_http_requests_total{method="GET",route="/healthz",status="200"}'
    before = (await _request_counts(live)).get(healthz, 0.0)
    for _ in range(3):
        await live.http.get("/healthz")
    await live.http.get("/no/such/path/12345")
    await live.http.request("M12345", "/healthz")
    lines = await _request_counts(live)
    # The counter is process-wide (other tests count too): compare with before.
    assert lines[healthz] - before == 3
    # Unknown paths and made-up methods share one label instead of a series each.
    assert 'suban_http_requests_total{method="GET",route="<unmatched>",status="404"}' in lines
    assert not any("12345" in key for key in lines)
    assert any('method="OTHER"' in key for key in lines)


async def test_latency_histogram_buckets_add_up_to_the_count(live: LiveServer) -> None:
    for _ in range(5):
        await live.http.get("/healthz")
    text = (await live.http.get("/metrics")).text
    series = 'route="/healthz"'
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("suban_http_request_duration_seconds") and series in line
    }
    count = next(
        v for k, v in values.items() if k.startswith("suban_http_request_duration_seconds_count")
    )
    inf = next(v for k, v in values.items() if 'le="+Inf"' in k)
    fastest = next(v for k, v in values.items() if 'le="0.005"' in k)
    total = next(
        v for k, v in values.items() if k.startswith("suban_http_request_duration_seconds_sum")
    )
    assert count >= 5
    # Buckets are cumulative: +Inf holds every request, a faster one no more than that.
    assert inf == count
    assert 0 < fastest <= inf
    assert 0 < total < count * 1.0


async def test_openapi_documents_the_routes(live: LiveServer) -> None:
    r = await live.http.get("/docs/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    assert {"/healthz", "/readyz", "/api/v1/halls"} <= set(spec["paths"])
    swagger = await live.http.get("/docs/swagger")
    assert swagger.status_code == 200
    assert "swagger" in swagger.text.lower()


async def test_redis_connections_are_closed_on_shutdown(
    settings: Settings, real_redis: redis_asyncio.Redis
) -> None:
    real = dataclasses.replace(settings, redis_url=REAL_REDIS_URL)
    before = len(await real_redis.client_list())
    async with serve_app(real) as server:
        assert (await server.http.get("/readyz")).status_code == 200
        during = len(await real_redis.client_list())
    after = len(await real_redis.client_list())
    assert during > before
    assert after == before


async def test_the_app_holds_a_keyring_from_its_settings(live: LiveServer) -> None:
    ring = live.app.ctx.keyring
    assert ring.cipher.name == live.app.ctx.settings.pii_cipher
    sealed = ring.seal("13812341234", table="person", column="phone", row_id=1)
    assert ring.open(sealed, table="person", column="phone", row_id=1) == "13812341234"
