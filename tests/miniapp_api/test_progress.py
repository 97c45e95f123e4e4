"""The public progress lookup: the right check shows the timeline, a wrong one is the same 404 as
an unknown number, and guessing is rate limited."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from forms import progress
from forms.models import Submission
from miniapp_api.settings import Settings
from tests.conftest import LiveServer, serve_app
from tests.miniapp_api.filing_helpers import SHOP, filed, person_token, reviewer_token, staff_act
from tests.miniapp_api.test_mp_realname import CHEN

PROGRESS = "/api/v1/progress"


async def test_lookup_by_id_number_or_taxpayer_id_digits(live: LiveServer) -> None:
    chen = await person_token(live)
    created = await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP)
    staff = await reviewer_token(live)
    await staff_act(live, staff, created["id"], "claim", version=1, comment="内部备注")
    tracking_no = created["tracking_no"]
    for check in (CHEN[1][-4:], CHEN[1][-4:].lower(), SHOP[-4:]):
        r = await live.http.get(PROGRESS, params={"tracking_no": tracking_no, "check": check})
        assert r.status_code == 200, (check, r.text)
        body = r.json()
        assert body["tracking_no"] == tracking_no
        assert body["status"] == "in_review"
        assert body["form_title"] == "代开增值税发票缴纳税款申报单"
        assert [e["status"] for e in body["timeline"]] == ["submitted", "in_review"]
        # Reviewers' words stay out of the public answer.
        assert all(e["note"] is None for e in body["timeline"])
    # Typed the way people type it: lower case, spaces instead of dashes.
    spoken = tracking_no.lower().replace("-", " ")
    r = await live.http.get(PROGRESS, params={"tracking_no": spoken, "check": SHOP[-4:]})
    assert r.status_code == 200


async def test_a_wrong_check_is_the_same_404_as_an_unknown_number(live: LiveServer) -> None:
    chen = await person_token(live)
    tracking_no = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["tracking_no"]
    wrong = await live.http.get(PROGRESS, params={"tracking_no": tracking_no, "check": "0000"})
    unknown = await live.http.get(
        PROGRESS, params={"tracking_no": "SB26-AAAA-AAAA-AAA", "check": "301X"}
    )
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()
    bad = await live.http.get(PROGRESS, params={"tracking_no": tracking_no, "check": "12"})
    assert bad.status_code == 422
    assert (await live.http.get(PROGRESS)).status_code == 422


async def test_guessing_one_number_is_rate_limited(live: LiveServer) -> None:
    chen = await person_token(live)
    tracking_no = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["tracking_no"]
    codes = []
    for n in range(12):
        r = await live.http.get(PROGRESS, params={"tracking_no": tracking_no, "check": f"{n:04d}"})
        codes.append(r.status_code)
    assert codes[:10] == [404] * 10
    assert codes[10:] == [429, 429]
    assert int(r.headers["Retry-After"]) > 0
    # Even the right check waits now: the limit is on the number, not on wrong answers.
    r = await live.http.get(PROGRESS, params={"tracking_no": tracking_no, "check": SHOP[-4:]})
    assert r.status_code == 429


async def test_one_address_is_limited_across_numbers(settings: Settings, redis_client: Any) -> None:
    # redis_client: a flushed Redis, so no earlier test's lookups count against this address.
    async with serve_app(dataclasses.replace(settings, progress_ip_limit=3)) as live:
        codes = [
            (
                await live.http.get(
                    PROGRESS, params={"tracking_no": f"SB26-AAAA-AAA{c}-AAA", "check": "0000"}
                )
            ).status_code
            for c in "ACDEF"
        ]
    assert codes == [404, 404, 404, 429, 429]


async def test_a_lost_cache_entry_is_loaded_again(live: LiveServer) -> None:
    chen = await person_token(live)
    tracking_no = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["tracking_no"]
    await live.app.ctx.redis.delete(f"suban:progress:{tracking_no}")
    r = await live.http.get(PROGRESS, params={"tracking_no": tracking_no, "check": SHOP[-4:]})
    assert r.status_code == 200
    assert r.json()["status"] == "submitted"
    assert await live.app.ctx.redis.exists(f"suban:progress:{tracking_no}")


async def test_a_fresh_filing_is_cached_as_the_database_would_answer(live: LiveServer) -> None:
    chen = await person_token(live)
    tracking_no = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["tracking_no"]
    # Written at filing from the rows in hand: the same entry as one read back from the database.
    cached = json.loads(await live.app.ctx.redis.get(progress.cache_key(tracking_no)))
    submission = await Submission.get(tracking_no=tracking_no)
    assert cached == await progress.public_entry(submission)
    assert [e["action"] for e in cached["view"]["timeline"]] == ["submit"]
    r = await live.http.get(PROGRESS, params={"tracking_no": tracking_no, "check": CHEN[1][-4:]})
    assert r.status_code == 200
    assert r.json() == cached["view"]
