"""Tortoise models of the hall package."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Hall(Model):
    """A tax service hall (办税服务厅)."""

    hall_id = fields.CharField(pk=True, max_length=32)
    name = fields.CharField(max_length=100)
    address = fields.CharField(max_length=200)
    # [{"weekdays": [1, 2, 3, 4, 5], "start": "09:00", "end": "12:00"}, ...]; ISO weekdays.
    open_hours: fields.Field[list[dict[str, object]]] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    categories: fields.ReverseRelation[HallCategory]

    class Meta:
        table = "hall"


class HallCategory(Model):
    """A business category of a hall's queue (发票办理, 申报纳税, …)."""

    id = fields.IntField(pk=True)
    hall: fields.ForeignKeyRelation[Hall] = fields.ForeignKeyField(
        "suban.Hall", related_name="categories", on_delete=fields.CASCADE
    )
    code = fields.CharField(max_length=32)
    name = fields.CharField(max_length=50)
    position = fields.SmallIntField(default=0)

    class Meta:
        table = "hall_category"
        unique_together = (("hall", "code"),)
