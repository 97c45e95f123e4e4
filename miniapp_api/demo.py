"""The demo data of API.md, loaded by ``suban demo`` and ``make run``; safe to load again."""

from __future__ import annotations

import logging

from hall.halls import upsert_hall

log = logging.getLogger("suban.demo")

LIWAN_CATEGORIES = [
    ("invoice", "发票办理"),
    ("filing", "申报纳税"),
    ("registration", "登记"),
    ("consulting", "综合咨询"),
]
WEEKDAYS = [1, 2, 3, 4, 5]
LIWAN_OPEN_HOURS: list[dict[str, object]] = [
    {"weekdays": WEEKDAYS, "start": "09:00", "end": "12:00"},
    {"weekdays": WEEKDAYS, "start": "13:00", "end": "17:00"},
]


async def load_demo() -> list[str]:
    """Load what exists so far; returns a line per part loaded. Later features add their parts."""
    await upsert_hall(
        "liwan",
        "荔湾区办税服务厅",
        "广州市荔湾区示例大道 1 号",
        LIWAN_OPEN_HOURS,
        LIWAN_CATEGORIES,
    )
    return ["hall liwan with 4 categories"]
