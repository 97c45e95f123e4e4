"""The taxpayer registry (the bureau's registration data) and the roles it gives people.

A person verified with the ID number registered as a taxpayer's legal representative (or the
operator of a 个体工商户) or finance head holds that role on it. The role is read from the
registry on every check rather than copied at verification time, so a change of legal
representative at the bureau takes effect at once, for the new one and against the old one.
"""

from __future__ import annotations

from dataclasses import dataclass

from stdnum.cn import ric, uscc
from tortoise.expressions import Q

from auth.models import Taxpayer
from auth.pii import Keyring

ID_NUMBER_INDEX = "id_number"

TAXPAYER_KINDS = {
    "general": "一般纳税人",
    "small_scale": "小规模纳税人",
    "individual_business": "个体工商户",
    "natural_person": "自然人",
}


@dataclass(frozen=True)
class RegistryRole:
    taxpayer: Taxpayer
    role: str


def taxpayer_id_is_valid(value: str) -> bool:
    """纳税人识别号: 15, 17, 18 or 20 characters (DOMAIN.md); the checksum is checked on the 18-char
    统一社会信用代码 only, the other lengths by pattern."""
    if len(value) == 18:
        # A USCC, or a natural person's ID number serving as their taxpayer id.
        return bool(uscc.is_valid(value) or ric.is_valid(value))
    return (
        len(value) in (15, 17, 20)
        and value.isascii()
        and value.isalnum()
        and value == value.upper()
    )


async def upsert_taxpayer(
    taxpayer_id: str,
    name: str,
    kind: str,
    *,
    keyring: Keyring,
    legal_rep_id_number: str | None = None,
    finance_head_id_number: str | None = None,
) -> Taxpayer:
    if kind not in TAXPAYER_KINDS:
        raise ValueError(f"unknown taxpayer kind {kind!r}")

    def index(id_number: str | None) -> str | None:
        if id_number is None:
            return None
        return keyring.blind_index(id_number.strip().upper(), purpose=ID_NUMBER_INDEX)

    taxpayer, _ = await Taxpayer.update_or_create(
        taxpayer_id=taxpayer_id,
        defaults={
            "name": name,
            "kind": kind,
            "legal_rep_index": index(legal_rep_id_number),
            "finance_head_index": index(finance_head_id_number),
        },
    )
    return taxpayer


async def registry_roles(id_number_index: str) -> list[RegistryRole]:
    """The roles the registry gives the person with this ID number index."""
    rows = await Taxpayer.filter(
        Q(legal_rep_index=id_number_index) | Q(finance_head_index=id_number_index)
    ).order_by("taxpayer_id")
    roles: list[RegistryRole] = []
    for taxpayer in rows:
        if taxpayer.legal_rep_index == id_number_index:
            roles.append(RegistryRole(taxpayer, "legal_rep"))
        if taxpayer.finance_head_index == id_number_index:
            roles.append(RegistryRole(taxpayer, "finance_head"))
    return roles
