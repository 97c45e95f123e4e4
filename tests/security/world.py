"""A small world for the security sweeps: an owner with one of everything a person or taxpayer
owns (a submission with an attachment, a draft, a pending grant, an appointment, an invitation),
and strangers with no role on any of it."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from tests.conftest import LiveServer
from tests.hall.appointment_helpers import in_days, make_slot, own_hall, resident_id
from tests.miniapp_api.filing_helpers import (
    COMPANY,
    SHOP,
    filed,
    person_token,
    reviewer_token,
)
from tests.miniapp_api.test_mp_grants import in_days as iso_in_days
from tests.miniapp_api.test_mp_realname import CHEN, auth
from tests.miniapp_api.test_staff_routes import new_staff, token_of

MP = "/api/v1/mp"


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 30)).save(out, format="PNG")
    return out.getvalue()


@dataclass
class World:
    live: LiveServer
    hall_id: str
    owner: str  # 陈明: legal representative of COMPANY and operator of SHOP
    guest: str  # a person with appointments and invitations of their own
    stranger: str  # verified, no role on any taxpayer, owns nothing
    staff: str  # the demo reviewer
    submission: dict[str, Any] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)

    @property
    def values(self) -> dict[str, Any]:
        """Values for every path parameter the sweeps meet, naming the owner's objects."""
        return {"taxpayer_id": COMPANY, "hall_id": self.hall_id, **self.ids}


async def _ok(response: Any, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def build_world(live: LiveServer, hall_id: str) -> World:
    guest_number = resident_id()
    world = World(
        live=live,
        hall_id=hall_id,
        owner=await person_token(live, CHEN),
        guest=await person_token(live, ("访客甲", guest_number)),
        stranger=await person_token(live, ("路人乙", resident_id())),
        staff=await reviewer_token(live),
    )
    http, owner = live.http, auth(world.owner)
    world.submission = await filed(live, world.owner, "proxy_invoice", taxpayer_id=SHOP)
    sid = world.submission["id"]
    attachment = await _ok(
        await http.post(
            f"{MP}/submissions/{sid}/attachments",
            files={"file": ("scan.png", png_bytes(), "image/png")},
            headers=owner,
        )
    )
    draft = await _ok(
        await http.post(
            f"{MP}/drafts",
            json={"form_code": "cross_region_report", "taxpayer_id": COMPANY},
            headers=owner,
        )
    )
    grant = await _ok(
        await http.post(
            f"{MP}/taxpayers/{COMPANY}/grants",
            json={
                "name": "受托丙",
                "id_number": resident_id(),
                "role": "tax_clerk",
                "expires_at": iso_in_days(30),
            },
            headers=owner,
        )
    )
    slot = await make_slot(hall_id, in_days(2), capacity=4)
    reserved = await make_slot(hall_id, in_days(3), capacity=4, reserved=2)
    appointment = await _ok(
        await http.post(f"{MP}/appointments", json={"slot_id": slot.id}, headers=auth(world.guest))
    )
    manager, _ = await new_staff(live, "hall_manager")
    invitation = await _ok(
        await http.post(
            "/api/v1/staff/invitations",
            json={"slot_id": reserved.id, "id_number": guest_number, "message": "请带上公章"},
            headers=auth(await token_of(live, manager)),
        )
    )
    world.ids = {
        "submission_id": sid,
        "attachment_id": attachment["attachment_id"],
        "draft_id": draft["id"],
        "grant_id": grant["grant_id"],
        "appointment_id": appointment["appointment_id"],
        "invitation_id": invitation["invitation_id"],
        "slot_id": slot.id,
    }
    return world


@asynccontextmanager
async def world_of(live: LiveServer) -> AsyncIterator[World]:
    async with own_hall() as hall_id:
        yield await build_world(live, hall_id)
