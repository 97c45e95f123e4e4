"""Drafts through HTTP: prefilled from the registry and the person, saved with a version (a stale
one is 409), resumed, listed, deleted, turned into a submission."""

from __future__ import annotations

from typing import Any

from forms.models import Draft
from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import COMPANY, cross_region_data, person_token
from tests.miniapp_api.test_mp_grants import fresh_id
from tests.miniapp_api.test_mp_realname import LIN, auth

DRAFTS = "/api/v1/mp/drafts"


async def new_draft(live: LiveServer, token: str, **body: Any) -> Any:
    r = await live.http.post(DRAFTS, json=body, headers=auth(token))
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_draft_is_prefilled_saved_and_resumed(live: LiveServer) -> None:
    lin = await person_token(live, LIN)
    draft = await new_draft(live, lin, form_code="cross_region_report", taxpayer_id=COMPANY)
    assert draft["version"] == 1
    assert draft["taxpayer_id"] == COMPANY
    # Prefilled from the verified person.
    assert draft["data"]["contact"]["name"] == "林芳"
    # Incomplete is fine for a draft; the problems so far are listed.
    assert "address" in draft["problems"]

    data = cross_region_data()
    r = await live.http.put(
        f"{DRAFTS}/{draft['id']}", json={"data": data, "version": 1}, headers=auth(lin)
    )
    assert r.status_code == 200
    assert r.json()["version"] == 2
    assert r.json()["problems"] == {}
    # Another device still on version 1 cannot overwrite it.
    stale = await live.http.put(
        f"{DRAFTS}/{draft['id']}", json={"data": {}, "version": 1}, headers=auth(lin)
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "STALE_VERSION"
    resumed = (await live.http.get(f"{DRAFTS}/{draft['id']}", headers=auth(lin))).json()
    assert resumed["data"] == data
    listed = (await live.http.get(DRAFTS, headers=auth(lin))).json()
    assert draft["id"] in [d["id"] for d in listed]

    # Filing from the draft removes it.
    r = await live.http.post(
        "/api/v1/mp/submissions",
        json={
            "form_code": "cross_region_report",
            "taxpayer_id": COMPANY,
            "data": data,
            "draft_id": draft["id"],
        },
        headers=auth(lin) | {"Idempotency-Key": f"draft-{draft['id']}-key"},
    )
    assert r.status_code == 201, r.text
    assert not await Draft.exists(id=draft["id"])


async def test_drafts_are_private_and_need_the_permission(live: LiveServer) -> None:
    lin = await person_token(live, LIN)
    draft = await new_draft(live, lin, form_code="cross_region_report", taxpayer_id=COMPANY)
    other = await person_token(live, ("旁人乙", fresh_id()))
    for method in ("get", "delete"):
        r = await getattr(live.http, method)(f"{DRAFTS}/{draft['id']}", headers=auth(other))
        assert r.status_code == 404
    r = await live.http.put(
        f"{DRAFTS}/{draft['id']}", json={"data": {}, "version": 1}, headers=auth(other)
    )
    assert r.status_code == 404
    r = await live.http.post(
        DRAFTS,
        json={"form_code": "cross_region_report", "taxpayer_id": COMPANY},
        headers=auth(other),
    )
    assert r.status_code == 403
    r = await live.http.post(DRAFTS, json={"form_code": "nope"}, headers=auth(other))
    assert r.status_code == 422
    assert (await live.http.delete(f"{DRAFTS}/{draft['id']}", headers=auth(lin))).status_code == 204
    assert (await live.http.get(f"{DRAFTS}/{draft['id']}", headers=auth(lin))).status_code == 404
