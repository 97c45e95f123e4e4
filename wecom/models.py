"""Tortoise models of the WeCom bridge. Model docstrings become table comments: no semicolons.

A WeCom member (the bureau's corp's userid) is bound to at most one real-name person, and a
person to at most one member: both columns are unique. Unbinding deletes the row.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from auth.models import Person


class WeComMember(Model):
    """A WeCom member bound to a real-name person, so WeCom is a second front door to the
    same rights."""

    id = fields.BigIntField(pk=True)
    userid = fields.CharField(max_length=64, unique=True)
    person: fields.OneToOneRelation[Person] = fields.OneToOneField(
        "suban.Person", related_name="wecom_member", on_delete=fields.CASCADE
    )
    bound_at = fields.DatetimeField()
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "wecom_member"


class WeComApproval(Model):
    """An enterprise's internal approval of a submission, run as a WeCom OA approval (sp_no)."""

    id = fields.BigIntField(pk=True)
    sp_no = fields.CharField(max_length=64, unique=True)
    submission_id = fields.BigIntField(db_index=True)
    applicant_userid = fields.CharField(max_length=64)
    # applying, approved, rejected, withdrawn: the OA status last acted on.
    status = fields.CharField(max_length=16, default="applying")
    created_at = fields.DatetimeField(auto_now_add=True)
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "wecom_approval"
