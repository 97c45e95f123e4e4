"""``suban serve`` as a real process: the README's promise, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKEND, REAL_REDIS_URL, free_port, run_cli


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
    proc = subprocess.Popen(  # noqa: S603 - our own console script
        [str(Path(sys.executable).with_name("suban")), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"suban serve did not come up:\n{out}")
            time.sleep(0.2)
        yield base, workers
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


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
