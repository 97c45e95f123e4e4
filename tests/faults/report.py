"""What each fault test saw, as JSON: printed, and merged into the file named by
``SUBAN_FAULT_SUMMARY`` when set, from which docs/RELIABILITY.md's tables are written."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]


def write_summary(fault: str, summary: dict[str, Any]) -> None:
    print(f"fault summary {fault}: {json.dumps(summary, ensure_ascii=False, sort_keys=True)}")
    target = os.environ.get("SUBAN_FAULT_SUMMARY")
    if not target:
        return
    path = Path(target)
    merged: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    merged[fault] = summary
    path.write_text(json.dumps(merged, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


async def fetch(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a plain query (no parameters) on PostgreSQL or on the embedded SQLite file."""
    if database_url.startswith("sqlite://"):
        with closing(sqlite3.connect(database_url.removeprefix("sqlite://"))) as lite:
            return list(lite.execute(sql).fetchall())
    conn = await asyncpg.connect(database_url.replace("postgresql://", "postgres://", 1))
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def row_counts(database_url: str) -> dict[str, int]:
    """Submissions, bookings, audit records and outbox messages as the database holds them."""
    tables = ("submission", "hall_appointment", "audit_event", "outbox_message")
    return {
        table: int((await fetch(database_url, f"SELECT count(*) FROM {table}"))[0][0])  # noqa: S608
        for table in tables
    }


async def missing_rows(
    database_url: str, submissions: set[int], appointments: set[int]
) -> dict[str, list[int]]:
    """Of what the clients were told was accepted (201), what is not in the database: the
    submissions, their audit records, the bookings. All three lists must be empty."""
    found = {int(r[0]) for r in await fetch(database_url, "SELECT id FROM submission")}
    audited = {
        int(str(r[0]).split(":", 1)[1])
        for r in await fetch(
            database_url, "SELECT target FROM audit_event WHERE target LIKE 'submission:%'"
        )
    }
    booked = {int(r[0]) for r in await fetch(database_url, "SELECT id FROM hall_appointment")}
    return {
        "submissions": sorted(submissions - found),
        "submission_audit": sorted(submissions - audited),
        "bookings": sorted(appointments - booked),
    }


async def outbox_drained(database_url: str, timeout: float = 100.0) -> float:
    """Seconds until no outbox message is pending (a nudge, or the worker's once-a-minute run,
    delivers what a fault held up)."""
    started = time.monotonic()
    sql = "SELECT count(*) FROM outbox_message WHERE status = 'pending'"
    while (await fetch(database_url, sql))[0][0]:
        assert time.monotonic() - started < timeout, "outbox messages stayed pending"
        await asyncio.sleep(0.5)
    return time.monotonic() - started
