"""The job worker killed (SIGKILL) while it delivers outbox messages, then started again.

WeChat answers subscribe sends slowly (1.5 s), so when the kill comes the worker holds claimed
rows with sends in flight. Those rows stay claimed until their lease (60 s) runs out; then the
new worker claims and sends them. Each outbox row reaches the simulator exactly once, and every
filing a client was told was accepted is a row with its audit record.

Not covered, by design (auth/outbox.py): a kill after Tencent accepted a send and before the row
was marked delivered sends that message again, since Tencent's API has no idempotency key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import httpx

from tests.faults.load import Phases, Tally, run_load
from tests.faults.report import fetch, missing_rows, outbox_drained, row_counts, write_summary
from tests.faults.stack import Stack

SEND_MS = 1500


async def _counter(sim: httpx.AsyncClient, endpoint: str) -> int:
    return int((await sim.get("/control/counters")).json()["counters"].get(endpoint, 0))


async def _scenario(stack: Stack) -> dict[str, Any]:
    tally, stop, phases = Tally(), asyncio.Event(), Phases()
    before = await row_counts(stack.database_url)
    sim = httpx.AsyncClient(base_url=stack.simulator, timeout=10, trust_env=False)
    r = await sim.post("/control/latency", json={"endpoint": "subscribe_send", "ms": SEND_MS})
    assert r.status_code == 200, r.text
    load = asyncio.create_task(run_load(stack.base, stop, tally))
    try:
        started = time.monotonic()
        while await _counter(sim, "subscribe_send") < 3:
            assert time.monotonic() - started < 60, "the worker never started sending"
            await asyncio.sleep(0.1)
        await asyncio.sleep(SEND_MS / 2000)  # mid-send
        worker = stack.workers[0]
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        phases.mark("worker_killed")
        sent_at_kill = await _counter(sim, "subscribe_send")
        await asyncio.sleep(3)
        await asyncio.to_thread(stack.start_worker)  # the load goes on meanwhile
        phases.mark("worker_started")
        await asyncio.sleep(5)
    finally:
        stop.set()
        await load
    await sim.post("/control/latency", json={"endpoint": "subscribe_send", "ms": 0})
    drained = await outbox_drained(stack.database_url, timeout=180)
    statuses = dict(
        await fetch(stack.database_url, "SELECT status, count(*) FROM outbox_message GROUP BY 1")
    )
    sent = (await sim.get("/control/messages", params={"channel": "subscribe"})).json()["messages"]
    await sim.aclose()
    keys = [repr(sorted(m.items())) for m in sent]
    after = await row_counts(stack.database_url)
    missing = await missing_rows(stack.database_url, tally.submissions, tally.appointments)
    return {
        "injected": f"SIGKILL to suban worker mid-delivery (subscribe_send slowed to {SEND_MS} ms)",
        "sends_started_at_kill": sent_at_kill,
        "worker_down_s": round(phases.marks["worker_started"] - phases.marks["worker_killed"], 1),
        "outbox_drained_s_after_load": round(drained, 1),
        "outbox_statuses": {str(k): int(v) for k, v in statuses.items()},
        "messages_sent": len(sent),
        "messages_duplicated": len(keys) - len(set(keys)),
        "rows_before": before,
        "rows_after": after,
        "lost": missing,
        **tally.summary(),
    }


def test_worker_killed_mid_delivery_delivers_each_message_once(stack: Stack) -> None:
    try:
        summary = asyncio.run(_scenario(stack))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.log_text()}") from exc
    write_summary("worker_kill", summary)
    assert summary["defects"] == [], summary
    assert summary["lost"] == {"submissions": [], "submission_audit": [], "bookings": []}, summary
    assert summary["outbox_statuses"] == {"delivered": summary["rows_after"]["outbox_message"]}
    assert summary["messages_sent"] == summary["rows_after"]["outbox_message"], summary
    assert summary["messages_duplicated"] == 0, summary
