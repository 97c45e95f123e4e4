"""Real-name verification (税收实名制): a WeChat account becomes a known person.

The person states name, document type and number; for a resident ID, WeChat's face verification
(wx.startFacialRecognitionVerify) says whose face it saw, as digests of name and ID number, which
must match what was stated. Success binds the account to the person with that ID number (created
on first verification; a person may have several accounts, an account one person).

Attempts are limited per account and per ID number, counted in Redis so the limit holds on every
worker: guessing whose ID number fits a stolen face result gets five tries, not thousands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from auth import audit, clock
from auth.documents import DOCUMENT_TYPES, InvalidDocument, check_document
from auth.models import Person, WeChatAccount
from auth.pii import Keyring
from auth.ratelimit import Limit, RateLimiter
from auth.taxpayers import ID_NUMBER_INDEX

REALNAME_LIMIT = Limit(limit=5, window=600)
_SHANGHAI = ZoneInfo("Asia/Shanghai")


class FaceResult(Protocol):
    identify_ret: int
    openid: str

    def matches(self, name: str, id_number: str) -> bool: ...


class FaceVerifier(Protocol):
    async def get_face_verify_result(self, verify_result: str) -> FaceResult: ...


@dataclass(frozen=True)
class Claim:
    name: str
    id_type: str
    id_number: str
    verify_result: str | None


class RealnameRefused(Exception):
    """Verification did not pass; ``code`` says why in the contract's words."""

    code = "REALNAME_REFUSED"
    message = "实名认证未通过"


class InvalidClaim(RealnameRefused):
    code = "VALIDATION_FAILED"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class TooManyAttempts(RealnameRefused):
    code = "TOO_MANY_ATTEMPTS"
    message = "认证尝试次数过多，请稍后再试"

    def __init__(self, retry_after: int) -> None:
        super().__init__(self.message)
        self.retry_after = retry_after


class FaceMismatch(RealnameRefused):
    code = "FACE_MISMATCH"
    message = "人脸核身结果与填写的姓名、证件号码不一致"


class AlreadyVerified(RealnameRefused):
    code = "ALREADY_VERIFIED"
    message = "该微信账号已实名认证为其他人，如有疑问请到办税服务厅办理"


@dataclass(frozen=True)
class Outcome:
    person: Person | None
    # The stated values, for the answer (masked there); the person row may be someone else's
    # when a counter-verified document's number was already taken (see verify_realname).
    name: str
    id_number: str
    counter_required: bool


def _seal_identity(
    person: Person, name: str, id_type: str, id_number: str, keyring: Keyring
) -> None:
    person.name_sealed = keyring.seal(name, table="person", column="name", row_id=person.id)
    person.id_number_sealed = keyring.seal(
        id_number, table="person", column="id_number", row_id=person.id
    )
    person.id_type = id_type


async def _person_for(
    index: str, name: str, id_type: str, id_number: str, keyring: Keyring
) -> Person:
    """The person with this ID number index, created (sealed under its own row id) if new."""
    existing = await Person.get_or_none(id_number_index=index)
    if existing is not None:
        return existing
    try:
        async with in_transaction():
            person = await Person.create(id_number_index=index)
            _seal_identity(person, name, id_type, id_number, keyring)
            await person.save()
            return person
    except IntegrityError:
        # Another account verified the same number at the same moment: use that person.
        return await Person.get(id_number_index=index)


async def _move_pending_phone(account: WeChatAccount, person: Person, keyring: Keyring) -> None:
    if account.phone_sealed is None:
        return
    phone = keyring.open(
        account.phone_sealed, table="wechat_account", column="phone", row_id=account.id
    )
    person.phone_sealed = keyring.seal(phone, table="person", column="phone", row_id=person.id)
    person.phone_index = keyring.blind_index(phone, purpose="phone")
    account.phone_sealed = None


