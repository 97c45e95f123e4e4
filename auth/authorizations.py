"""Whom a person may act for, and with which permissions.

Two sources: the taxpayer registry (legal representative, finance head: read live, see
auth/taxpayers.py) and grants the person has confirmed that are within their dates. Every route
that acts for a taxpayer asks :func:`require_permission`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from auth.clock import local
from auth.models import Grant, Person, Taxpayer
from auth.roles import role_book
from auth.taxpayers import registry_roles


@dataclass(frozen=True)
class Authorization:
    taxpayer: Taxpayer
    role: str
    source: Literal["registry", "grant"]
    grant_id: int | None = None
    expires_at: datetime | None = None

    @property
    def permissions(self) -> frozenset[str]:
        return role_book().role(self.role).permissions


class TaxpayerUnknown(Exception):
    """No such taxpayer in the registry."""


class NotPermitted(Exception):
    """The person may not do this for this taxpayer."""

    def __init__(self, permission: str) -> None:
        super().__init__(permission)
        self.permission = permission


def _verified_index(person: Person | None) -> str | None:
    if person is None or person.verified_at is None:
        return None
    return person.id_number_index


async def authorizations_of(person: Person | None, now: datetime) -> list[Authorization]:
    """Everything ``person`` may act for now; nothing before real-name verification."""
    index = _verified_index(person)
    if person is None or index is None:
        return []
    now = local(now)
    found = [Authorization(r.taxpayer, r.role, "registry") for r in await registry_roles(index)]
    grants = (
        await Grant.filter(
            grantee_id=person.id, status="active", valid_from__lte=now, expires_at__gt=now
        )
        .prefetch_related("taxpayer")
        .order_by("id")
    )
    found += [Authorization(g.taxpayer, g.role, "grant", g.id, g.expires_at) for g in grants]
    return found


async def permissions_on(
    person: Person | None, taxpayer: Taxpayer, now: datetime
) -> frozenset[str]:
    index = _verified_index(person)
    if person is None or index is None:
        return frozenset()
    now = local(now)
    roles: set[str] = set()
    if taxpayer.legal_rep_index == index:
        roles.add("legal_rep")
    if taxpayer.finance_head_index == index:
        roles.add("finance_head")
    granted: list[str] = await Grant.filter(
        taxpayer_id=taxpayer.id,
        grantee_id=person.id,
        status="active",
        valid_from__lte=now,
        expires_at__gt=now,
    ).values_list("role", flat=True)  # type: ignore[assignment]
    roles.update(granted)
    return role_book().permissions_of(roles)


async def require_permission(
    person: Person | None, taxpayer_id: str, permission: str, now: datetime
) -> Taxpayer:
    """The taxpayer, if ``person`` holds ``permission`` on it; :class:`TaxpayerUnknown` or
    :class:`NotPermitted` otherwise."""
    taxpayer = await Taxpayer.get_or_none(taxpayer_id=taxpayer_id)
    if taxpayer is None:
        raise TaxpayerUnknown(taxpayer_id)
    if permission not in await permissions_on(person, taxpayer, now):
        raise NotPermitted(permission)
    return taxpayer
