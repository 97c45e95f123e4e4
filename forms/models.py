"""Tortoise models of filing: drafts, submissions, their timeline and attachments.

Form data can carry personal data (a buyer's name and phone, a contact person), so it is stored
sealed as one JSON document per row (``data_sealed``), bound to the row like every sealed column
(see auth/pii.py). What staff filter and sort on (form, status, taxpayer, dates, the amount) sits
beside it in the clear and holds no personal data.

Model docstrings become table comments: keep them free of semicolons (see auth/models.py).
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from auth.models import Person, StaffUser, Taxpayer


class Draft(Model):
    """A form being filled in, saved to resume later. Its version guards against lost updates."""

    id = fields.BigIntField(pk=True)
    person: fields.ForeignKeyRelation[Person] = fields.ForeignKeyField(
        "suban.Person", related_name="drafts", on_delete=fields.CASCADE
    )
    form_code = fields.CharField(max_length=48)
    form_version = fields.IntField()
    taxpayer: fields.ForeignKeyNullableRelation[Taxpayer] = fields.ForeignKeyField(
        "suban.Taxpayer", related_name="drafts", null=True, on_delete=fields.CASCADE
    )
    data_sealed = fields.TextField()
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "form_draft"


class Submission(Model):
    """A filed form (涉税文书) and where it stands. Every change of status goes through
    forms/lifecycle.py, which checks the version and appends a SubmissionEvent."""

    id = fields.BigIntField(pk=True)
    tracking_no = fields.CharField(max_length=24, unique=True)
    form_code = fields.CharField(max_length=48, db_index=True)
    form_version = fields.IntField()
    taxpayer: fields.ForeignKeyNullableRelation[Taxpayer] = fields.ForeignKeyField(
        "suban.Taxpayer", related_name="submissions", null=True, on_delete=fields.RESTRICT
    )
    applicant: fields.ForeignKeyRelation[Person] = fields.ForeignKeyField(
        "suban.Person", related_name="submissions", on_delete=fields.RESTRICT
    )
    status = fields.CharField(max_length=24, db_index=True)
    version = fields.IntField(default=1)
    data_sealed = fields.TextField()
    # The tax quote of a proxy invoice (amounts and legal basis only), as forms/tax.py gave it.
    quote: dict[str, object] | None = fields.JSONField(null=True)
    total_incl_tax = fields.DecimalField(max_digits=16, decimal_places=2, null=True)
    # Same key from the same person: the same submission. The body's hash tells a retry from a
    # different request that reuses the key.
    idempotency_key = fields.CharField(max_length=128)
    body_hash = fields.CharField(max_length=64)
    # Public progress lookup: keyed hashes of the tracking number with the last four characters
    # of the applicant's ID number, and with those of the taxpayer id.
    check_applicant = fields.CharField(max_length=64)
    check_taxpayer = fields.CharField(max_length=64, null=True)
    claimed_by: fields.ForeignKeyNullableRelation[StaffUser] = fields.ForeignKeyField(
        "suban.StaffUser", related_name="claimed_submissions", null=True, on_delete=fields.SET_NULL
    )
    # What the office decided: the invoice number or the report number, a reason, the fields
    # to correct. Codes and the reviewer's words, no personal data.
    result: dict[str, object] = fields.JSONField(default=dict)
    # The office's number for the outcome (数电 invoice number, 税跨报〔YYYY〕N号), unique.
    result_no = fields.CharField(max_length=32, null=True, unique=True)
    submitted_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "submission"
        unique_together = (("applicant", "idempotency_key"),)


class SubmissionEvent(Model):
    """One step of a submission's timeline, appended by every transition and never changed."""

    id = fields.BigIntField(pk=True)
    submission: fields.ForeignKeyRelation[Submission] = fields.ForeignKeyField(
        "suban.Submission", related_name="events", on_delete=fields.CASCADE
    )
    action = fields.CharField(max_length=32)
    from_status = fields.CharField(max_length=24, null=True)
    status = fields.CharField(max_length=24)
    version = fields.IntField()
    at = fields.DatetimeField()
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.CharField(max_length=64, null=True)
    note = fields.TextField(null=True)

    class Meta:
        table = "submission_event"
        # Every detail page and every transition reads one submission's timeline in order.
        indexes = (("submission_id", "id"),)


class Attachment(Model):
    """A file attached to a submission. The bytes live in the attachment store under their
    SHA-256 (content-addressed), the name the person gave it is sealed."""

    id = fields.BigIntField(pk=True)
    submission: fields.ForeignKeyRelation[Submission] = fields.ForeignKeyField(
        "suban.Submission", related_name="attachments", on_delete=fields.CASCADE
    )
    sha256 = fields.CharField(max_length=64, db_index=True)
    name_sealed = fields.TextField()
    size = fields.IntField()
    content_type = fields.CharField(max_length=64)
    uploaded_by_kind = fields.CharField(max_length=16)
    uploaded_by_id = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "submission_attachment"


SEALED_COLUMNS: tuple[tuple[type[Model], tuple[tuple[str, str], ...]], ...] = (
    (Draft, (("data_sealed", "data"),)),
    (Submission, (("data_sealed", "data"),)),
    (Attachment, (("name_sealed", "name"),)),
)