async def verify_realname(
    account: WeChatAccount,
    claim: Claim,
    *,
    face: FaceVerifier,
    keyring: Keyring,
    limiter: RateLimiter,
    actor: audit.Actor,
    limit: Limit = REALNAME_LIMIT,
    now: datetime | None = None,
) -> Outcome:
    """Verify ``claim`` for ``account``; raises a :class:`RealnameRefused` saying why not.

    Errors of the face-verification call itself (an unknown ``verify_result``, WeChat down)
    propagate as the ``wechat`` package's types for the caller to map.
    """
    now = clock.local(now) if now else clock.now()
    doc = DOCUMENT_TYPES.get(claim.id_type)
    if doc is None:
        raise InvalidClaim("id_type", "不支持的证件类型")
    try:
        id_number = check_document(claim.id_type, claim.id_number, today=_local_date(now))
    except InvalidDocument as exc:
        raise InvalidClaim("id_number", str(exc)) from exc
    name = claim.name.strip()
    if doc.face_verifiable and not claim.verify_result:
        raise InvalidClaim("verify_result", "居民身份证需先完成人脸核身")

    index = keyring.blind_index(id_number, purpose=ID_NUMBER_INDEX)
    # Only well-formed numbers are counted: a typo caught above costs no attempt.
    verdict = await limiter.hit("realname", [f"account:{account.id}", f"id:{index}"], limit)
    if not verdict.allowed:
        await audit.record(
            "realname.verify",
            actor,
            target=f"account:{account.id}",
            outcome="denied",
            details={"reason": "rate_limited"},
        )
        raise TooManyAttempts(verdict.retry_after)

    current = await Person.get_or_none(id=account.person_id) if account.person_id else None  # type: ignore[attr-defined]
    if current is not None and current.verified_at is not None and current.id_number_index != index:
        await audit.record(
            "realname.verify",
            actor,
            target=f"account:{account.id}",
            outcome="denied",
            details={"reason": "already_verified"},
        )
        raise AlreadyVerified(AlreadyVerified.message)

    if not doc.face_verifiable:
        return await _counter_required(
            account, name, claim.id_type, id_number, index, keyring, actor
        )

    result = await face.get_face_verify_result(claim.verify_result or "")
    someone_else = bool(result.openid) and result.openid != account.openid
    if someone_else or not result.matches(name, id_number):
        await audit.record(
            "realname.verify",
            actor,
            target=f"account:{account.id}",
            outcome="denied",
            details={"reason": "face_mismatch" if result.identify_ret == 0 else "face_failed"},
        )
        raise FaceMismatch(FaceMismatch.message)

    person = await _person_for(index, name, claim.id_type, id_number, keyring)
    async with in_transaction():
        # The face check proved this name belongs to this number: keep the newest spelling.
        _seal_identity(person, name, claim.id_type, id_number, keyring)
        person.verified_at = now
        person.verification = "face"
        await _move_pending_phone(account, person, keyring)
        await person.save()
        account.person = person
        await account.save()
    await audit.record(
        "realname.verify",
        actor,
        target=f"person:{person.id}",
        details={"account": account.id, "id_type": claim.id_type, "method": "face"},
    )
    return Outcome(person, name, id_number, counter_required=False)


async def _counter_required(
    account: WeChatAccount,
    name: str,
    id_type: str,
    id_number: str,
    index: str,
    keyring: Keyring,
    actor: audit.Actor,
) -> Outcome:
    """A document WeChat cannot verify: recorded, to be checked at a hall counter.

    Nothing proves the claim yet, so it never attaches the account to a person someone else
    already holds; and the answer is the same either way, so it tells nobody whether a passport
    number is known here.
    """
    existing = await Person.get_or_none(id_number_index=index)
    person: Person | None = None
    if existing is None:
        person = await _person_for(index, name, id_type, id_number, keyring)
        async with in_transaction():
            person.verification = "counter_required"
            await _move_pending_phone(account, person, keyring)
            await person.save()
            account.person = person
            await account.save()
    elif existing.id == account.person_id:  # type: ignore[attr-defined]
        person = existing
    await audit.record(
        "realname.verify",
        actor,
        target=f"account:{account.id}",
        outcome="ok",
        details={"id_type": id_type, "method": "counter_required", "bound": person is not None},
    )
    return Outcome(person, name, id_number, counter_required=True)


def _local_date(now: datetime) -> date:
    return now.astimezone(_SHANGHAI).date()
