"""Roles and permissions as data (auth/roles.toml), checked when the file is read."""

from __future__ import annotations

import pytest

from auth.roles import parse_role_book, role_book


def test_the_domain_roles_and_what_they_may_do() -> None:
    book = role_book()
    assert set(book.roles) == {
        "legal_rep",
        "finance_head",
        "tax_clerk",
        "invoicer",
        "invoice_buyer",
    }
    assert book.grantable == ("tax_clerk", "invoicer", "invoice_buyer")
    everything = frozenset(book.permissions)
    assert book.role("legal_rep").permissions == everything
    assert book.role("finance_head").permissions == everything
    # DOMAIN.md: a tax clerk files and pays but does not invoice unless also an invoicer.
    clerk = book.role("tax_clerk").permissions
    assert "returns.file" in clerk
    assert "invoices.issue" not in clerk
    assert "invoices.proxy" in book.role("invoice_buyer").permissions
    assert (
        book.permissions_of({"tax_clerk", "invoicer"}) == clerk | book.role("invoicer").permissions
    )


def test_a_role_naming_an_unknown_permission_is_refused() -> None:
    data = {
        "permissions": {"a": "甲"},
        "roles": {"r": {"label": "角色", "grantable": True, "permissions": ["a", "b"]}},
    }
    with pytest.raises(ValueError, match="unknown permissions"):
        parse_role_book(data)
