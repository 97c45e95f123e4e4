"""The time, as every database comparison must see it.

With ``use_tz`` and ``timezone="Asia/Shanghai"``, tortoise 1.1 stores datetimes on SQLite as text in
Shanghai time but passes query parameters as they are: a UTC ``now`` compared with a stored
Shanghai time compares two strings and is eight hours wrong. Every ``now`` that reaches a query
comes from here, in the database's own zone (PostgreSQL compares instants and does not mind).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    return datetime.now(ZONE)


def local(moment: datetime) -> datetime:
    """An aware datetime moved into the database's zone (same instant)."""
    return moment.astimezone(ZONE)
