"""Redis stopped under load for about five seconds, then started again, empty.

During the outage everything that needs Redis (sessions, rate limits, the hall's live status,
WeChat tokens) answers 503 DEPENDENCY_DOWN naming 缓存服务 (Redis), and ``/readyz`` names it; the
public progress lookup keeps answering from PostgreSQL, limited per worker. Redis comes back
without its data (no persistence): sessions made before are gone, so their holders get 401 and
log in again. Nothing any client was told was accepted is lost, and every outbox message written
around the outage is still delivered.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.faults.load import Client, Phases, Tally, run_load
from tests.faults.report import missing_rows, outbox_drained, row_counts, write_summary
from tests.faults.stack import Stack

OUTAGE_SECONDS = 5.0


async def _probe_client(base: str, tally: Tally) -> Client:
    """A taxpayer who filed before the outage: a session and a tracking number to look up."""
    http = httpx.AsyncClient(base_url=base, timeout=20, trust_env=False)
    client = Client(http, tally, 99)
    await client.one_round()
    assert client.token is not None, tally.summary()
    assert client.tracking is not None, tally.summary()
    return client


async def _outage_answers(stack: Stack, probe: Client) -> dict[str, Any]:
    """What each kind of route answers while Redis is down."""
    http = probe.http
    seen: dict[str, Any] = {}
    ready = await http.get("/readyz")
    seen["readyz"] = (ready.status_code, ready.json())
    assert ready.status_code == 503, ready.text
    assert ready.json()["error"]["failing"] == ["redis"], ready.text
    assert "Redis" in ready.json()["error"]["message"], ready.text
    hall = await http.get("/api/v1/halls/liwan/status")
    login = await http.post("/api/v1/mp/login", json={"code": "sim:o-fault-during"})
    me = await http.get("/api/v1/mp/me", headers=probe.auth())
    for name, r in (("hall_status", hall), ("login", login), ("me", me)):
        seen[name] = (r.status_code, r.json())
        assert r.status_code == 503, (name, r.text)
        assert r.json()["error"]["code"] == "DEPENDENCY_DOWN", (name, r.text)
        assert r.json()["error"]["failing"] == ["redis"], (name, r.text)
    for name, r in (("login", login), ("me", me)):
        assert "Redis" in r.json()["error"]["message"], (name, r.text)
        assert r.headers.get("Retry-After"), (name, r.headers)
    assert probe.tracking is not None
    tracking_no, check = probe.tracking
    lookup = await http.get("/api/v1/progress", params={"tracking_no": tracking_no, "check": check})
    seen["progress"] = (lookup.status_code, lookup.json())
    # Answered from PostgreSQL while the cache and the shared limits are away.
    assert lookup.status_code == 200, lookup.text
    assert lookup.json()["tracking_no"] == tracking_no
    return seen


async def _recovered(stack: Stack, probe: Client, old_token: str) -> float:
    """Seconds after Redis returned until login, filing, the hall status and the progress
    lookup all work again; the session made before the outage is gone (401)."""
    started = time.monotonic()
    http = probe.http
    while True:
        hall = await http.get("/api/v1/halls/liwan/status")
        ready = await http.get("/readyz")
        if hall.status_code == 200 and ready.status_code == 200:
            break
        assert time.monotonic() - started < 30, (hall.text, ready.text)
        await asyncio.sleep(0.1)
    old = await http.get("/api/v1/mp/me", headers={"Authorization": f"Bearer {old_token}"})
    assert old.status_code == 401, old.text
    assert old.json()["error"]["code"] == "SESSION_EXPIRED", old.text
    probe.token = None
    await probe.one_round()
    assert probe.token is not None, probe.tally.summary()
    assert probe.tracking is not None
    tracking_no, check = probe.tracking
    lookup = await http.get("/api/v1/progress", params={"tracking_no": tracking_no, "check": check})
    assert lookup.status_code == 200, lookup.text
    return time.monotonic() - started


async def _scenario(stack: Stack) -> dict[str, Any]:
    assert stack.redis is not None
    tally, stop, phases = Tally(), asyncio.Event(), Phases()
    before = await row_counts(stack.database_url)
    load = asyncio.create_task(run_load(stack.base, stop, tally))
    probe = await _probe_client(stack.base, tally)
    try:
        await asyncio.sleep(3)
        old_token = probe.token
        assert old_token is not None
        phases.mark("redis_stopped")
        stack.redis.stop()
        await asyncio.sleep(1)
        during = await _outage_answers(stack, probe)
        down_for = time.monotonic() - phases.started - phases.marks["redis_stopped"]
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - down_for))
        stack.redis.start()
        phases.mark("redis_started")
        back_at = time.monotonic()
        recovery = await _recovered(stack, probe, old_token)
        recovered_at = time.monotonic()
        # arq's poll loop ends when Redis goes away under it; `suban worker` starts it again
        # itself (miniapp_api/jobs.py run_arq_worker), so the process is still there.
        worker_exited = stack.workers[0].poll() is not None
        await asyncio.sleep(3)
    finally:
        stop.set()
        await load
        await probe.http.aclose()
    delivered_after = await outbox_drained(stack.database_url)
    after = await row_counts(stack.database_url)
    missing = await missing_rows(stack.database_url, tally.submissions, tally.appointments)
    return {
        "injected": "redis-server killed (no persistence), started again empty",
        "outage_s": round(phases.marks["redis_started"] - phases.marks["redis_stopped"], 1),
        "recovery_s": round(recovery, 2),
        "outbox_drained_s": round(delivered_after, 1),
        "job_worker_exited": worker_exited,
        # 503s in the moment between redis-server answering again and every worker's
        # connections, board and limits being back (recovery_s); none once they are.
        "failures_while_recovering": tally.failures_after(back_at)
        - tally.failures_after(recovered_at),
        "failures_after_recovery": tally.failures_after(recovered_at),
        "during": {k: v[0] for k, v in during.items()},
        "rows_before": before,
        "rows_after": after,
        "lost": missing,
        **tally.summary(),
    }


def test_redis_outage_answers_503_keeps_progress_and_recovers(stack: Stack) -> None:
    try:
        summary = asyncio.run(_scenario(stack))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.log_text()}") from exc
    write_summary("redis_outage", summary)
    assert summary["defects"] == [], summary
    assert summary["lost"] == {"submissions": [], "submission_audit": [], "bookings": []}, summary
    assert summary["accepted_submissions"] > 0, summary
    assert summary["failures_after_recovery"] == 0, summary
    assert summary["job_worker_exited"] is False, summary
