"""The real-name attempt limit holds across worker processes: ``suban serve`` with two workers on
real Redis, the WeChat simulator as its own process, twenty wrong attempts at once."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV
from tests.processes import free_port, running_process


@pytest.fixture
def two_workers(database_url: str, tmp_path: Path) -> Iterator[str]:
    if BACKEND != "postgres":
        pytest.skip("several workers need PostgreSQL (settings refuse SQLite with workers > 1)")
    try:
        client = redis.Redis.from_url(REAL_REDIS_URL)
        client.flushdb()
        client.close()
    except redis.ConnectionError as exc:
        raise RuntimeError(f"real Redis at {REAL_REDIS_URL} does not answer") from exc
    sim_port, port = free_port(), free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")}
    simulator = [sys.executable, "-m", "wechat.simulator", "--port", str(sim_port)]
    sim_base = f"http://127.0.0.1:{sim_port}"
    env = base_env | {
        "SUBAN_DATABASE_URL": database_url,
        "SUBAN_VAR_DIR": str(tmp_path),
        "SUBAN_PORT": str(port),
        "SUBAN_WORKERS": "2",
        # Simulator credentials, but the API at the simulator process: with two workers the app
        # cannot mount it in-process.
        "SUBAN_REDIS_URL": REAL_REDIS_URL,
        "SUBAN_WECHAT_API_BASE": f"{sim_base}/wechat",
        "SUBAN_WECOM_API_BASE": f"{sim_base}/wecom",
        "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
        "SUBAN_ENV": "dev",
    }
    with (
        running_process(
            simulator,
            ready_url=f"{sim_base}/control/counters",
            log_path=tmp_path / "sim.log",
            env=base_env,
        ),
        running_process(
            [str(Path(sys.executable).with_name("suban")), "serve"],
            ready_url=f"http://127.0.0.1:{port}/readyz",
            log_path=tmp_path / "serve.log",
            env=env,
        ),
    ):
        yield f"http://127.0.0.1:{port}"


async def test_twenty_parallel_wrong_attempts_on_two_workers(two_workers: str) -> None:
    # Fresh connections for every request, so the kernel spreads them over both workers.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=two_workers, timeout=20, limits=limits) as http:
        login = await http.post("/api/v1/mp/login", json={"code": "sim:o-two-workers"})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        wrong = {
            "name": "陈明",
            "id_type": "resident_id",
            "id_number": "44010319850612301X",
            "verify_result": "sim:林芳:440103199003152024",
        }
        answers = await asyncio.gather(
            *(http.post("/api/v1/mp/realname", json=wrong, headers=headers) for _ in range(20))
        )
        codes = sorted(r.status_code for r in answers)
        assert codes == [409] * 5 + [429] * 15, [r.text for r in answers]
        assert all(int(r.headers["retry-after"]) > 0 for r in answers if r.status_code == 429)
        me = await http.get("/api/v1/mp/me", headers=headers)
        assert me.json()["person"] is None
