"""Stopping ``suban worker`` loses no message and sends none twice: SIGTERM while a delivery is
waiting on WeChat lets it finish; a worker started afterwards finds nothing left to send."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV, LiveServer
from tests.miniapp_api.filing_helpers import COMPANY, filed, person_token
from tests.processes import running_process, suban_with_simulator

SLOW_MS = 3000
# A mark, not a skip in the body: the database fixture would be built first for nothing.
pytestmark = pytest.mark.skipif(
    BACKEND != "postgres",
    reason="`suban worker` needs a real Redis; the embedded default runs jobs in-process",
)
SUBAN = str(Path(sys.executable).with_name("suban"))


async def _pending(conn: asyncpg.Connection, first_id: int) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM outbox_message WHERE id > $1 AND status <> 'delivered'",
            first_id,
        )
    )


def test_a_delivery_in_flight_finishes_after_sigterm(
    own_database_url: str, tmp_path: Path, redis_client: Any
) -> None:
    # Its own database: in the shared one the worker would also deliver what earlier tests left
    # pending, and the delivery it is stopped in might be one of those.
    database_url = own_database_url
    pg_url = database_url.replace("postgresql://", "postgres://", 1)

    async def prepare(base: str, sim: str) -> tuple[int, int]:
        conn = await asyncpg.connect(pg_url)
        first_id = int(await conn.fetchval("SELECT COALESCE(MAX(id), 0) FROM outbox_message"))
        await conn.close()
        async with httpx.AsyncClient(base_url=sim, timeout=10) as s:
            before = len((await s.get("/control/messages")).json()["messages"])
            slow = {"endpoint": "subscribe_send", "ms": SLOW_MS}
            assert (await s.post("/control/latency", json=slow)).status_code == 200
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            live = LiveServer(app=None, base_url=base, http=http)  # type: ignore[arg-type]
            token = await person_token(live)
            await filed(live, token, taxpayer_id=COMPANY)
        return first_id, before

    with suban_with_simulator(
        tmp_path,
        database_url=database_url,
        redis_url=REAL_REDIS_URL,
        pii_keys=TEST_PII_KEYS_ENV,
        workers=1,
    ) as (base, sim):
        first_id, before = asyncio.run(prepare(base, sim))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")} | {
            "SUBAN_DATABASE_URL": database_url,
            "SUBAN_REDIS_URL": REAL_REDIS_URL,
            "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
            "SUBAN_WECHAT_API_BASE": f"{sim}/wechat",
            "SUBAN_WECOM_API_BASE": f"{sim}/wecom",
            "SUBAN_VAR_DIR": str(tmp_path / "worker"),
        }
        (tmp_path / "worker").mkdir()
        log = tmp_path / "worker-1.log"
        with running_process(
            [SUBAN, "worker"], ready_url=f"{sim}/control/counters", log_path=log, env=env
        ) as worker:
            # Wait until the worker is inside the (slow) WeChat call.
            deadline = time.monotonic() + 60
            while True:
                counters = httpx.get(f"{sim}/control/counters").json()["counters"]
                if counters["subscribe_send"] >= 1:
                    break
                assert time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.05)
            stopping = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=40) == 0, log.read_text(errors="replace")
            took = time.monotonic() - stopping

        async def after() -> tuple[int, int]:
            conn = await asyncpg.connect(pg_url)
            try:
                return await _pending(conn, first_id), int(
                    await conn.fetchval(
                        "SELECT count(*) FROM outbox_message WHERE id > $1", first_id
                    )
                )
            finally:
                await conn.close()

        pending, rows = asyncio.run(after())
        text = log.read_text(errors="replace")
        # It waited for the call in flight (not killed with it) and then stopped.
        assert took < 30, text
        # A second worker finds the rest (if any) and sends each message once.
        with running_process(
            [SUBAN, "worker"],
            ready_url=f"{sim}/control/counters",
            log_path=tmp_path / "worker-2.log",
            env=env,
        ):
            deadline = time.monotonic() + 90
            while asyncio.run(after())[0]:
                assert time.monotonic() < deadline, (tmp_path / "worker-2.log").read_text()
                time.sleep(0.5)
        sent = httpx.get(f"{sim}/control/messages").json()["messages"][before:]
    assert rows >= 1
    assert pending < rows, "the delivery in flight when the signal came was lost"
    assert len(sent) == rows, sent
