"""PostgreSQL restarted under load (a fast stop, a few seconds down, started again).

A fast stop ends every session, so each worker's pool holds dead connections afterwards. During
the outage whatever needs the database answers 503 DEPENDENCY_DOWN naming 数据库, and
``/readyz`` names it; what Redis alone can answer (the hall's live status, a cached progress
answer) keeps answering. After the start the pools recover on their own, and no request, not
even the first on a dead connection, is answered 500. Nothing a client was told was accepted
is lost.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.faults.load import Client, Phases, Tally, run_load
from tests.faults.report import missing_rows, row_counts, write_summary
from tests.faults.stack import Stack

DOWN_SECONDS = 4.0


async def _outage_answers(probe: Client) -> dict[str, int]:
    http = probe.http
    ready = await http.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.json()["error"]["failing"] == ["database"], ready.text
    assert "数据库" in ready.json()["error"]["message"], ready.text
    login = await http.post("/api/v1/mp/login", json={"code": "sim:o-fault-pg-during"})
    filed = await http.post(
        "/api/v1/mp/submissions",
        json={"form_code": "proxy_invoice", "data": {}},
        headers=probe.auth() | {"Idempotency-Key": "k-during-pg-outage"},
    )
    for name, r in (("login", login), ("file", filed)):
        assert r.status_code == 503, (name, r.text)
        error = r.json()["error"]
        assert error["code"] == "DEPENDENCY_DOWN", (name, r.text)
        assert error["failing"] == ["database"], (name, r.text)
        assert "数据库" in error["message"], (name, r.text)
        assert r.headers.get("Retry-After"), (name, r.headers)
    hall = await http.get("/api/v1/halls/liwan/status")
    assert hall.status_code == 200, hall.text
    return {
        "readyz": ready.status_code,
        "login": login.status_code,
        "file": filed.status_code,
        "hall_status": hall.status_code,
    }


async def _recovered(probe: Client) -> float:
    """Seconds after the start until a login, a filing and a lookup all work; every answer
    on the way is a clean one (the load's tally checks that)."""
    started = time.monotonic()
    while True:
        probe.token = None
        await probe.one_round()
        if probe.token is not None and probe.tally.statuses["file"].get(201, 0) > 0:
            ready = await probe.http.get("/readyz")
            if ready.status_code == 200:
                return time.monotonic() - started
        assert time.monotonic() - started < 30, probe.tally.summary()
        await asyncio.sleep(0.1)


async def _scenario(stack: Stack) -> dict[str, Any]:
    assert stack.postgres is not None
    tally, stop, phases = Tally(), asyncio.Event(), Phases()
    before = await row_counts(stack.database_url)
    load = asyncio.create_task(run_load(stack.base, stop, tally))
    probe_tally = Tally()
    probe = Client(
        httpx.AsyncClient(base_url=stack.base, timeout=20, trust_env=False), probe_tally, 98
    )
    try:
        await probe.one_round()
        assert probe.token is not None, probe_tally.summary()
        await asyncio.sleep(3)
        phases.mark("postgres_stopped")
        await asyncio.to_thread(stack.postgres.stop, "fast")
        await asyncio.sleep(1)
        during = await _outage_answers(probe)
        down_for = time.monotonic() - phases.started - phases.marks["postgres_stopped"]
        await asyncio.sleep(max(0.0, DOWN_SECONDS - down_for))
        await asyncio.to_thread(stack.postgres.start)
        phases.mark("postgres_started")
        back_at = time.monotonic()
        probe_tally.statuses.pop("file", None)
        recovery = await _recovered(probe)
        await asyncio.sleep(3)
    finally:
        stop.set()
        await load
        await probe.http.aclose()
    tally.merge(probe_tally)
    after = await row_counts(stack.database_url)
    missing = await missing_rows(stack.database_url, tally.submissions, tally.appointments)
    return {
        "injected": "pg_ctl stop -m fast, then pg_ctl start",
        "outage_s": round(phases.marks["postgres_started"] - phases.marks["postgres_stopped"], 1),
        "recovery_s": round(recovery, 2),
        # Answers of 503 once PostgreSQL was accepting connections again (dead pooled ones).
        "failures_after_restart": tally.failures_after(back_at),
        "during": during,
        "rows_before": before,
        "rows_after": after,
        "lost": missing,
        **tally.summary(),
    }


def test_postgres_restart_answers_503_and_the_pool_recovers(stack: Stack) -> None:
    try:
        summary = asyncio.run(_scenario(stack))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.log_text()}") from exc
    write_summary("postgres_restart", summary)
    assert summary["defects"] == [], summary
    assert summary["lost"] == {"submissions": [], "submission_audit": [], "bookings": []}, summary
    assert summary["accepted_submissions"] > 0, summary
    assert summary["failures_after_restart"] == 0, summary
