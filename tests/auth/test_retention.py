"""Retention of what identity keeps (auth/retention.py): sent outbox messages and unfinished
verifications go after their period, nothing else does, and two purges at once remove each row
once between them.

Counts are asserted exactly, so these tests get a private database of the backend under test and
empty the tables they use before each test.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import pytest
from fakeredis import FakeAsyncRedis
from tortoise import Tortoise

from auth import bind_codes, clock
from auth import retention as ret
from auth.models import Grant, OutboxMessage, Person, Taxpayer, WeChatAccount
from auth.ratelimit import RateLimiter
from forms.models import Attachment, Draft, Submission, SubmissionEvent
from miniapp_api.database import tortoise_config
from tests.auth.test_rotation import private_database

_seq = itertools.count(1)
DAYS = 30


@pytest.fixture(scope="module")
def retention_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_database(tmp_path_factory.mktemp("retention")) as url:
        yield url


@pytest.fixture
async def orm(retention_db: str) -> AsyncIterator[str]:
    await Tortoise.init(config=tortoise_config(retention_db), _enable_global_fallback=True)
    for model in (
        SubmissionEvent,
        Attachment,
        Submission,
        Draft,
        Grant,
        Taxpayer,
        WeChatAccount,
        Person,
        OutboxMessage,
    ):
        await model.all().delete()
    try:
        yield retention_db
    finally:
        await Tortoise.close_connections()


def ago(days: float) -> datetime:
    return clock.now() - timedelta(days=days)


async def message(status: str, *, created: float, delivered: float | None = None) -> int:
    n = next(_seq)
    row = await OutboxMessage.create(
        channel="subscribe",
        recipient=f"o-ret-{n}",
        template="t",
        payload={"data": {"thing1": "陈明"}},
        dedupe_key=f"ret:{n}",
        status=status,
        next_attempt_at=ago(created),
        delivered_at=None if delivered is None else ago(delivered),
    )
    # created_at is set on insert; an UPDATE moves it into the past.
    await OutboxMessage.filter(id=row.id).update(created_at=ago(created))
    return row.id


async def account(
    *, created: float, login: float | None, phone: bool = True, person: Person | None = None
) -> int:
    row = await WeChatAccount.create(
        openid=f"o-ret-acc-{next(_seq)}", phone_sealed="sealed-phone" if phone else None
    )
    await WeChatAccount.filter(id=row.id).update(
        created_at=ago(created),
        last_login_at=None if login is None else ago(login),
        person_id=person.id if person else None,
    )
    return row.id


async def person(*, created: float, verification: str = "face", verified: bool = True) -> Person:
    row = await Person.create(
        name_sealed="sealed-name",
        id_number_sealed="sealed-id",
        id_number_index=f"index-{next(_seq)}",
        phone_sealed="sealed-phone",
        phone_index="phone-index",
        verification=verification,
        verified_at=ago(created) if verified else None,
    )
    await Person.filter(id=row.id).update(created_at=ago(created))
    return row


async def test_outbox_purge_removes_only_sent_and_failed_messages_past_the_period(
    orm: str,
) -> None:
    old_sent = await message("delivered", created=45, delivered=40)
    old_failed = await message("failed", created=40)
    kept = {
        await message("delivered", created=45, delivered=20),  # sent within the period
        await message("failed", created=10),
        await message("pending", created=60),  # still work to do, however old
    }
    counts = await ret.purge_expired(clock.now(), outbox_days=DAYS, verification_days=DAYS)
    assert counts["outbox_messages"] == 2
    left = set(await OutboxMessage.all().values_list("id", flat=True))
    assert left == kept
    assert not {old_sent, old_failed} & left


async def test_a_pending_phone_goes_only_from_idle_unverified_accounts(orm: str) -> None:
    verified = await person(created=100)
    idle = await account(created=60, login=40)
    never_logged_in = await account(created=60, login=None)
    recent = await account(created=60, login=5)
    young = await account(created=5, login=None)
    of_a_person = await account(created=60, login=40, person=verified)
    counts = await ret.purge_expired(clock.now(), outbox_days=DAYS, verification_days=DAYS)
    assert counts["pending_phones"] == 2
    phones = dict(await WeChatAccount.all().values_list("id", "phone_sealed"))
    assert phones[idle] is None
    assert phones[never_logged_in] is None
    assert phones[recent] == phones[young] == phones[of_a_person] == "sealed-phone"


async def test_a_lapsed_counter_claim_is_deleted_and_its_account_is_unverified_again(
    orm: str,
) -> None:
    lapsed = await person(created=40, verification="counter_required", verified=False)
    bound = await account(created=40, login=1, phone=False, person=lapsed)
    waiting = await person(created=5, verification="counter_required", verified=False)
    verified_later = await person(created=40, verification="counter_required", verified=True)
    face = await person(created=400)
    counts = await ret.purge_expired(clock.now(), outbox_days=DAYS, verification_days=DAYS)
    assert counts["lapsed_claims"] == 1
    left = set(await Person.all().values_list("id", flat=True))
    assert left == {waiting.id, verified_later.id, face.id}
    assert (await WeChatAccount.get(id=bound)).person_id is None  # type: ignore[attr-defined]


async def test_a_lapsed_claim_that_a_filing_points_at_is_kept(orm: str) -> None:
    lapsed = await person(created=40, verification="counter_required", verified=False)
    await Submission.create(
        tracking_no=f"RET{next(_seq):08d}",
        form_code="proxy_invoice",
        form_version=1,
        applicant_id=lapsed.id,
        status="completed",
        data_sealed="x",
        idempotency_key="k",
        body_hash="h",
        check_applicant="c",
    )
    counts = await ret.purge_expired(clock.now(), outbox_days=DAYS, verification_days=DAYS)
    assert counts["lapsed_claims"] == 0
    assert await Person.exists(id=lapsed.id)


async def test_two_purges_at_once_remove_each_row_once_between_them(orm: str) -> None:
    due = [await message("delivered", created=50, delivered=45) for _ in range(23)]
    phones = [await account(created=60, login=None) for _ in range(11)]
    kept = await message("delivered", created=5, delivered=1)

    async def run() -> dict[str, int]:
        return await ret.purge_expired(
            clock.now(), outbox_days=DAYS, verification_days=DAYS, batch=4
        )

    first, second = await asyncio.gather(run(), run())
    assert first["outbox_messages"] + second["outbox_messages"] == len(due)
    assert first["pending_phones"] + second["pending_phones"] == len(phones)
    assert list(await OutboxMessage.all().values_list("id", flat=True)) == [kept]


async def test_erasing_identity_keeps_the_sealed_identity_only_for_tax_records(orm: str) -> None:
    keep = await person(created=100)
    gone = await person(created=100)
    await ret.erase_identity(keep, keep_identity=True)
    await ret.erase_identity(gone, keep_identity=False)
    kept = await Person.get(id=keep.id)
    assert (kept.name_sealed, kept.id_number_sealed) == ("sealed-name", "sealed-id")
    assert kept.id_number_index is kept.phone_sealed is kept.phone_index is None
    cleared = await Person.get(id=gone.id)
    assert cleared.name_sealed is cleared.id_number_sealed is cleared.id_type is None
    assert cleared.id_number_index is cleared.phone_sealed is cleared.phone_index is None
    assert cleared.verified_at is None


async def test_only_pending_grants_to_or_from_the_person_are_dropped(orm: str) -> None:
    them = await person(created=100)
    taxpayer = await Taxpayer.create(taxpayer_id=f"9144RET{next(_seq):011d}", name="示例", kind="x")

    async def grant(status: str, index: str, by: tuple[str, int]) -> int:
        row = await Grant.create(
            taxpayer=taxpayer,
            role="tax_clerk",
            grantee_id_index=index,
            grantee_name_sealed="sealed",
            status=status,
            granted_by_kind=by[0],
            granted_by_id=by[1],
            valid_from=ago(1),
            expires_at=ago(-30),
        )
        return row.id

    index = them.id_number_index or ""
    await grant("pending", index, ("staff", 1))
    await grant("pending", "someone-else", ("mp", 77))
    kept = {
        await grant("active", index, ("staff", 1)),
        await grant("pending", "someone-else", ("mp", 78)),
    }
    dropped = await ret.drop_pending_grants(them, granted_by=[("mp", 77)])
    assert dropped == {"to_them": 1, "from_them": 1}
    assert set(await Grant.all().values_list("id", flat=True)) == kept


async def test_a_live_bind_code_is_forgotten() -> None:
    redis = FakeAsyncRedis()
    try:
        issued = await bind_codes.issue_bind_code(redis, RateLimiter(redis), 4242)
        assert await ret.drop_bind_code(redis, 4242) == 1
        assert await ret.drop_bind_code(redis, 4242) == 0
        redeemed = await bind_codes.redeem_bind_code(redis, RateLimiter(redis), issued.code, "w")
        assert redeemed is None
    finally:
        await redis.aclose()
