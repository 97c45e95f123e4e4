"""Granting roles on a taxpayer (办税授权): created by a legal representative or finance head (or by
staff at the taxpayer's request), confirmed by the grantee after their own real-name verification,
revocable by either grantor side, and over by itself at ``expires_at``.

The grantee is named by name and ID number. Until they confirm, the grant holds the number only as
a blind index and the name sealed, so a pending grant reveals neither.

State changes are conditional UPDATEs on the current status, so two workers confirming and revoking
the same grant at once cannot both win.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from auth import audit
from auth.clock import local
from auth.documents import InvalidDocument, check_document
from auth.models import Grant, Person, Taxpayer
from auth.pii import Keyring, SealBroken
from auth.roles import role_book
from auth.taxpayers import ID_NUMBER_INDEX

MAX_GRANT_LENGTH = timedelta(days=5 * 366)
OPEN_STATUSES = ("pending", "active")


class GrantRefused(Exception):
    code = "GRANT_REFUSED"
    message = "授权操作未能完成"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class InvalidGrant(GrantRefused):
    code = "VALIDATION_FAILED"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class DuplicateGrant(GrantRefused):
    code = "DUPLICATE_GRANT"
    message = "该人员已有同一角色的有效或待确认授权"


class GrantNotFound(GrantRefused):
    code = "NOT_FOUND"
    message = "找不到该授权"


class GrantStateConflict(GrantRefused):
    code = "GRANT_STATE_CONFLICT"
    message = "该授权当前状态不允许此操作"


def status_of(grant: Grant, now: datetime) -> str:
    """The status as people mean it: an open grant past its end is ``expired``."""
    if grant.status in OPEN_STATUSES and grant.expires_at <= now:
        return "expired"
    return grant.status


def grantee_name(grant: Grant, keyring: Keyring) -> str:
    return keyring.open(
        grant.grantee_name_sealed, table="taxpayer_grant", column="grantee_name", row_id=grant.id
    )


async def create_grant(
    taxpayer: Taxpayer,
    *,
    name: str,
    id_type: str,
    id_number: str,
    role: str,
    expires_at: datetime,
    by: audit.Actor,
    keyring: Keyring,
    now: datetime,
    valid_from: datetime | None = None,
) -> Grant:
    now = local(now)
    book = role_book()
    if role not in book.roles:
        raise InvalidGrant("role", "未知的角色")
    if not book.role(role).grantable:
        raise InvalidGrant("role", f"{book.role(role).label}以登记信息为准，不能通过授权取得")
    valid_from = valid_from or now
    if expires_at <= now or expires_at <= valid_from:
        raise InvalidGrant("expires_at", "授权到期时间应晚于当前时间和生效时间")
    if expires_at - valid_from > MAX_GRANT_LENGTH:
        raise InvalidGrant("expires_at", "授权期限不能超过五年")
    try:
        number = check_document(id_type, id_number)
    except InvalidDocument as exc:
        raise InvalidGrant("id_number", str(exc)) from exc
    index = keyring.blind_index(number, purpose=ID_NUMBER_INDEX)

    async with in_transaction():
        clash = await Grant.filter(
            taxpayer_id=taxpayer.id,
            role=role,
            grantee_id_index=index,
            status__in=OPEN_STATUSES,
            expires_at__gt=now,
        ).exists()
        if clash:
            raise DuplicateGrant
        grant = await Grant.create(
            taxpayer=taxpayer,
            role=role,
            grantee_id_index=index,
            grantee_name_sealed="",
            granted_by_kind=by.kind,
            granted_by_id=int(by.id or 0),
            valid_from=valid_from,
            expires_at=expires_at,
        )
        # Sealed once the row has its id, which the ciphertext is bound to.
        grant.grantee_name_sealed = keyring.seal(
            name.strip(), table="taxpayer_grant", column="grantee_name", row_id=grant.id
        )
        await grant.save(update_fields=["grantee_name_sealed"])
    await audit.record(
        "grant.create",
        by,
        target=f"taxpayer:{taxpayer.taxpayer_id}:grant:{grant.id}",
        details={"role": role},
    )
    return grant


async def _grant_for_grantee(grant_id: int, person: Person, keyring: Keyring) -> Grant:
    """The grant if it names ``person`` (number and name); otherwise it is none of theirs."""
    if person.verified_at is None or person.id_number_index is None:
        raise GrantNotFound
    grant = await Grant.get_or_none(
        id=grant_id, grantee_id_index=person.id_number_index
    ).prefetch_related("taxpayer")
    if grant is None or person.name_sealed is None:
        raise GrantNotFound
    try:
        person_name = keyring.open(
            person.name_sealed, table="person", column="name", row_id=person.id
        )
        named = grantee_name(grant, keyring)
    except SealBroken as exc:
        raise GrantNotFound from exc
    if named != person_name:
        raise GrantNotFound
    return grant


async def _move(grant: Grant, to: str, now: datetime, **changes: object) -> Grant:
    if status_of(grant, now) not in OPEN_STATUSES:
        raise GrantStateConflict
    allowed_from = ["pending"] if to in ("active", "declined") else list(OPEN_STATUSES)
    if grant.status not in allowed_from:
        raise GrantStateConflict
    updated = await Grant.filter(id=grant.id, status=grant.status).update(status=to, **changes)
    if updated != 1:
        raise GrantStateConflict
    await grant.refresh_from_db()
    return grant


async def confirm_grant(
    grant_id: int, person: Person, *, by: audit.Actor, keyring: Keyring, now: datetime
) -> Grant:
    grant = await _grant_for_grantee(grant_id, person, keyring)
    grant = await _move(grant, "active", now, grantee_id=person.id, confirmed_at=now)
    await audit.record(
        "grant.confirm",
        by,
        target=f"taxpayer:{grant.taxpayer.taxpayer_id}:grant:{grant.id}",
        details={"role": grant.role},
    )
    return grant


async def decline_grant(
    grant_id: int, person: Person, *, by: audit.Actor, keyring: Keyring, now: datetime
) -> Grant:
    grant = await _grant_for_grantee(grant_id, person, keyring)
    grant = await _move(grant, "declined", now)
    await audit.record(
        "grant.decline",
        by,
        target=f"taxpayer:{grant.taxpayer.taxpayer_id}:grant:{grant.id}",
        details={"role": grant.role},
    )
    return grant


async def revoke_grant(
    taxpayer: Taxpayer, grant_id: int, *, by: audit.Actor, now: datetime
) -> Grant:
    grant = await Grant.get_or_none(id=grant_id, taxpayer_id=taxpayer.id)
    if grant is None:
        raise GrantNotFound
    grant = await _move(
        grant, "revoked", now, revoked_at=now, revoked_by_kind=by.kind, revoked_by_id=by.id
    )
    await audit.record(
        "grant.revoke",
        by,
        target=f"taxpayer:{taxpayer.taxpayer_id}:grant:{grant.id}",
        details={"role": grant.role},
    )
    return grant


async def grants_of_taxpayer(taxpayer: Taxpayer) -> list[Grant]:
    return await Grant.filter(taxpayer_id=taxpayer.id).order_by("-id").limit(500)


async def grants_naming(person: Person, keyring: Keyring) -> list[Grant]:
    """Grants that name this (verified) person by number and name, in any state, newest first."""
    if person.verified_at is None or person.id_number_index is None or not person.name_sealed:
        return []
    rows = (
        await Grant.filter(grantee_id_index=person.id_number_index)
        .prefetch_related("taxpayer")
        .order_by("-id")
        .limit(200)
    )
    name = keyring.open(person.name_sealed, table="person", column="name", row_id=person.id)
    return [g for g in rows if grantee_name(g, keyring) == name]
