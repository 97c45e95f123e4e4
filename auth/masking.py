"""Showing personal data masked (GB/T 35273): first 4 and last 4 of an ID number, 3 + 4 digits of a
mobile number, the first (and for longer names the last) character of a name."""

from __future__ import annotations


def mask_id_number(value: str) -> str:
    """``44010319850612301X`` → ``4401**********301X``; short values are masked whole."""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str) -> str:
    """``13812341234`` → ``138****1234``; anything not 11 characters long keeps its last 4."""
    if len(value) == 11:
        return value[:3] + "****" + value[-4:]
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * (len(value) - 4) + value[-4:]


def mask_name(value: str) -> str:
    """``陈明`` → ``陈*``; ``欧阳修文`` → ``欧**文``; one character → ``*``."""
    if len(value) <= 1:
        return "*" * len(value)
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]
