"""IDOR sweep (issue 9 item 4): every mini-program route whose path names something a person or
taxpayer owns, called by people who do not own it, with every method the route has.

The routes come from the running app's router. Each id-bearing /mp route must have an entry in
``OWNED`` saying whose object its ids name and what body to send (a body good enough that only
the access check can refuse it); a route without one fails the sweep by name, so a new route
cannot skip it. Id-bearing routes outside /mp must be listed as public or staff-only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sanic import HTTPResponse, Request
from sanic.response import empty

from miniapp_api.settings import Settings
from tests.conftest import LiveServer, serve_app
from tests.miniapp_api.filing_helpers import proxy_invoice_data
from tests.miniapp_api.test_mp_grants import in_days
from tests.miniapp_api.test_mp_realname import auth
from tests.security.routes import MP, STAFF, Route, app_routes
from tests.security.world import World, png_bytes, world_of
from tests.wecom.test_binding import bound_member

# Answers to a stranger: 404 for a thing that is not yours (API.md, "Errors": "also for things
# that exist but are not yours"); 403 where acting on a taxpayer needs a permission the caller
# lacks (grants.py, "Acting without the permission is 403").
NOT_YOURS = frozenset({404})
NOT_PERMITTED = frozenset({403, 404})
NOBODY = 2**31 - 1  # an id nothing has


@dataclass(frozen=True)
class Owned:
    owner: str  # the World attribute holding the owner's token
    refused: frozenset[int]
    body: Callable[[World], dict[str, Any]] = lambda w: {}


def _version(world: World) -> dict[str, Any]:
    return {"json": {"version": world.submission["version"], "comment": "好", "reason": "不行"}}


def _grant(world: World) -> dict[str, Any]:
    body = {"name": "冒名丁", "id_number": "11010519491231002X", "role": "tax_clerk"}
    return {"json": body | {"expires_at": in_days(10)}}


OWNED: dict[str, Owned] = {
    # submissions of SHOP, filed by its operator
    "mp_submissions.submission_detail": Owned("owner", NOT_YOURS),
    "mp_submissions.submission_resubmit": Owned(
        "owner",
        NOT_YOURS,
        lambda w: {"json": {"data": proxy_invoice_data(), "version": w.submission["version"]}},
    ),
    "mp_submissions.submission_withdraw": Owned("owner", NOT_YOURS, _version),
    "mp_submissions.submission_internal_approve": Owned("owner", NOT_YOURS, _version),
    "mp_submissions.submission_internal_reject": Owned("owner", NOT_YOURS, _version),
    "mp_submissions.submission_receipt": Owned("owner", NOT_YOURS),
    "mp_attachments.attachment_get": Owned("owner", NOT_YOURS),
    "mp_attachments.attachment_upload": Owned(
        "owner", NOT_YOURS, lambda w: {"files": {"file": ("x.png", png_bytes(), "image/png")}}
    ),
    # drafts
    "mp_drafts.draft_get": Owned("owner", NOT_YOURS),
    "mp_drafts.draft_save": Owned(
        "owner", NOT_YOURS, lambda w: {"json": {"data": {"address": "改了"}, "version": 1}}
    ),
    "mp_drafts.draft_delete": Owned("owner", NOT_YOURS),
    # COMPANY's grants and settings, managed by its legal representative
    "mp_grants.grant_list": Owned("owner", NOT_PERMITTED),
    "mp_grants.grant_create": Owned("owner", NOT_PERMITTED, _grant),
    "mp_grants.grant_revoke": Owned("owner", NOT_PERMITTED),
    "mp_submissions.filing_settings": Owned(
        "owner", NOT_PERMITTED, lambda w: {"json": {"internal_approval_required": True}}
    ),
    # a pending grant naming someone else
    "mp_grants.grant_confirm": Owned("owner", NOT_YOURS),
    "mp_grants.grant_decline": Owned("owner", NOT_YOURS),
    # the guest's appointment and invitation
    "appointments.appointment_cancel": Owned("guest", NOT_YOURS),
    "appointments.invitation_accept": Owned("guest", NOT_YOURS),
    "appointments.invitation_decline": Owned("guest", NOT_YOURS),
}

# Id-bearing routes outside /mp. Public: what they name is public (halls, forms, guides, pages).
PUBLIC = {
    "halls.status",
    "halls.snapshot",
    "halls.live",
    "comfort.comfort",
    "comfort.comfort_svg",
    "hall_slots.hall_slots",
    "forms.form_schema",
    "guides.guide_detail",
    "guides.guide_qrcode",
    "pages.hall_display",
    "pages.static",
}
# Mounted only with the simulator (refused outside loopback by the settings) and the docs.
NOT_SWEPT_PREFIXES = ("/_sim/", "/docs")


def _id_routes(app: Any) -> list[Route]:
    return [r for r in app_routes(app) if r.params]


def unclassified(app: Any) -> list[str]:
    """Id-bearing routes of ``app`` the sweep does not know."""
    unknown = []
    for route in _id_routes(app):
        if route.path.startswith(MP):
            known = route.name in OWNED
        elif route.path.startswith(STAFF):
            known = True  # staff-only: test_audiences calls every one with a taxpayer's token
        else:
            known = route.name in PUBLIC or route.path.startswith(NOT_SWEPT_PREFIXES)
        if not known:
            unknown.append(f"{route.name} {route.path}")
    return unknown


def test_every_id_bearing_route_is_classified(live: LiveServer) -> None:
    unknown = unclassified(live.app)
    assert not unknown, (
        "id-bearing routes the IDOR sweep does not know: add each to OWNED (how to make the object "
        f"it names) or, if what it names is public, to PUBLIC: {unknown}"
    )
    names = {r.name for r in app_routes(live.app)}
    assert not set(OWNED) - names, f"OWNED names routes the app no longer has: {set(OWNED) - names}"


async def test_a_new_id_route_fails_the_sweep_until_classified(settings: Settings) -> None:
    def prepare(app: Any) -> None:
        async def peek(request: Request, thing_id: int) -> HTTPResponse:
            return empty()

        app.add_route(peek, "/api/v1/mp/things/<thing_id:int>", name="peek")
        app.add_route(peek, "/api/v1/things/<thing_id:int>", name="public_peek")

    async with serve_app(settings, prepare) as server:
        assert sorted(unclassified(server.app)) == [
            "peek /api/v1/mp/things/<thing_id:int>",
            "public_peek /api/v1/things/<thing_id:int>",
        ]


@pytest.fixture
async def world(live: LiveServer) -> AsyncIterator[World]:
    async with world_of(live) as built:
        yield built


async def _call(live: LiveServer, method: str, url: str, token: str, body: dict[str, Any]) -> Any:
    headers = auth(token) | {"Idempotency-Key": "idor-sweep"}
    return await live.http.request(method, url, headers=headers, **body)


async def test_nobody_reaches_what_is_not_theirs(live: LiveServer, world: World) -> None:
    _, member, _ = await bound_member(live)
    callers = {
        "owner": world.owner,
        "guest": world.guest,
        "stranger": world.stranger,
        "wecom member": member,
    }
    swept, problems = 0, []
    for route in _id_routes(live.app):
        if not route.path.startswith(MP):
            continue
        owned = OWNED[route.name]
        real = route.url(world.values)
        missing = route.url(
            {**world.values, **{p: NOBODY for p in route.params if p != "taxpayer_id"}}
        )
        for method in route.methods:
            for who, token in callers.items():
                if who == owned.owner:
                    continue
                body = owned.body(world)
                r = await _call(live, method, real, token, body)
                swept += 1
                where = f"{method} {real} as {who} ({route.name})"
                if r.status_code not in owned.refused:
                    problems.append(f"{where}: {r.status_code} {r.text[:200]}")
                    continue
                code = r.json()["error"]["code"]
                # Not yours and not there must look alike: no oracle for which ids exist.
                r2 = await _call(live, method, missing, token, owned.body(world))
                if (r2.status_code, r2.json()["error"]["code"]) != (r.status_code, code):
                    problems.append(
                        f"{where}: {r.status_code} {code}, but for a missing id "
                        f"{r2.status_code} {r2.text[:200]}"
                    )
    assert not problems, "\n".join(problems)
    assert swept >= 3 * len(OWNED)

    # And nothing changed: the owners still see everything as it was.
    owner, guest, http = auth(world.owner), auth(world.guest), live.http
    ids = world.ids
    detail = await http.get(f"/api/v1/mp/submissions/{ids['submission_id']}", headers=owner)
    assert detail.status_code == 200
    assert detail.json()["status"] == world.submission["status"]
    assert detail.json()["version"] == world.submission["version"]
    assert [a["attachment_id"] for a in detail.json()["attachments"]] == [ids["attachment_id"]]
    draft = await http.get(f"/api/v1/mp/drafts/{ids['draft_id']}", headers=owner)
    assert (draft.status_code, draft.json()["version"]) == (200, 1)
    grants = await http.get("/api/v1/mp/taxpayers/91440103MA59D8QK16/grants", headers=owner)
    mine = [g for g in grants.json() if g["grant_id"] == ids["grant_id"]]
    assert [g["status"] for g in mine] == ["pending"]
    bookings = (await http.get("/api/v1/mp/appointments", headers=guest)).json()
    assert [a["status"] for a in bookings if a["appointment_id"] == ids["appointment_id"]] == [
        "booked"
    ]
    invitations = (await http.get("/api/v1/mp/invitations", headers=guest)).json()
    assert [i["status"] for i in invitations if i["invitation_id"] == ids["invitation_id"]] == [
        "pending"
    ]
