"""The WeChat simulator slow, then failing, under load.

Logins need WeChat (jscode2session); filing, progress and the hall need only PostgreSQL and
Redis, so they keep working for everyone already logged in. A slow WeChat (answers after the
client's timeout) costs the first logins their timeouts and retries, then each worker's circuit
breaker opens and logins answer 503 WECHAT_UNAVAILABLE at once. Subscribe messages failing with
HTTP 500 leave their outbox rows pending. When WeChat is well again, the breakers' probes close
them, logins work, and every outbox row is delivered exactly once (the simulator's message count
equals the delivered rows).

Runs with the postgres backend, on the test's own PostgreSQL and Redis with two workers and a
job worker; the breaker itself is tested on every backend in tests/wechat/test_circuit.py.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BACKEND
from tests.faults.conftest import skip_unless_own_services
from tests.faults.load import Phases, Tally, run_load
from tests.faults.report import fetch, missing_rows, outbox_drained, row_counts, write_summary
from tests.faults.stack import Stack, own_stack

# The client gives up on WeChat after 1 s; the simulator answers after 3 s while "slow".
WECHAT_TIMEOUT = "1"
SLOW_MS = 3000
# wechat/circuit.py's default: how long an open circuit refuses before a probe.
OPEN_SECONDS = 10.0


@pytest.fixture
def wechat_stack(tmp_path: Path) -> Iterator[Stack]:
    skip_unless_own_services()
    with own_stack(tmp_path, extra_env={"SUBAN_WECHAT_TIMEOUT": WECHAT_TIMEOUT}) as built:
        yield built


async def _logins(http: httpx.AsyncClient, tally: Tally, count: int, tag: str) -> list[float]:
    """``count`` logins at once; how long each took."""

    async def one(i: int) -> float:
        started = time.monotonic()
        r = await http.post("/api/v1/mp/login", json={"code": f"sim:o-wx-{tag}-{i}"})
        tally.record("login", r)
        if r.status_code != 200:
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "WECHAT_UNAVAILABLE", r.text
        return time.monotonic() - started

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _scenario(stack: Stack) -> dict[str, Any]:
    tally, stop, phases = Tally(), asyncio.Event(), Phases()
    probes = Tally()
    before = await row_counts(stack.database_url)
    load = asyncio.create_task(run_load(stack.base, stop, tally))
    sim = httpx.AsyncClient(base_url=stack.simulator, timeout=10, trust_env=False)
    http = httpx.AsyncClient(
        base_url=stack.base,
        timeout=30,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    try:
        await asyncio.sleep(3)
        filed_before = tally.statuses.get("file", Counter())[201]
        phases.mark("wechat_slow")
        r = await sim.post("/control/latency", json={"endpoint": "jscode2session", "ms": SLOW_MS})
        assert r.status_code == 200, r.text
        r = await sim.post(
            "/control/faults",
            json={"endpoint": "subscribe_send", "kind": "http", "status": 500, "count": 1000},
        )
        assert r.status_code == 200, r.text
        slow = await _logins(http, probes, 16, "slow")
        # Each worker opens its own breaker after its own five failures, and the kernel does
        # not share connections evenly between workers; once open, a worker lets one probe
        # through every OPEN_SECONDS (which waits out the timeouts). So: logins one at a time.
        after_open = [(await _logins(http, probes, 1, f"open-{i}"))[0] for i in range(20)]
        fast = sorted(after_open[10:])
        filed_during = tally.statuses.get("file", Counter())[201] - filed_before
        await sim.post("/control/latency", json={"endpoint": "jscode2session", "ms": 0})
        await sim.delete("/control/faults")
        phases.mark("wechat_well")
        well_at = time.monotonic()
        while True:
            r = await http.post("/api/v1/mp/login", json={"code": "sim:o-wx-back"})
            probes.record("login", r)
            if r.status_code == 200:
                break
            assert time.monotonic() - well_at < OPEN_SECONDS + 10, r.text
            await asyncio.sleep(0.2)
        recovery = time.monotonic() - well_at
        await asyncio.sleep(2)
    finally:
        stop.set()
        await load
        await http.aclose()
    drained = await outbox_drained(stack.database_url, timeout=150)
    rows = await fetch(
        stack.database_url,
        "SELECT count(*) FROM outbox_message WHERE channel = 'subscribe' AND status = 'delivered'",
    )
    messages = (await sim.get("/control/messages", params={"channel": "subscribe"})).json()
    await sim.aclose()
    after = await row_counts(stack.database_url)
    missing = await missing_rows(stack.database_url, tally.submissions, tally.appointments)
    tally.merge(probes)
    return {
        "injected": f"jscode2session {SLOW_MS} ms (client timeout {WECHAT_TIMEOUT} s), "
        "subscribe_send HTTP 500",
        "backend": BACKEND,
        "outage_s": round(phases.marks["wechat_well"] - phases.marks["wechat_slow"], 1),
        "login_slow_max_s": round(max(slow), 2),
        "login_circuit_open_median_s": round(fast[len(fast) // 2], 3),
        "login_circuit_open_fast": sum(1 for t in after_open if t < 0.5),
        "login_circuit_open_tried": len(after_open),
        "filed_during": filed_during,
        "recovery_s": round(recovery, 2),
        "outbox_drained_s": round(drained, 1),
        "subscribe_delivered_rows": int(rows[0][0]),
        "subscribe_messages_sent": len(messages["messages"]),
        "rows_before": before,
        "rows_after": after,
        "lost": missing,
        **tally.summary(),
    }


def test_wechat_slow_or_failing_opens_the_circuit_and_recovers(wechat_stack: Stack) -> None:
    try:
        summary = asyncio.run(_scenario(wechat_stack))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{wechat_stack.log_text()}") from exc
    write_summary(f"wechat_outage_{BACKEND}", summary)
    assert summary["defects"] == [], summary
    assert summary["lost"] == {"submissions": [], "submission_audit": [], "bookings": []}, summary
    # With the circuit open a login fails at once instead of after timeouts and retries.
    assert summary["login_circuit_open_median_s"] < 0.5, summary
    assert summary["filed_during"] > 0, summary
    assert summary["recovery_s"] < OPEN_SECONDS + 5, summary
    # Exactly once: every delivered row reached WeChat, none twice.
    assert summary["subscribe_messages_sent"] == summary["subscribe_delivered_rows"], summary
