from __future__ import annotations

import pytest

from auth.masking import mask_id_number, mask_name, mask_phone


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("44010319850612301X", "4401**********301X"),
        ("440103850612301", "4401*******2301"),
        ("1234", "****"),
    ],
)
def test_mask_id_number(value: str, masked: str) -> None:
    assert mask_id_number(value) == masked
    assert len(mask_id_number(value)) == len(value)


@pytest.mark.parametrize(
    ("value", "masked"),
    [("13812341234", "138****1234"), ("02088889999", "020****9999"), ("123", "***")],
)
def test_mask_phone(value: str, masked: str) -> None:
    assert mask_phone(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"), [("陈明", "陈*"), ("林芳芳", "林*芳"), ("欧阳修文", "欧**文"), ("张", "*")]
)
def test_mask_name(value: str, masked: str) -> None:
    assert mask_name(value) == masked
