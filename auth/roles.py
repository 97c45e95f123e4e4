"""Roles on a taxpayer and their permission sets, read once from ``roles.toml`` (data, not code).

Staff roles live here too: they are few, fixed by the bureau's organisation, and checked by the
staff routes in the same way.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Role:
    code: str
    label: str
    grantable: bool
    permissions: frozenset[str]


@dataclass(frozen=True)
class RoleBook:
    permissions: dict[str, str]
    roles: dict[str, Role]

    def role(self, code: str) -> Role:
        return self.roles[code]

    def permissions_of(self, roles: set[str] | frozenset[str]) -> frozenset[str]:
        granted: set[str] = set()
        for code in roles:
            granted |= self.roles[code].permissions
        return frozenset(granted)

    @property
    def grantable(self) -> tuple[str, ...]:
        return tuple(code for code, role in self.roles.items() if role.grantable)


def parse_role_book(data: dict[str, Any]) -> RoleBook:
    """Check the file's shape here, at start-up, rather than as a KeyError on some request."""
    permissions = {str(k): str(v) for k, v in data["permissions"].items()}
    roles: dict[str, Role] = {}
    for code, spec in data["roles"].items():
        listed = [str(p) for p in spec["permissions"]]
        if listed == ["*"]:
            granted = frozenset(permissions)
        else:
            unknown = sorted(set(listed) - set(permissions))
            if unknown:
                raise ValueError(f"role {code}: unknown permissions {unknown}")
            granted = frozenset(listed)
        roles[code] = Role(code, str(spec["label"]), bool(spec["grantable"]), granted)
    return RoleBook(permissions, roles)


@cache
def role_book() -> RoleBook:
    text = resources.files("auth").joinpath("roles.toml").read_text(encoding="utf-8")
    return parse_role_book(tomllib.loads(text))


# The bureau's own staff. Fixed by its organisation, so a mapping rather than a data file.
STAFF_ROLES: dict[str, frozenset[str]] = {
    "reviewer": frozenset({"submissions.review", "grants.manage"}),
    "hall_manager": frozenset({"halls.manage", "grants.manage"}),
    # Reads the audit trail and its chain check; changes nothing.
    "auditor": frozenset({"audit.view"}),
    "admin": frozenset(
        {"submissions.review", "grants.manage", "halls.manage", "staff.manage", "audit.view"}
    ),
}
STAFF_ROLE_LABELS = {
    "reviewer": "审核员",
    "hall_manager": "大厅管理员",
    "auditor": "审计员",
    "admin": "系统管理员",
}


def staff_permissions(roles: list[str] | tuple[str, ...]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= STAFF_ROLES.get(role, frozenset())
    return frozenset(granted)
