"""Tracking numbers: readable, checked, hard to guess."""

from __future__ import annotations

from datetime import date

from forms.tracking import ALPHABET, new_tracking_no, normalize_tracking_no

TODAY = date(2026, 11, 28)


def test_the_shape_is_grouped_and_starts_with_the_year() -> None:
    number = new_tracking_no(TODAY)
    assert number.startswith("SB26-")
    groups = number.split("-")
    assert [len(g) for g in groups] == [4, 4, 4, 3]
    assert all(c in ALPHABET for c in "".join(groups)[4:])


def test_confusable_characters_are_never_used() -> None:
    seen = "".join(new_tracking_no(TODAY)[4:] for _ in range(500))
    assert not set(seen) & set("0O1IL2Z5S8BUV")


def test_numbers_do_not_repeat() -> None:
    numbers = {new_tracking_no(TODAY) for _ in range(5000)}
    assert len(numbers) == 5000


def test_typed_forms_are_normalised() -> None:
    number = new_tracking_no(TODAY)
    assert normalize_tracking_no(number) == number
    assert normalize_tracking_no(number.lower()) == number
    assert normalize_tracking_no(number.replace("-", " ")) == number
    assert normalize_tracking_no(" " + number.replace("-", "") + " ") == number


def test_any_single_wrong_character_is_caught() -> None:
    number = new_tracking_no(TODAY)
    raw = number.replace("-", "")
    for position in range(4, len(raw)):
        for c in ALPHABET:
            if c == raw[position]:
                continue
            typo = raw[:position] + c + raw[position + 1 :]
            assert normalize_tracking_no(typo) is None, typo


def test_garbage_is_refused_without_a_lookup() -> None:
    for value in ("", "SB", "XX26-AAAA-AAAA-AAA", "SB26-AAAA-AAAA-AAAA-A", "SB2X-AAAA-AAAA-AAA"):
        assert normalize_tracking_no(value) is None
