"""Identity documents accepted for real-name verification (税收实名制), and how each is checked.

Only the mainland resident ID card can be verified by WeChat's face verification. The others are
accepted by their pattern and marked for verification at a hall counter, where staff see the
document itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from stdnum.cn import ric
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)


@dataclass(frozen=True)
class DocumentType:
    code: str
    label: str
    face_verifiable: bool


DOCUMENT_TYPES: dict[str, DocumentType] = {
    d.code: d
    for d in (
        DocumentType("resident_id", "居民身份证", face_verifiable=True),
        DocumentType("hmt_residence_permit", "港澳台居民居住证", face_verifiable=False),
        DocumentType("passport", "护照", face_verifiable=False),
    )
}

# 港澳台居民居住证 numbers follow GB 11643 with the "address" code 810000 (Hong Kong), 820000
# (Macao) or 830000 (Taiwan); stdnum's ric rejects those codes as birthplaces, so its check-digit
# and birth-date helpers are used on their own here.
_HMT_PREFIXES = ("810000", "820000", "830000")
_PASSPORT = re.compile(r"[A-Z0-9]{5,17}")


class InvalidDocument(ValueError):
    """The number cannot be this document's; the message is for the person who typed it."""


def normalise(id_number: str) -> str:
    return re.sub(r"[\s-]", "", id_number).upper()


def _check_birth_date(number: str, today: date) -> None:
    try:
        born = ric.get_birth_date(number)
    except ValidationError as exc:
        raise InvalidDocument("证件号码中的出生日期无效") from exc
    if born > today or today.year - born.year > 150:
        raise InvalidDocument("证件号码中的出生日期无效")


def check_document(id_type: str, id_number: str, *, today: date | None = None) -> str:
    """The number in its canonical form (no spaces, upper case), or :class:`InvalidDocument`.

    A resident ID goes through python-stdnum (length, check digit, birth date, and the birthplace
    code against the birth year); ``today`` rules out birth dates in the future.
    """
    today = today or date.today()
    number = normalise(id_number)
    if id_type == "resident_id":
        try:
            ric.validate(number)
        except InvalidLength as exc:
            raise InvalidDocument("居民身份证号码应为 18 位") from exc
        except InvalidFormat as exc:
            raise InvalidDocument("居民身份证号码格式不正确") from exc
        except InvalidChecksum as exc:
            raise InvalidDocument("居民身份证号码校验位不正确") from exc
        except InvalidComponent as exc:
            raise InvalidDocument("居民身份证号码中的出生日期或地区码无效") from exc
        except ValidationError as exc:
            raise InvalidDocument("居民身份证号码无效") from exc
        _check_birth_date(number, today)
        return number
    if id_type == "hmt_residence_permit":
        if len(number) != 18 or not number[:17].isdigit() or not number.startswith(_HMT_PREFIXES):
            raise InvalidDocument("港澳台居民居住证号码应为 810000、820000 或 830000 开头的 18 位")
        # stdnum's calc_check_digit takes the whole number and ignores its last character.
        if ric.calc_check_digit(number) != number[17]:
            raise InvalidDocument("港澳台居民居住证号码校验位不正确")
        _check_birth_date(number, today)
        return number
    if id_type == "passport":
        if not _PASSPORT.fullmatch(number):
            raise InvalidDocument("护照号码应为 5 至 17 位字母或数字")
        return number
    raise InvalidDocument("不支持的证件类型")
