"""No name, ID number or phone in the clear anywhere in the database: after a phone, a real-name
verification and a grant through HTTP, every text column of every table is read raw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import Tortoise, connections

from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import COMPANY, cross_region_data, filed, person_token
from tests.miniapp_api.test_attachments_routes import png_bytes
from tests.miniapp_api.test_mp_realname import auth, claim, login, verify

NAME, ID_NUMBER, PHONE = "欧阳明月", "110101199003077774", "13712345678"
GRANTEE_NAME, GRANTEE_ID = "司马青云", "11010519491231002X"


async def _every_cell() -> list[str]:
    conn = connections.get("default")
    cells: list[str] = []
    for model in Tortoise.apps["suban"].values():
        table = model._meta.db_table
        _, rows = await conn.execute_query(f'SELECT * FROM "{table}"')  # noqa: S608 - our tables
        for row in rows:
            values: Any = dict(row).values()
            cells.extend(str(v) for v in values if v is not None)
    return cells


async def test_no_personal_data_in_the_clear_in_any_table(live: LiveServer) -> None:
    token = await login(live)
    phone = await live.http.post(
        "/api/v1/mp/phone", json={"code": f"sim:{PHONE}"}, headers=auth(token)
    )
    assert phone.status_code == 200
    assert (await verify(live, token, claim(NAME, ID_NUMBER))).status_code == 200
    chen = await login(live)
    assert (await verify(live, chen, claim("陈明", "44010319850612301X"))).status_code == 200
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    granted = await live.http.post(
        "/api/v1/mp/taxpayers/91440103MA59D8QK16/grants",
        json={
            "name": GRANTEE_NAME,
            "id_number": GRANTEE_ID,
            "role": "invoicer",
            "expires_at": expires,
        },
        headers=auth(chen),
    )
    assert granted.status_code == 201

    cells = await _every_cell()
    assert len(cells) > 50  # the tables were really read
    for secret in (NAME, ID_NUMBER, PHONE, GRANTEE_NAME, GRANTEE_ID, "陈明", "44010319850612301X"):
        leaking = [c for c in cells if secret in c]
        assert leaking == [], secret
    # The last digits of a phone or ID number are not stored either (masks are made on answer).
    assert not [c for c in cells if "5678" in c and "****" in c]


async def test_form_data_and_attachment_names_are_sealed(live: LiveServer) -> None:
    lin = await person_token(live, ("林芳", "440103199003152024"))
    contact = {"name": "慕容秋水", "phone": "13698765432"}
    created = await filed(
        live,
        lin,
        "cross_region_report",
        taxpayer_id=COMPANY,
        data=cross_region_data(contact=contact),
    )
    png = png_bytes()
    r = await live.http.post(
        f"/api/v1/mp/submissions/{created['id']}/attachments",
        files={"file": ("慕容秋水身份证.png", png, "image/png")},
        headers=auth(lin),
    )
    assert r.status_code == 201, r.text
    cells = await _every_cell()
    for secret in ("慕容秋水", "13698765432", "林芳"):
        assert [c for c in cells if secret in c] == [], secret
