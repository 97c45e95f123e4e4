"""How long filing keeps what it holds (PIPL art. 19), and the filing half of a person's deletion.

Submissions and their timeline are never purged: they are tax records. 税收征收管理法实施细则
第二十九条 requires 账簿、记账凭证、完税凭证及其他有关资料 to be kept for ten years, and a filed
涉税文书 with the office's decision is such 有关资料 (the office's own archive rules keep them at
least as long). What is purged:

* attachments of submissions that ended (completed, rejected, withdrawn) longer ago than the
  attachment period: the row, then the file unless another attachment still uses the same bytes
  (the store is content-addressed, see forms/attachments.py), and a timeline note saying so;
* drafts not touched for the draft period: a form begun and abandoned is nobody's record.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from auth import audit, clock
from auth.retention import in_batches
from forms.attachments import AttachmentStore
from forms.models import Attachment, Draft, Submission, SubmissionEvent

BATCH = 300
# Statuses after which nothing more happens to a submission, so ``updated_at`` is when it ended
# (only lifecycle.transition writes it, and no transition leaves these).
ENDED = ("completed", "rejected", "withdrawn")
PURGE_ACTION = "attachments_purged"


@dataclass(frozen=True)
class AttachmentPurge:
    rows: int = 0
    files: int = 0
    submissions: int = 0


async def purge_expired(
    store: AttachmentStore,
    now: datetime,
    *,
    attachment_days: int,
    draft_days: int,
    batch: int = BATCH,
) -> dict[str, int]:
    """Purge what filing keeps past its period; returns how many of each kind went."""
    now = clock.local(now)
    purged = await purge_attachments(
        store, now - timedelta(days=attachment_days), now=now, batch=batch
    )
    return {
        "attachments": purged.rows,
        "attachment_files": purged.files,
        "attachment_submissions": purged.submissions,
        "drafts": await purge_drafts(now - timedelta(days=draft_days), batch=batch),
    }


async def purge_attachments(
    store: AttachmentStore, before: datetime, *, now: datetime, batch: int = BATCH
) -> AttachmentPurge:
    """Attachments of submissions that ended before ``before``. Walked by attachment id; each
    submission met is purged whole, so it gets one timeline note however its rows fall into
    pages."""
    after = 0
    rows = files = submissions = 0
    while True:
        page = (
            await Attachment.filter(
                id__gt=after, submission__status__in=ENDED, submission__updated_at__lt=before
            )
            .order_by("id")
            .limit(batch)
            .values_list("id", "submission_id")
        )
        if not page:
            break
        gone: set[str] = set()
        for submission_id in dict.fromkeys(int(s) for _, s in page):
            deleted, digests = await _drop_rows(submission_id, before, now)
            if deleted:
                rows += deleted
                submissions += 1
                gone.update(digests)
        for sha256 in sorted(gone):
            files += await _drop_file_unless_used(store, sha256)
        if len(page) < batch:
            break
        after = int(page[-1][0])
    return AttachmentPurge(rows, files, submissions)


async def _drop_rows(submission_id: int, before: datetime, now: datetime) -> tuple[int, list[str]]:
    """Delete the submission's attachments and note it on its timeline, in one transaction;
    returns how many rows this call deleted and their digests. A second worker on the same
    submission finds the rows gone (on PostgreSQL it waits for the first one's commit), counts
    nothing and writes no second note. An ended submission never changes again, so checking
    it first needs no lock."""
    submission = await Submission.get_or_none(
        id=submission_id, status__in=ENDED, updated_at__lt=before
    )
    if submission is None:
        return 0, []
    async with in_transaction():
        digests: list[Any] = await Attachment.filter(submission_id=submission_id).values_list(
            "sha256", flat=True
        )
        deleted: int = await Attachment.filter(submission_id=submission_id).delete()
        if deleted:
            await SubmissionEvent.create(
                submission_id=submission.id,
                action=PURGE_ACTION,
                from_status=submission.status,
                status=submission.status,
                version=submission.version,
                at=now,
                actor_kind=audit.SYSTEM.kind,
                actor_id=None,
                note=f"附件已超过保存期限，已删除 {deleted} 个（文书及其办理记录继续保存）",
            )
    return deleted, [str(d) for d in digests]


async def _drop_file_unless_used(store: AttachmentStore, sha256: str) -> int:
    """Delete the stored bytes when no attachment row names them any more; 1 if this call
    removed the file. Another worker having removed it already is fine.

    Left open: an upload of the very same bytes that has written (found) the file but not yet
    inserted its row in the instant between this check and the unlink. Its download would then
    answer "temporarily unavailable"; closing that needs the upload and the purge to share a
    lock per digest."""
    if await Attachment.filter(sha256=sha256).exists():
        return 0
    return 1 if await asyncio.to_thread(_unlink, store.path_of(sha256)) else 0


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


async def purge_drafts(before: datetime, *, batch: int = BATCH) -> int:
    """Delete drafts last saved before ``before``, in keyset batches; a draft saved meanwhile
    fails the repeated condition and stays."""
    return await in_batches(
        lambda after: Draft.filter(id__gt=after, updated_at__lt=before),
        lambda ids: Draft.filter(id__in=ids, updated_at__lt=before).delete(),
        batch,
    )


async def drop_drafts_of(person_id: int) -> int:
    """Delete every draft of the person (a deletion request)."""
    return int(await Draft.filter(person_id=person_id).delete())
