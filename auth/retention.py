"""Keeping personal data no longer than needed (PIPL art. 19) and erasing a person on request
(art. 47): the parts that belong to identity.

Two kinds of work live here:

* :func:`purge_expired`, run hourly by the job of the same name: sent outbox messages (their
  payloads can name people) and verification artefacts past their retention period.
* The identity half of a deletion request (:func:`erase_identity`, :func:`unlink_accounts`, …):
  the service's own module (miniapp_api/privacy.py) adds what filing, the hall and WeCom hold.

Every delete and update names the condition that made the row due again (``status``,
``delivered_at < cutoff``, ``person_id IS NULL``), so two workers purging at once each remove a
row at most once, and each counts only the rows its own statement removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from auth import bind_codes, clock
from auth.models import Grant, OutboxMessage, Person, WeChatAccount
from auth.sessions import SessionStore

# Rows per statement: small enough that one batch holds its locks only briefly and never builds
# an IN list PostgreSQL or SQLite would refuse, large enough to keep up with a busy day.
BATCH = 300

# What a realname verification leaves besides the person's sealed identity, and how each ends:
# * the face-verification result is never stored (only an audit event saying "face", ok/denied);
# * attempt counters live in Redis and expire by themselves after REALNAME_LIMIT's window;
# * a phone given before verification waits sealed on the WeChat account (auth/phone.py): it is
#   purged here when the account was not verified within the period;
# * a claim with a document WeChat cannot verify creates a person marked ``counter_required``
#   (auth/realname.py) who must show the document at a hall counter: never verified within the
#   period, the claim lapses and its person row (sealed name and number) is deleted.


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these are past their retention period."""

    outbox: datetime
    verification: datetime

    @classmethod
    def at(cls, now: datetime, *, outbox_days: int, verification_days: int) -> Cutoffs:
        now = clock.local(now)
        return cls(now - timedelta(days=outbox_days), now - timedelta(days=verification_days))


async def purge_expired(
    now: datetime, *, outbox_days: int, verification_days: int, batch: int = BATCH
) -> dict[str, int]:
    """Purge what identity keeps past its period; returns how many rows of each kind went."""
    cut = Cutoffs.at(now, outbox_days=outbox_days, verification_days=verification_days)
    return {
        "outbox_messages": await purge_outbox(cut.outbox, batch=batch),
        "pending_phones": await purge_pending_phones(cut.verification, batch=batch),
        "lapsed_claims": await purge_lapsed_claims(cut.verification, batch=batch),
    }


def _outbox_done(before: datetime) -> Q:
    # Delivered ones by when they went out; given-up ones by when they were written. Pending ones
    # are never purged: they are work still to do. Dropping a row frees its dedupe key, which
    # only matters if the same announcement were written again months later (keys name a
    # submission version or an appointment, which have moved on by then).
    return Q(status="delivered", delivered_at__lt=before) | Q(
        status="failed", created_at__lt=before
    )


async def purge_outbox(before: datetime, *, batch: int = BATCH) -> int:
    """Delete delivered and failed outbox messages older than ``before``, in keyset batches."""
    return await in_batches(
        lambda after: OutboxMessage.filter(_outbox_done(before), id__gt=after),
        lambda ids: OutboxMessage.filter(_outbox_done(before), id__in=ids).delete(),
        batch,
    )


def _unverified_idle(before: datetime) -> Q:
    # An account's last sign of life: its last login, or its creation if it never logged in.
    return Q(last_login_at__lt=before) | Q(last_login_at__isnull=True, created_at__lt=before)


async def purge_pending_phones(before: datetime, *, batch: int = BATCH) -> int:
    """Drop the pending phone of accounts never verified and idle since ``before``."""

    def due(after: int) -> Any:
        return WeChatAccount.filter(
            _unverified_idle(before),
            id__gt=after,
            person_id__isnull=True,
            phone_sealed__isnull=False,
        )

    return await in_batches(
        due, lambda ids: due(0).filter(id__in=ids).update(phone_sealed=None), batch
    )


