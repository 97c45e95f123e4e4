"""Stopping ``suban serve`` loses no request: SIGTERM to its main process (what systemd's
KillMode=mixed, Docker and Kubernetes send) lets the requests already in flight finish."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV
from tests.processes import free_port, running_process

SLOW_MS = 1500


def test_requests_in_flight_finish_after_sigterm(
    database_url: str, tmp_path: Path, redis_client: Any
) -> None:
    port, sim_port = free_port(), free_port()
    base, sim = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sim_port}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")}
    env = clean | {
        "SUBAN_DATABASE_URL": database_url,
        "SUBAN_VAR_DIR": str(tmp_path),
        "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
        "SUBAN_PORT": str(port),
        # As deployed: two workers on PostgreSQL + Redis, WeChat another process (the simulator).
        "SUBAN_WORKERS": "2" if BACKEND == "postgres" else "1",
        "SUBAN_REDIS_URL": REAL_REDIS_URL if BACKEND == "postgres" else "memory://",
        "SUBAN_WECHAT_API_BASE": f"{sim}/wechat",
        "SUBAN_WECOM_API_BASE": f"{sim}/wecom",
    }
    log = tmp_path / "serve.log"
    answers: list[int | str] = []

    def login(n: int) -> None:
        try:
            r = httpx.post(
                f"{base}/api/v1/mp/login", json={"code": f"sim:o-shutdown-{n}"}, timeout=20
            )
            answers.append(r.status_code)
        except httpx.HTTPError as exc:
            answers.append(type(exc).__name__)

    with (
        running_process(
            [sys.executable, "-m", "wechat.simulator", "--port", str(sim_port)],
            ready_url=f"{sim}/control/counters",
            log_path=tmp_path / "sim.log",
            env=clean,
        ),
        running_process(
            [str(Path(sys.executable).with_name("suban")), "serve"],
            ready_url=f"{base}/healthz",
            log_path=log,
            env=env,
            timeout=60,
        ) as process,
    ):
        # Every worker up first: a worker still starting when the signal comes is not the case
        # under test (Sanic interrupts its start-up).
        workers = int(env["SUBAN_WORKERS"])
        deadline = time.monotonic() + 60
        while log.read_text(errors="replace").count("Worker ready") < workers:
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        # Every code2session now takes 1.5 s.
        slow = httpx.post(
            f"{sim}/control/latency", json={"endpoint": "jscode2session", "ms": SLOW_MS}
        )
        assert slow.status_code == 200, slow.text
        threads = [threading.Thread(target=login, args=(n,)) for n in range(5)]
        for t in threads:
            t.start()
        time.sleep(0.4)  # the five are in flight, waiting on WeChat
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=20)
        assert process.wait(timeout=20) == 0, log.read_text(errors="replace")
        stopped_after = time.monotonic() - started
    assert answers == [200] * 5, log.read_text(errors="replace")
    # It waited for them, and no longer than it had to.
    assert SLOW_MS / 1000 - 0.5 < stopped_after < 15
    # Nothing new is accepted once it has stopped.
    try:
        httpx.get(f"{base}/healthz", timeout=1)
        refused = False
    except httpx.TransportError:
        refused = True
    assert refused
