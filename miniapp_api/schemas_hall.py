"""What the public hall routes answer (API.md "Hall"), as models for the OpenAPI document.

The routes build their answers as dicts (the live status is rendered once per worker and served
as text); these models only describe them, so tests/fuzz can check each answer against its schema.
``HallStatus`` is also what every message of the live WebSocket carries, so it is a named
component that both the HTTP route and the WebSocket's description point to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from miniapp_api.openapi_docs import Schema, add_schema_component, schema_of


class OpeningPeriod(BaseModel):
    weekdays: list[int] = Field(description="ISO weekdays, 1 = Monday")
    start: str = Field(description="HH:MM, Asia/Shanghai")
    end: str = Field(description="HH:MM, Asia/Shanghai")


class HallCategory(BaseModel):
    code: str
    name: str


class Hall(BaseModel):
    hall_id: str
    name: str
    address: str
    open_hours: list[OpeningPeriod]
    categories: list[HallCategory]


class CategoryWaiting(BaseModel):
    category: str
    waiting: int = Field(ge=0)
    est_wait_minutes: int | None = Field(description="None while there is nothing to go on")


class CameraStatus(BaseModel):
    camera_id: str
    online: bool = Field(description="a heartbeat in the last 60 s")
    last_seen: datetime | None
    people_count: int | None = Field(ge=0)
    snapshot_url: str | None = Field(
        description="signed link to the latest snapshot, valid for at most 5 minutes"
    )


class HallStatus(BaseModel):
    hall_id: str
    updated_at: datetime
    open: bool
    windows_open: int = Field(ge=0)
    waiting_total: int = Field(ge=0)
    crowd_level: Literal["较少", "适中", "较多"]
    by_category: list[CategoryWaiting]
    cameras: list[CameraStatus]


HALL_LIST: Schema = {"type": "array", "items": schema_of(Hall)}
HALL_STATUS_REF: Schema = add_schema_component("HallStatus", HallStatus)
