"""WeCom app messages about submissions: the taxpayer's bound members get a text card on each
status change, reviewers with a WeCom account one when a submission enters the queue; written
with the change and delivered through the outbox."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from auth.models import OutboxMessage, StaffUser
from miniapp_api.jobs import deliver_outbox
from miniapp_api.settings import SIMULATOR_PREFIX
from tests.conftest import BACKEND, LiveServer
from tests.miniapp_api.filing_helpers import (
    SHOP,
    filed,
    person_token,
    reviewer_token,
    staff_act,
)
from tests.miniapp_api.test_mp_realname import CHEN
from tests.wecom.test_internal_approval import bind_member, person_id_of
from wecom.models import WeComMember


async def test_members_and_reviewers_get_cards_with_the_change(live: LiveServer) -> None:
    chen = await person_token(live, CHEN)
    member = await bind_member(await person_id_of(live, chen))
    reviewer_userid = f"staff-{uuid.uuid4().hex[:8]}"
    await StaffUser.filter(username="reviewer").update(wecom_userid=reviewer_userid)
    try:
        created = await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP)
        sid = created["id"]
        staff = await reviewer_token(live)
        assert (await staff_act(live, staff, sid, "claim", version=1)).status_code == 200
        cards = await OutboxMessage.filter(
            channel="wecom", dedupe_key__startswith=f"submission:{sid}:"
        ).order_by("id")
        assert [(c.recipient, c.dedupe_key.split(":")[3]) for c in cards] == [
            (member, "member"),
            (reviewer_userid, "queue"),
            (member, "member"),
        ]
        first = cards[0].payload
        assert cards[0].template == "textcard"
        assert created["tracking_no"] in str(first["description"])
        assert "已提交" in str(first["description"])
        assert str(first["url"]).endswith(f"/h5/#/submissions/{sid}")
        # No names, ID numbers or amounts on a card.
        for card in cards:
            assert "陈明" not in str(card.payload)
            assert "5050" not in str(card.payload)

        if BACKEND == "embedded":
            # Delivered by the job through the WeCom client to the mounted simulator. The
            # routes' own nudges run the same job in-process, so a message may be in flight in
            # one of those runs: wait for both rather than read once.
            ctx = {
                "settings": live.app.ctx.settings,
                "redis": live.app.ctx.redis,
                "wechat": live.app.ctx.wechat,
            }
            to_member: list[dict[str, Any]] = []
            for _ in range(50):
                await deliver_outbox(ctx)
                sent = (
                    await live.http.get(
                        f"{SIMULATOR_PREFIX}/control/messages", params={"channel": "wecom"}
                    )
                ).json()["messages"]
                to_member = [m for m in sent if m["body"].get("touser") == member]
                if len(to_member) >= 2:
                    break
                await asyncio.sleep(0.1)
            assert len(to_member) == 2
            assert to_member[0]["body"]["msgtype"] == "textcard"
    finally:
        await StaffUser.filter(username="reviewer").update(wecom_userid=None)
        await WeComMember.filter(userid=member).delete()
