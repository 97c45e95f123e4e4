"""The demo data of API.md, loaded by ``suban demo`` and ``make run``; safe to load again."""

from __future__ import annotations

import logging

from auth import clock
from auth.models import StaffUser
from auth.pii import Keyring
from auth.staff import UsernameTaken, create_staff
from auth.taxpayers import upsert_taxpayer
from hall.comfort import load_demo_comfort
from hall.devices import load_demo_devices
from hall.guides import load_demo_guides
from hall.halls import upsert_hall
from hall.slots import load_demo_slots
from miniapp_api.settings import DEMO_DEVICE_SECRET

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


# API.md, "Demo data": the registry knows people only by ID number (held as blind indexes).
DEMO_TAXPAYERS: list[dict[str, str]] = [
    {
        "taxpayer_id": "91440103MA59D8QK16",
        "name": "广州荔湾示例贸易有限公司",
        "kind": "small_scale",
        "legal_rep_id_number": "44010319850612301X",  # 陈明
        "finance_head_id_number": "440103199003152024",  # 林芳
    },
    {
        "taxpayer_id": "92440103MA5C3RTN8C",
        "name": "荔湾区示例维修部",
        "kind": "individual_business",
        "legal_rep_id_number": "44010319850612301X",  # 陈明, the operator (经营者)
    },
]


# API.md, "Demo data": the staff account the console is tried with.
DEMO_STAFF_USERNAME = "reviewer"
DEMO_STAFF_DISPLAY_NAME = "示例审核员"
DEMO_STAFF_ROLES = ["reviewer"]


async def load_demo_staff(keyring: Keyring, password: str) -> str:
    """The demo reviewer, created once. Loading again leaves an existing account alone, a changed
    password included (``suban staff reset-password reviewer`` sets a new one)."""
    there = f"staff {DEMO_STAFF_USERNAME} already there (password left as it is)"
    if await StaffUser.exists(username=DEMO_STAFF_USERNAME):
        return there
    try:
        await create_staff(
            DEMO_STAFF_USERNAME,
            password,
            roles=DEMO_STAFF_ROLES,
            display_name=DEMO_STAFF_DISPLAY_NAME,
            keyring=keyring,
        )
    except UsernameTaken:  # another `suban demo` made it just now
        return there
    return f"staff {DEMO_STAFF_USERNAME} with the password in SUBAN_DEMO_STAFF_PASSWORD"


async def load_demo(
    keyring: Keyring,
    *,
    staff_password: str,
    device_secret: str = DEMO_DEVICE_SECRET,
    history_years: int = 3,
) -> list[str]:
    """Load the demo data; returns a line per part loaded. Later features add their parts."""
    lines: list[str] = []
    for row in DEMO_TAXPAYERS:
        await upsert_taxpayer(
            row["taxpayer_id"],
            row["name"],
            row["kind"],
            keyring=keyring,
            legal_rep_id_number=row.get("legal_rep_id_number"),
            finance_head_id_number=row.get("finance_head_id_number"),
        )
    lines.append(f"{len(DEMO_TAXPAYERS)} taxpayers in the registry")
    await upsert_hall(
        "liwan",
        "荔湾区办税服务厅",
        "广州市荔湾区示例大道 1 号",
        LIWAN_OPEN_HOURS,
        LIWAN_CATEGORIES,
    )
    lines.append("hall liwan with 4 categories")
    lines.append(await load_demo_slots("liwan", today=clock.now().date()))
    lines.append(await load_demo_devices(keyring, device_secret))
    lines.append(await load_demo_guides())
    lines.append(
        await load_demo_comfort(
            "liwan",
            categories=[code for code, _ in LIWAN_CATEGORIES],
            open_hours=LIWAN_OPEN_HOURS,
            now=clock.now(),
            years=history_years,
        )
    )
    lines.append(await load_demo_staff(keyring, staff_password))
    return lines
