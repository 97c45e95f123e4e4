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
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "wechat_account"
