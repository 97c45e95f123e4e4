"""Tracking numbers (受理编号) that people can read out over the phone and nobody can guess.

``SB26-K7Q4-M9XT-R3``: the year, ten random characters and a check character, in groups of four.
The alphabet leaves out what is misheard or misread (0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V): 23 characters,
so ten of them carry 45 bits from ``secrets`` — and a lookup needs the check digits of an ID number
besides. Written by hand: no library makes such numbers, and the rule fits in a few lines.
"""

from __future__ import annotations

import re
import secrets
from datetime import date

ALPHABET = "34679ACDEFGHJKMNPQRTWXY"
RANDOM_CHARS = 10
_SEPARATORS = re.compile(r"[\s\-_]+")


def _check_char(payload: str) -> str:
    """A weighted sum over the alphabet: catches any one wrong character and most swaps."""
    total = sum((i + 1) * ALPHABET.index(c) for i, c in enumerate(payload))
    return ALPHABET[total % len(ALPHABET)]


def _digits_as_alphabet(year: int) -> str:
    # The year is printed as digits but also goes through the check, mapped into the alphabet.
    return "".join(ALPHABET[int(d) % len(ALPHABET)] for d in f"{year % 100:02d}")


def new_tracking_no(today: date) -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))
    check = _check_char(_digits_as_alphabet(today.year) + body)
    raw = f"SB{today.year % 100:02d}{body}{check}"
    return format_tracking_no(raw)


def format_tracking_no(raw: str) -> str:
    """``SB26K7Q4M9XTR3`` → ``SB26-K7Q4-M9XT-R3``."""
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def normalize_tracking_no(value: str) -> str | None:
    """What someone typed (any case, spaces or dashes) as the stored form; None if it cannot be a
    tracking number, so a typo is answered without touching the database."""
    raw = _SEPARATORS.sub("", value.strip().upper())
    if len(raw) != 4 + RANDOM_CHARS + 1 or not raw.startswith("SB") or not raw[2:4].isdigit():
        return None
    body, check = raw[4:-1], raw[-1]
    if any(c not in ALPHABET for c in body + check):
        return None
    if _check_char(_digits_as_alphabet(int(raw[2:4])) + body) != check:
        return None
    return format_tracking_no(raw)
