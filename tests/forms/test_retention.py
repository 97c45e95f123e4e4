"""Retention of what filing keeps (forms/retention.py): attachments of submissions that ended
longer ago than the period go (row, file unless its bytes are still used, a timeline note), the
submissions stay, stale drafts go, and two purges at once do each thing once between them.

A private database of the backend under test, emptied before each test, so counts are exact.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from tortoise import Tortoise

from auth import clock
from auth.models import Person
from auth.pii import Keyring
from forms import retention as ret
from forms.attachments import AttachmentStore
from forms.drafts import save_draft
from forms.models import Attachment, Draft, Submission, SubmissionEvent
from forms.submissions import seal_data
from miniapp_api.database import tortoise_config
from tests.auth.test_rotation import private_database
from tests.conftest import TEST_PII_KEY

_seq = itertools.count(1)
DAYS = 365


@pytest.fixture(scope="module")
def forms_retention_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_database(tmp_path_factory.mktemp("forms-retention")) as url:
        yield url


@pytest.fixture
async def orm(forms_retention_db: str) -> AsyncIterator[Person]:
    await Tortoise.init(config=tortoise_config(forms_retention_db), _enable_global_fallback=True)
    for model in (SubmissionEvent, Attachment, Submission, Draft, Person):
        await model.all().delete()
    try:
        yield await Person.create(name_sealed="sealed")
    finally:
        await Tortoise.close_connections()


@pytest.fixture
def store(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "attachments")


def ago(days: float) -> datetime:
    return clock.now() - timedelta(days=days)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pdf(text: str) -> bytes:
    return b"%PDF-1.4\n% " + text.encode() + b"\nstartxref\n0\n%%EOF\n"


async def submission(applicant: Person, status: str, *, ended: float) -> Submission:
    n = next(_seq)
    row = await Submission.create(
        tracking_no=f"RT{n:010d}",
        form_code="proxy_invoice",
        form_version=1,
        applicant_id=applicant.id,
        status=status,
        version=3,
        data_sealed="sealed",
        idempotency_key=f"k{n}",
        body_hash="h",
        check_applicant="c",
    )
    await Submission.filter(id=row.id).update(updated_at=ago(ended))
    return row


async def attach(store: AttachmentStore, submission: Submission, data: bytes) -> int:
    sha = await store.put(data)
    row = await Attachment.create(
        submission_id=submission.id,
        sha256=sha,
        name_sealed="sealed",
        size=len(data),
        content_type="application/pdf",
        uploaded_by_kind="mp",
    )
    return row.id


async def test_attachments_of_long_ended_submissions_go_and_shared_bytes_survive(
    orm: Person, store: AttachmentStore
) -> None:
    shared, only_old, rejected_bytes, open_bytes = (
        pdf(t) for t in ("共享", "旧", "驳回", "审核中")
    )
    completed = await submission(orm, "completed", ended=400)
    rejected = await submission(orm, "rejected", ended=370)
    withdrawn_recently = await submission(orm, "withdrawn", ended=100)
    in_review = await submission(orm, "in_review", ended=400)  # not ended, however old
    await attach(store, completed, shared)
    await attach(store, completed, only_old)
    await attach(store, rejected, rejected_bytes)
    kept = {
        await attach(store, withdrawn_recently, shared),
        await attach(store, in_review, open_bytes),
    }

    counts = await ret.purge_expired(store, clock.now(), attachment_days=DAYS, draft_days=90)

    assert counts["attachments"] == 3
    assert counts["attachment_files"] == 2
    assert counts["attachment_submissions"] == 2
    assert set(await Attachment.all().values_list("id", flat=True)) == kept
    assert store.exists(digest(shared))  # still used by the recent submission
    assert store.exists(digest(open_bytes))
    assert not store.exists(digest(only_old))
    assert not store.exists(digest(rejected_bytes))
    # The submissions themselves are tax records and stay, with a note on their timeline.
    assert await Submission.filter(id__in=[completed.id, rejected.id]).count() == 2
    notes = await SubmissionEvent.filter(action=ret.PURGE_ACTION).order_by("submission_id")
    assert [(e.submission_id, e.status, e.actor_kind) for e in notes] == [  # type: ignore[attr-defined]
        (completed.id, "completed", "system"),
        (rejected.id, "rejected", "system"),
    ]
    assert notes[0].note is not None
    assert "2" in notes[0].note


async def test_a_file_already_removed_by_another_worker_is_fine(
    orm: Person, store: AttachmentStore
) -> None:
    data = pdf("已删")
    old = await submission(orm, "completed", ended=400)
    await attach(store, old, data)
    store.path_of(digest(data)).unlink()
    counts = await ret.purge_expired(store, clock.now(), attachment_days=DAYS, draft_days=90)
    assert counts["attachments"] == 1
    assert counts["attachment_files"] == 0


async def test_stale_drafts_go_and_recent_ones_stay(orm: Person, store: AttachmentStore) -> None:
    stale = await Draft.create(person=orm, form_code="f", form_version=1, data_sealed="s")
    fresh = await Draft.create(person=orm, form_code="f", form_version=1, data_sealed="s")
    await Draft.filter(id=stale.id).update(updated_at=ago(91))
    await Draft.filter(id=fresh.id).update(updated_at=ago(89))
    counts = await ret.purge_expired(store, clock.now(), attachment_days=DAYS, draft_days=90)
    assert counts["drafts"] == 1
    assert list(await Draft.all().values_list("id", flat=True)) == [fresh.id]


async def test_two_purges_at_once_do_each_thing_once(orm: Person, store: AttachmentStore) -> None:
    ended = [await submission(orm, "completed", ended=400) for _ in range(7)]
    for i, row in enumerate(ended):
        await attach(store, row, pdf(f"a{i}"))
        await attach(store, row, pdf(f"b{i}"))
    for _ in range(9):
        draft = await Draft.create(person=orm, form_code="f", form_version=1, data_sealed="s")
        await Draft.filter(id=draft.id).update(updated_at=ago(200))

    async def run() -> dict[str, int]:
        return await ret.purge_expired(
            store, clock.now(), attachment_days=DAYS, draft_days=90, batch=3
        )

    first, second = await asyncio.gather(run(), run())
    total = {k: first[k] + second[k] for k in first}
    assert total == {
        "attachments": 14,
        "attachment_files": 14,
        "attachment_submissions": 7,
        "drafts": 9,
    }
    assert await Attachment.all().count() == 0
    assert await SubmissionEvent.filter(action=ret.PURGE_ACTION).count() == 7


async def test_a_draft_saved_again_counts_its_age_from_the_last_save(
    orm: Person, store: AttachmentStore
) -> None:
    keyring = Keyring.build("aes-256-gcm", [(TEST_PII_KEY.version, TEST_PII_KEY.key)])
    started = await Draft.create(
        person=orm,
        form_code="proxy_invoice",
        form_version=1,
        data_sealed=seal_data(keyring, "form_draft", 0, {}),
    )
    await Draft.filter(id=started.id).update(
        data_sealed=seal_data(keyring, "form_draft", started.id, {}), updated_at=ago(200)
    )
    await save_draft(
        orm, started.id, {"remark": "still working"}, expected_version=1, keyring=keyring
    )
    counts = await ret.purge_expired(store, clock.now(), attachment_days=DAYS, draft_days=90)
    assert counts["drafts"] == 0
    assert await Draft.exists(id=started.id)
