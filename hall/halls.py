"""Halls and their business categories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from hall.models import Hall, HallCategory


@dataclass(frozen=True, slots=True)
class HallInfo:
    hall_id: str
    name: str
    address: str
    open_hours: list[dict[str, Any]]
    categories: list[tuple[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "hall_id": self.hall_id,
            "name": self.name,
            "address": self.address,
            "open_hours": self.open_hours,
            "categories": [{"code": c, "name": n} for c, n in self.categories],
        }


async def list_halls() -> list[HallInfo]:
    halls = await Hall.all().order_by("hall_id").prefetch_related("categories")
    return [
        HallInfo(
            hall_id=h.hall_id,
            name=h.name,
            address=h.address,
            open_hours=list(h.open_hours),
            categories=[(c.code, c.name) for c in sorted(h.categories, key=lambda c: c.position)],
        )
        for h in halls
    ]


async def upsert_hall(
    hall_id: str,
    name: str,
    address: str,
    open_hours: list[dict[str, Any]],
    categories: Sequence[tuple[str, str]],
) -> None:
    """Create or update a hall and make its categories exactly ``categories`` (in that order)."""
    async with in_transaction():
        hall, created = await Hall.get_or_create(
            hall_id=hall_id, defaults={"name": name, "address": address, "open_hours": open_hours}
        )
        if not created:
            hall.name, hall.address, hall.open_hours = name, address, open_hours
            await hall.save()
        wanted = {code for code, _ in categories}
        await HallCategory.filter(hall=hall).exclude(code__in=wanted).delete()
        for position, (code, label) in enumerate(categories):
            await HallCategory.update_or_create(
                hall=hall, code=code, defaults={"name": label, "position": position}
            )
