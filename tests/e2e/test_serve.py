"""``suban serve`` as a real process: the README's promise, end to end."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKEND, REAL_REDIS_URL, run_cli
from tests.processes import free_port, running_process


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    workers = 2 if BACKEND == "postgres" else 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")} | {
        "SUBAN_DATABASE_URL": database_url,
        "SUBAN_VAR_DIR": str(tmp_path),
        "SUBAN_PORT": str(port),
        "SUBAN_WORKERS": str(workers),
        "SUBAN_REDIS_URL": REAL_REDIS_URL if BACKEND == "postgres" else "memory://",
        "SUBAN_ENV": "dev",
    }
    if workers > 1:
        # The mounted simulator lives in one process; several workers talk to Tencent's (here: a
        # closed loopback port, as this test makes no WeChat call).
        closed = f"http://127.0.0.1:{free_port()}"
        env |= {"SUBAN_WECHAT_API_BASE": closed, "SUBAN_WECOM_API_BASE": closed}
    with running_process(
        [str(Path(sys.executable).with_name("suban")), "serve"],
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log_path=tmp_path / "serve.log",
        env=env,
    ):
        yield f"http://127.0.0.1:{port}", workers


def test_served_process_answers_operations_routes(served: tuple[str, int]) -> None:
    base, _workers = served
    with httpx.Client(base_url=base, timeout=5) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").status_code == 200
        assert http.get("/docs/openapi.json").json()["info"]["title"] == "速办税 API"
        assert any(h["hall_id"] == "liwan" for h in http.get("/api/v1/halls").json())
        for _ in range(20):
            http.get("/healthz", headers={"Connection": "close"})
        metrics = http.get("/metrics").text
    # With several workers the count is the sum over all of them, whichever answered the scrape.
    line = next(
        ln
        for ln in metrics.splitlines()
        if ln.startswith('suban_http_requests_total{method="GET",route="/healthz",status="200"}')
    )
    assert float(line.rsplit(" ", 1)[1]) >= 21


def test_demo_loads_twice_without_change(database_url: str, tmp_path: Path) -> None:
    env = {"SUBAN_DATABASE_URL": database_url, "SUBAN_VAR_DIR": str(tmp_path)}
    first = run_cli("demo", env=env)
    second = run_cli("demo", env=env)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
