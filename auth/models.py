"""Tortoise models of the auth package. Personal data is stored sealed (see auth/pii.py) with a
blind index beside it for lookups: no column holds a name, ID number or phone in the clear.

Model docstrings become table comments in the migrations: tortoise 1.1 writes them into the
SQL unescaped, and a semicolon there breaks the statement on SQLite. Keep them free of ";".
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Person(Model):
    """A real person, known after real-name verification (税收实名制)."""

    id = fields.BigIntField(pk=True)
    name_sealed = fields.TextField(null=True)
    id_type = fields.CharField(max_length=32, null=True)
    id_number_sealed = fields.TextField(null=True)
    id_number_index = fields.CharField(max_length=64, null=True, unique=True)
    phone_sealed = fields.TextField(null=True)
    phone_index = fields.CharField(max_length=64, null=True, db_index=True)
    verified_at = fields.DatetimeField(null=True)
    # face (WeChat face verification), counter_required (a document WeChat cannot verify, so the
    # person must show it at a hall counter) or counter (verified there by staff).
    verification = fields.CharField(max_length=24, default="face")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    accounts: fields.ReverseRelation[WeChatAccount]

    class Meta:
        table = "person"


class WeChatAccount(Model):
    """A mini-program user (openid): one person may have several, an account one person."""

    id = fields.BigIntField(pk=True)
    openid = fields.CharField(max_length=64, unique=True)
    unionid = fields.CharField(max_length=64, null=True, db_index=True)
    person: fields.ForeignKeyNullableRelation[Person] = fields.ForeignKeyField(
        "suban.Person", related_name="accounts", null=True, on_delete=fields.SET_NULL
    )
    # A phone given before real-name verification waits here and moves to the person on it.
    phone_sealed: str | None = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "wechat_account"


class Taxpayer(Model):
    """The bureau's registration data for a taxpayer (纳税人). The legal representative (or the
    operator of a 个体工商户) and the finance head are held only as blind indexes of their ID
    numbers, the same index as person.id_number_index."""

    id = fields.BigIntField(pk=True)
    taxpayer_id = fields.CharField(max_length=20, unique=True)
    name = fields.CharField(max_length=200)
    kind = fields.CharField(max_length=24)
    legal_rep_index = fields.CharField(max_length=64, null=True, db_index=True)
    finance_head_index = fields.CharField(max_length=64, null=True, db_index=True)
    # Set by the legal representative or finance head: their clerks' filings wait for an
    # approver of the taxpayer (WeCom OA, or in the mini-program) before reaching the bureau.
    internal_approval_required = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "taxpayer"


class Grant(Model):
    """A role on a taxpayer granted to a person (办税授权), named by ID number until the grantee
    confirms it after their own real-name verification."""

    id = fields.BigIntField(pk=True)
    taxpayer: fields.ForeignKeyRelation[Taxpayer] = fields.ForeignKeyField(
        "suban.Taxpayer", related_name="grants", on_delete=fields.CASCADE
    )
    role = fields.CharField(max_length=24)
    grantee_id_index = fields.CharField(max_length=64, db_index=True)
    grantee_name_sealed = fields.TextField()
    grantee: fields.ForeignKeyNullableRelation[Person] = fields.ForeignKeyField(
        "suban.Person", related_name="grants", null=True, on_delete=fields.SET_NULL
    )
    # pending (waiting for the grantee), active, declined or revoked. Expiry is read from
    # expires_at, never written back, so it needs no job to happen on time.
    status = fields.CharField(max_length=16, default="pending")
    granted_by_kind = fields.CharField(max_length=16)
    granted_by_id = fields.BigIntField()
    valid_from = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    confirmed_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    revoked_by_kind = fields.CharField(max_length=16, null=True)
    revoked_by_id = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "taxpayer_grant"


class StaffUser(Model):
    """A member of the bureau's staff (console login). Roles: reviewer, hall_manager, admin."""

    id = fields.BigIntField(pk=True)
    username = fields.CharField(max_length=64, unique=True)
    display_name = fields.CharField(max_length=64)
    password_hash = fields.CharField(max_length=255)
    totp_secret_sealed = fields.TextField(null=True)
    roles: list[str] = fields.JSONField(default=list)
    active = fields.BooleanField(default=True)
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    wecom_userid = fields.CharField(max_length=64, null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "staff_user"


class AuditEvent(Model):
    """An identity event, appended and never changed. Holds ids and codes, no personal data."""

    id = fields.BigIntField(pk=True)
    at = fields.DatetimeField()
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.CharField(max_length=64, null=True)
    action = fields.CharField(max_length=64)
    target = fields.CharField(max_length=128, null=True)
    outcome = fields.CharField(max_length=16, default="ok")
    request_id = fields.CharField(max_length=64, null=True)
    details: dict[str, object] = fields.JSONField(default=dict)
    # The hash chain (auth/audit_chain.py): the previous event's hash and this one's, over the
    # fields above. NULL only on events written before the chain existed.
    prev_hash = fields.CharField(max_length=64, null=True)
    hash = fields.CharField(max_length=64, null=True)
    chain_alg = fields.CharField(max_length=8, null=True)

    class Meta:
        table = "audit_event"


class OutboxMessage(Model):
    """A message to send because something changed, written in the same transaction as the
    change (the outbox), delivered by the worker with retries. ``dedupe_key`` makes writing the
    same announcement twice a no-op."""

    id = fields.BigIntField(pk=True)
    # subscribe (a mini-program subscribe message to an openid) or wecom (an app message).
    channel = fields.CharField(max_length=16)
    recipient = fields.CharField(max_length=64)
    template = fields.CharField(max_length=64)
    payload: dict[str, object] = fields.JSONField(default=dict)
    dedupe_key = fields.CharField(max_length=128, unique=True)
    # pending, delivered or failed (gave up after the last retry).
    status = fields.CharField(max_length=16, default="pending", db_index=True)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    # A worker's claim: nobody else sends the row until this passes.
    locked_until = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=255, null=True)
    delivered_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "outbox_message"


# Every sealed column, for `suban rotate-keys` and the no-plaintext test: model, then the
# database column and the column name bound into its ciphertext (see auth/pii.py).
SEALED_COLUMNS: tuple[tuple[type[Model], tuple[tuple[str, str], ...]], ...] = (
    (
        Person,
        (("name_sealed", "name"), ("id_number_sealed", "id_number"), ("phone_sealed", "phone")),
    ),
    (WeChatAccount, (("phone_sealed", "phone"),)),
    (Grant, (("grantee_name_sealed", "grantee_name"),)),
    (StaffUser, (("totp_secret_sealed", "totp_secret"),)),
)