async def purge_lapsed_claims(before: datetime, *, batch: int = BATCH) -> int:
    """Delete persons created by a counter-verification claim before ``before`` and never
    verified. Their accounts fall back to unverified (the foreign key is SET NULL)."""

    def due(after: int) -> Any:
        return Person.filter(
            id__gt=after,
            verification="counter_required",
            verified_at__isnull=True,
            created_at__lt=before,
        )

    async def delete(ids: list[int]) -> int:
        removed = 0
        for person_id in ids:
            try:
                # One transaction per row: on PostgreSQL a refused delete aborts its
                # transaction, and it must not take the rest of the batch with it.
                async with in_transaction():
                    # 0 or 1: the count may include the accounts the foreign key set to NULL.
                    if await due(0).filter(id=person_id).delete():
                        removed += 1
            except IntegrityError:
                # Something that must be kept (a filing) points at it: not ours to delete.
                continue
        return removed

    return await in_batches(due, delete, batch)


async def in_batches(query: Any, delete: Any, batch: int) -> int:
    """Keyset pagination over ``query(after_id)`` by id; ``delete(ids)`` returns rows affected.
    Walking by id, not re-reading the first page, guarantees progress when rows are skipped."""
    after = 0
    total = 0
    while True:
        rows: list[Any] = (
            await query(after).order_by("id").limit(batch).values_list("id", flat=True)
        )
        ids = [int(i) for i in rows]
        if not ids:
            return total
        total += int(await delete(ids))
        after = ids[-1]
        if len(ids) < batch:
            return total


# --- A person's deletion request -----------------------------------------------------------------


async def accounts_of(person_id: int) -> list[WeChatAccount]:
    return await WeChatAccount.filter(person_id=person_id).order_by("id")


async def end_sessions(
    sessions: SessionStore, *, account_ids: Sequence[int], member_id: int | None
) -> int:
    """End every mini-program session of these accounts and the WeCom member's."""
    ended = 0
    for account_id in account_ids:
        ended += await sessions.revoke_all("mp", account_id)
    if member_id is not None:
        ended += await sessions.revoke_all("wecom", member_id)
    return ended


async def drop_bind_code(redis: Any, person_id: int) -> int:
    """Forget the person's live WeCom bind code, if any; returns how many codes went."""
    person_key = f"{bind_codes.PREFIX}:person:{person_id}"
    code_key = await redis.get(person_key)
    if code_key is None:
        return 0
    code_key = code_key.decode() if isinstance(code_key, bytes) else str(code_key)
    # The code key first: once it is gone the code redeems nothing, whatever happens next.
    removed = int(await redis.delete(code_key))
    await redis.delete(person_key)
    return removed


async def drop_pending_grants(
    person: Person, *, granted_by: Sequence[tuple[str, int]]
) -> dict[str, int]:
    """Delete grants still waiting for confirmation: those naming the person (they hold the
    person's name, sealed) and those the person gave as one of ``granted_by`` (actor kind, id).
    Confirmed grants stay: they are the taxpayer's record of who could file for it."""
    to_them = 0
    if person.id_number_index is not None:
        to_them = await Grant.filter(
            grantee_id_index=person.id_number_index, status="pending"
        ).delete()
    from_them = 0
    for kind, actor_id in granted_by:
        from_them += await Grant.filter(
            granted_by_kind=kind, granted_by_id=actor_id, status="pending"
        ).delete()
    return {"to_them": to_them, "from_them": from_them}


async def drop_outbox_to(recipients: Sequence[str]) -> int:
    """Delete every message addressed to these openids or WeCom userids, sent or not: the
    payloads can carry names, and after the deletion there is nobody to deliver to."""
    if not recipients:
        return 0
    return int(await OutboxMessage.filter(recipient__in=list(recipients)).delete())


async def unlink_accounts(account_ids: Sequence[int]) -> int:
    """Delete the person's WeChat accounts (openid, unionid, any pending phone). The next login
    of the same WeChat user creates a fresh, unverified account (auth/login.py)."""
    if not account_ids:
        return 0
    return int(await WeChatAccount.filter(id__in=list(account_ids)).delete())


async def erase_identity(person: Person, *, keep_identity: bool) -> None:
    """Clear the person row. The phone and every blind index always go. With ``keep_identity``
    (tax records name the person) the sealed name, document type and number stay for storage
    only (PIPL art. 47 para. 2): without their blind index nothing can look the person up
    again, so a later verification of the same number makes a new person. Otherwise every
    personal column is set to NULL."""
    changes: dict[str, Any] = {
        "phone_sealed": None,
        "phone_index": None,
        "id_number_index": None,
        "updated_at": clock.now(),
    }
    if not keep_identity:
        changes |= {
            "name_sealed": None,
            "id_number_sealed": None,
            "id_type": None,
            "verified_at": None,
        }
    await Person.filter(id=person.id).update(**changes)
