"""Identity document checks: resident IDs through python-stdnum, the others by pattern."""

from __future__ import annotations

from datetime import date

import pytest

from auth.documents import DOCUMENT_TYPES, InvalidDocument, check_document


def test_a_resident_id_is_normalised() -> None:
    assert check_document("resident_id", " 4401 0319 8506 12301x ") == "44010319850612301X"
    assert check_document("resident_id", "11010519491231002X") == "11010519491231002X"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("44010319850612301", "18 位"),
        ("4401031985061230AX", "格式"),
        ("440103198506123011", "校验位"),
        ("440103198513123018", "出生日期或地区码"),
    ],
)
def test_bad_resident_ids_say_what_is_wrong(number: str, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        check_document("resident_id", number)


def test_a_birth_date_in_the_future_is_refused() -> None:
    # Valid for python-stdnum, but born after "today".
    with pytest.raises(InvalidDocument, match="出生日期"):
        check_document("resident_id", "44010319850612301X", today=date(1985, 6, 11))


def test_residence_permits_use_the_gb11643_check_digit() -> None:
    assert check_document("hmt_residence_permit", "810000199408230021") == "810000199408230021"
    with pytest.raises(InvalidDocument, match="校验位"):
        check_document("hmt_residence_permit", "810000199408230022")
    with pytest.raises(InvalidDocument, match="开头"):
        check_document("hmt_residence_permit", "440103199408230021")


def test_passports_by_pattern() -> None:
    assert check_document("passport", "e1234-5678") == "E12345678"
    for bad in ("E12", "E1234567890123456789", "E1234?5678"):
        with pytest.raises(InvalidDocument):
            check_document("passport", bad)


def test_only_the_resident_id_is_face_verifiable() -> None:
    assert [d.code for d in DOCUMENT_TYPES.values() if d.face_verifiable] == ["resident_id"]
    with pytest.raises(InvalidDocument):
        check_document("driving_licence", "123456")
