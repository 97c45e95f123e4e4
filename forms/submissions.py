"""Filing a form, and who may read or change a submission.

A submission is filed once per ``Idempotency-Key``: the same key from the same person gives back
the same submission, the same key with a different body is a conflict. Filing for a taxpayer
needs the form's permission on it (auth/authorizations.py); a taxpayer that asked for internal
approval has its clerks' filings wait in ``pending_internal`` for one of its approvers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from auth import audit, clock
from auth.audit import Actor
from auth.authorizations import NotPermitted, TaxpayerUnknown, permissions_on
from auth.models import Person, Taxpayer
from auth.pii import Keyring
from forms import lifecycle
from forms.catalogue import FormSpec
from forms.models import Draft, Submission, SubmissionEvent
from forms.tax import QuoteRefused, quote_for_proxy_invoice
from forms.tracking import new_tracking_no
from forms.validation import FilingContext, FormInvalid, validate

CHECK_PURPOSE = "progress_check"
APPROVER_PERMISSION = "internal_approval.decide"
VIEW_PERMISSION = "taxpayer.view"


class FilingRefused(Exception):
    """Filing is not allowed: ``status`` and ``code`` say how the route answers."""

    def __init__(
        self, status: int, code: str, message: str, fields: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields) if fields else None


class IdempotencyConflict(FilingRefused):
    def __init__(self) -> None:
        super().__init__(
            409, "IDEMPOTENCY_KEY_REUSED", "该 Idempotency-Key 已用于内容不同的另一次提交"
        )


@dataclass(frozen=True)
class Filer:
    """Who files, for whom, and what that allows."""

    person: Person
    taxpayer: Taxpayer | None
    permissions: frozenset[str]

    @property
    def seller_kind(self) -> str:
        return self.taxpayer.kind if self.taxpayer is not None else "natural_person"

    @property
    def needs_internal_approval(self) -> bool:
        return (
            self.taxpayer is not None
            and self.taxpayer.internal_approval_required
            and APPROVER_PERMISSION not in self.permissions
        )


def body_hash(form_code: str, taxpayer_id: str | None, data: Any) -> str:
    canonical = json.dumps(
        {"form_code": form_code, "taxpayer_id": taxpayer_id, "data": data},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def filer_for(
    person: Person, spec: FormSpec, taxpayer_id: str | None, now: datetime
) -> Filer:
    """The filer, or :class:`FilingRefused`: 403 without the form's permission on the taxpayer
    (an unknown taxpayer is answered the same way, so filing does not probe the registry)."""
    if taxpayer_id is None:
        if spec.needs_taxpayer:
            raise FilingRefused(
                422, "VALIDATION_FAILED", "提交的内容有误", {"taxpayer_id": "该文书须选择纳税人"}
            )
        if "natural_person" not in spec.taxpayer_kinds:
            raise FilingRefused(403, "FORBIDDEN", "自然人不能办理该文书")
        return Filer(person, None, frozenset())
    taxpayer = await Taxpayer.get_or_none(taxpayer_id=taxpayer_id)
    if taxpayer is None:
        raise FilingRefused(403, "FORBIDDEN", "您无权为该纳税人办理此文书")
    permissions = await permissions_on(person, taxpayer, now)
    if spec.permission not in permissions:
        raise FilingRefused(403, "FORBIDDEN", "您无权为该纳税人办理此文书")
    if taxpayer.kind not in spec.taxpayer_kinds:
        raise FilingRefused(
            422, "VALIDATION_FAILED", "提交的内容有误", {"taxpayer_id": "该纳税人不能办理此文书"}
        )
    return Filer(person, taxpayer, permissions)


@dataclass(frozen=True)
class Checked:
    data: dict[str, Any]
    quote: dict[str, Any] | None
    total: Decimal | None


def check_form(
    spec: FormSpec, filer: Filer, data: Any, *, today: date, iit_at_issue: bool
) -> Checked:
    """Validate the data and, for a proxy invoice, compute the quote stored with it."""
    try:
        clean = validate(
            spec, data, context=FilingContext(seller_kind=filer.seller_kind, today=today)
        )
    except FormInvalid as exc:
        raise FilingRefused(422, "VALIDATION_FAILED", "提交的内容有误", exc.fields) from exc
    if spec.code != "proxy_invoice":
        return Checked(clean, None, None)
    try:
        quote = quote_for_proxy_invoice(
            clean,
            seller_kind=filer.seller_kind,  # type: ignore[arg-type]
            issue_date=today,
            iit_at_issue=iit_at_issue,
        )
    except QuoteRefused as exc:
        raise FilingRefused(422, "VALIDATION_FAILED", "提交的内容有误", exc.fields) from exc
    return Checked(clean, quote, Decimal(str(quote["total_incl_tax"])))


def seal_data(keyring: Keyring, table: str, row_id: int, data: Mapping[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return keyring.seal(text, table=table, column="data", row_id=row_id)


def open_data(keyring: Keyring, table: str, row_id: int, sealed: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        keyring.open(sealed, table=table, column="data", row_id=row_id)
    )
    return value


def _last4(value: str) -> str:
    return value.strip().upper()[-4:]


def check_index(keyring: Keyring, tracking_no: str, check: str) -> str:
    """A keyed hash of the tracking number with four characters that prove who asks."""
    return keyring.blind_index(f"{tracking_no}:{_last4(check)}", purpose=CHECK_PURPOSE)


async def find_same_key(person: Person, key: str, digest: str) -> Submission | None:
    existing = await Submission.get_or_none(applicant_id=person.id, idempotency_key=key)
    if existing is not None and existing.body_hash != digest:
        raise IdempotencyConflict
    return existing


@dataclass(frozen=True)
class Filed:
    """What filing gave: the submission, whether this call filed it (``False``: the key had
    filed it before), and the timeline it was filed with (empty for a replay)."""

    submission: Submission
    created: bool
    timeline: tuple[SubmissionEvent, ...] = ()


async def file_submission(
    *,
    spec: FormSpec,
    filer: Filer,
    checked: Checked,
    idempotency_key: str,
    digest: str,
    draft_id: int | None,
    actor: Actor,
    keyring: Keyring,
    notice: lifecycle.Notice,
    now: datetime | None = None,
) -> Filed:
    """File it, or give back the submission this key already filed. The row, its sealed data,
    its first timeline event, its announcements and its audit event are one transaction."""
    at = clock.local(now) if now else clock.now()
    person = filer.person
    id_number = keyring.open(
        person.id_number_sealed or "", table="person", column="id_number", row_id=person.id
    )
    status = "pending_internal" if filer.needs_internal_approval else "submitted"
    for _ in range(5):
        tracking_no = new_tracking_no(at.date())
        try:
            async with in_transaction() as conn:
                # The sealed data is bound to the row id: drawn first, so the row is written
                # once, complete (no UPDATE after the INSERT).
                row_id = await _new_submission_id(conn)
                submission = await Submission.create(
                    id=row_id,
                    tracking_no=tracking_no,
                    form_code=spec.code,
                    form_version=spec.version,
                    taxpayer=filer.taxpayer,
                    applicant=person,
                    status=status,
                    version=1,
                    data_sealed=seal_data(keyring, "submission", row_id, checked.data),
                    quote=checked.quote,
                    total_incl_tax=checked.total,
                    idempotency_key=idempotency_key,
                    body_hash=digest,
                    check_applicant=check_index(keyring, tracking_no, id_number),
                    check_taxpayer=(
                        check_index(keyring, tracking_no, filer.taxpayer.taxpayer_id)
                        if filer.taxpayer is not None
                        else None
                    ),
                    submitted_at=at,
                )
                event = await lifecycle.record_event(
                    submission, action="submit", from_status=None, actor=actor, at=at
                )
                await lifecycle.announce(submission, notice, at)
                if draft_id is not None:
                    await Draft.filter(id=draft_id, person_id=person.id).delete()
                await audit.record(
                    "submission.file",
                    actor,
                    target=f"submission:{submission.id}",
                    details={"form": spec.code, "status": submission.status},
                    at=at,
                )
        except IntegrityError:
            # Either the same key was used before or raced in from a parallel request (the
            # unique (applicant, idempotency_key) pair), or, rarely, the tracking number was
            # taken: the first is answered as a retry, the second tried again.
            existing = await find_same_key(person, idempotency_key, digest)
            if existing is not None:
                return Filed(existing, False)
            continue
        return Filed(submission, True, (event,))
    raise RuntimeError("no free tracking number after five tries")


async def _new_submission_id(conn: BaseDBAsyncClient) -> int:
    """The next row id, inside the filing's transaction. PostgreSQL draws it from the column's
    sequence (no two transactions ever get the same); SQLite has no sequences, but the embedded
    store runs in one process whose transactions take turns on one connection, so the highest id
    plus one is free (another process racing in would fail the INSERT and be tried again)."""
    if conn.capabilities.dialect == "postgres":
        query = "SELECT nextval(pg_get_serial_sequence('submission', 'id')) AS id"
    else:
        query = "SELECT COALESCE(MAX(id), 0) + 1 AS id FROM submission"
    rows = await conn.execute_query_dict(query)
    return int(rows[0]["id"])


async def readable_by(person: Person, submission: Submission, now: datetime) -> bool:
    """The applicant, and whoever may view the taxpayer's affairs (its legal representative,
    finance head, granted clerks)."""
    if submission.applicant_id == person.id:  # type: ignore[attr-defined]
        return True
    if submission.taxpayer_id is None:  # type: ignore[attr-defined]
        return False
    taxpayer = await Taxpayer.get(id=submission.taxpayer_id)  # type: ignore[attr-defined]
    return VIEW_PERMISSION in await permissions_on(person, taxpayer, now)


async def may_decide_internally(person: Person, submission: Submission, now: datetime) -> bool:
    if submission.taxpayer_id is None:  # type: ignore[attr-defined]
        return False
    taxpayer = await Taxpayer.get(id=submission.taxpayer_id)  # type: ignore[attr-defined]
    return APPROVER_PERMISSION in await permissions_on(person, taxpayer, now)


__all__ = [
    "Filed",
    "Filer",
    "FilingRefused",
    "IdempotencyConflict",
    "NotPermitted",
    "TaxpayerUnknown",
    "body_hash",
    "check_form",
    "file_submission",
    "filer_for",
    "open_data",
    "seal_data",
]
