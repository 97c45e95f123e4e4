"""Markdown rows for docs/RELIABILITY.md from the fault tests' JSON summary.

SUBAN_FAULT_SUMMARY=var/faults.json SUBAN_TEST_BACKEND=postgres pytest -q tests/faults
python -m tests.faults.table var/faults.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _statuses(summary: dict[str, Any]) -> str:
    return "; ".join(
        f"{route} " + ", ".join(f"{status}×{n}" for status, n in counts.items())
        for route, counts in summary["statuses"].items()
    )


def _lost(summary: dict[str, Any]) -> str:
    lost = summary["lost"]
    if not any(lost.values()):
        return "nothing"
    return ", ".join(f"{k}: {v}" for k, v in lost.items() if v)


def table(summaries: dict[str, Any]) -> str:
    lines = [
        "| fault | injected | requests sent (by route) | clients saw | accepted → rows | lost |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for fault, s in sorted(summaries.items()):
        requests = ", ".join(f"{route} {n}" for route, n in s["requests"].items())
        accepted = (
            f"{s['accepted_submissions']} filings, {s['accepted_bookings']} bookings → "
            f"{s['rows_after']['submission']} / {s['rows_after']['hall_appointment']} rows, "
            f"{s['rows_after']['audit_event']} audit records"
        )
        lines.append(
            f"| {fault} | {s['injected']} | {requests} | {_statuses(s)} | {accepted} | {_lost(s)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1]).read_text())))
