"""Checking a form's data against its catalogue entry, and a draft's first values.

:func:`validate` walks the data along the form's fields, collects *every* problem (a person
correcting a form wants all of them at once, not one per round trip) under paths such as
``lines.0.amount_incl_tax``, then applies the form's cross-field rules (``forms/rules.py``) to
what passed. It answers the cleaned data (strings stripped, money as "5050.00", identifiers
upper-cased, dates as "YYYY-MM-DD", empty optional fields left out) or raises
:class:`FormInvalid`. Fields the form does not have are refused, so nothing unchecked is stored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum, InvalidLength, ValidationError

from auth.documents import InvalidDocument, check_document
from auth.taxpayers import taxpayer_id_is_valid
from forms.catalogue import FieldSpec, FormSpec
from forms.rules import RULES

UNKNOWN_FIELD = "不允许的字段"
ROOT = "data"

_CENT = Decimal("0.01")
_UNSIGNED = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SIGNED = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Control characters (newlines included) would break the printed form and the invoice line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MOBILE = re.compile(r"(?:\+?86)?(1[3-9][0-9]{9})")
# Area codes: 010 and 02x have three digits, all others four; local numbers start with 2-9.
_LANDLINE = re.compile(
    r"\(?(0(?:10|2[0-9]|[3-9][0-9]{2}))\)?[-\s]?([2-9][0-9]{6,7})(?:(?:-|转|ext\.?)([0-9]{1,6}))?",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")
_TAXPAYER_ID_LENGTHS = (15, 17, 18, 20)


@dataclass(frozen=True)
class FilingContext:
    """What validation needs beyond the data: who sells (the filer's taxpayer kind, or
    ``natural_person``) and the day it is judged on (a frozen clock in tests)."""

    seller_kind: str
    today: date


@dataclass(frozen=True)
class TaxpayerFacts:
    """The registry's word on the taxpayer a form is filed for."""

    name: str
    taxpayer_id: str
    kind: str


@dataclass(frozen=True)
class PersonFacts:
    """The filing person, unsealed by the caller."""

    name: str | None
    phone: str | None


class FormInvalid(Exception):
    """The data breaks the form: ``fields`` maps each path to a message for the person."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(f"{len(fields)} invalid field(s): {sorted(fields)}")
        self.fields = fields


class _Bad(Exception):
    """One field's problem; ``validate`` files it under the field's path and carries on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------- one value per type


def _string(spec: FieldSpec, value: Any, context: FilingContext) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{spec.label}应为文本")
    text = value.strip()
    if _CONTROL.search(text):
        raise _Bad(f"{spec.label}不能包含换行或控制字符")
    rules = spec.rules
    if len(text) > rules["max_length"]:
        raise _Bad(f"{spec.label}不能超过 {rules['max_length']} 个字")
    if len(text) < rules.get("min_length", 0):
        raise _Bad(f"{spec.label}至少 {rules['min_length']} 个字")
    if "pattern" in rules and not re.fullmatch(rules["pattern"], text):
        raise _Bad(f"{spec.label}格式不正确")
    return text


def _money(spec: FieldSpec, value: Any, context: FilingContext) -> str:
    # The contract carries money as strings ("5050.00"): a JSON number could already have lost
    # a cent on the way through a float.
    if not isinstance(value, str):
        raise _Bad(f'{spec.label}应以文本填写，如 "5050.00"')
    text = value.strip()
    if not _SIGNED.fullmatch(text):
        raise _Bad(f"{spec.label}格式不正确，应为数字，如 5050.00")
    amount = Decimal(text)
    low, high = Decimal(spec.rules["min"]), Decimal(spec.rules["max"])
    if amount <= 0 < low:
        raise _Bad(f"{spec.label}须大于 0")
    if amount > high:
        raise _Bad(f"{spec.label}不能超过 {spec.rules['max']}")
    if amount != amount.quantize(_CENT):
        raise _Bad(f"{spec.label}最多保留两位小数")
    if amount < low:
        raise _Bad(f"{spec.label}不能小于 {spec.rules['min']}")
    return f"{amount.quantize(_CENT)}"


def _plain(text: str) -> str:
    """A decimal written without exponent, leading zeros or trailing fractional zeros."""
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.removeprefix("-").partition(".")
    whole, fraction = whole.lstrip("0") or "0", fraction.rstrip("0")
    out = f"{whole}.{fraction}" if fraction else whole
    return "0" if out == "0" else sign + out


def _decimal(spec: FieldSpec, value: Any, context: FilingContext) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Bad(f"{spec.label}应为数字")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Bad(f"{spec.label}应为数字")
    # A float's repr is the shortest text that reads back as the same float: the digits the
    # client wrote, for any number a form asks for.
    text = (repr(value) if isinstance(value, float) else str(value)).strip()
    if not _SIGNED.fullmatch(text):
        raise _Bad(f"{spec.label}格式不正确，应为数字，如 0.03")
    number, rules = Decimal(text), spec.rules
    if "one_of" in rules:
        for choice in rules["one_of"]:
            if Decimal(choice) == number:
                return str(choice)
        raise _Bad(f"{spec.label}只能是 {'、'.join(rules['one_of'])} 之一")
    if rules.get("positive") and number <= 0:
        raise _Bad(f"{spec.label}须大于 0")
    if "min" in rules and number < Decimal(rules["min"]):
        raise _Bad(f"{spec.label}不能小于 {rules['min']}")
    if "max" in rules and number > Decimal(rules["max"]):
        raise _Bad(f"{spec.label}不能超过 {rules['max']}")
    plain = _plain(text)
    decimals = len(plain.partition(".")[2])
    if "max_decimals" in rules and decimals > rules["max_decimals"]:
        raise _Bad(f"{spec.label}最多保留 {rules['max_decimals']} 位小数")
    return plain


def _integer(spec: FieldSpec, value: Any, context: FilingContext) -> int:
    if isinstance(value, bool):
        raise _Bad(f"{spec.label}应为整数")
    if isinstance(value, str):
        if not _INTEGER.fullmatch(value.strip()):
            raise _Bad(f"{spec.label}应为整数")
        value = int(value.strip())
    if not isinstance(value, int):
        raise _Bad(f"{spec.label}应为整数")
    if "min" in spec.rules and value < spec.rules["min"]:
        raise _Bad(f"{spec.label}不能小于 {spec.rules['min']}")
    if "max" in spec.rules and value > spec.rules["max"]:
        raise _Bad(f"{spec.label}不能超过 {spec.rules['max']}")
    return value


def _date(spec: FieldSpec, value: Any, context: FilingContext) -> str:
    # Strictly YYYY-MM-DD: date.fromisoformat alone would also take "20260105" or week dates.
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        raise _Bad(f"{spec.label}格式应为 YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError as exc:
        raise _Bad(f"{spec.label}不是有效的日期") from exc


def _enum(spec: FieldSpec, value: Any, context: FilingContext) -> str:
    choices = dict(spec.options)
    if isinstance(value, str) and value.strip() in choices:
        return value.strip()
    # Labels may hold a 、 themselves ("县城、镇"), hence the brackets.
    raise _Bad(f"{spec.label}只能选择：{''.join(f'「{label}」' for label in choices.values())}")


def _phone(spec: FieldSpec, value: Any, context: FilingContext) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{spec.label}应为文本")
    text = value.strip()
    mobile = _MOBILE.fullmatch(re.sub(r"[\s-]", "", text))
    if mobile:
        return mobile.group(1)
    landline = _LANDLINE.fullmatch(text.replace("（", "(").replace("）", ")"))
    if landline:
        area, number, extension = landline.groups()
        return f"{area}-{number}" + (f"-{extension}" if extension else "")
    raise _Bad(f"{spec.label}应为手机号码或带区号的固定电话，如 13800138000 或 020-83331234")


def _compact_upper(value: Any, label: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{label}应为文本")
    return _SPACES.sub("", value).upper()


def _taxpayer_id(spec: FieldSpec, value: Any, context: FilingContext) -> str:
    text = _compact_upper(value, spec.label)
    if taxpayer_id_is_valid(text):
        return text
    if len(text) not in _TAXPAYER_ID_LENGTHS:
        raise _Bad(f"{spec.label}应为 15、17、18 或 20 位")
    if len(text) == 18:
        raise _Bad(f"{spec.label}无效：18 位的须为有效的统一社会信用代码或身份证号码")
    raise _Bad(f"{spec.label}只能包含数字和大写字母")


def _uscc(spec: FieldSpec, value: Any, context: FilingContext) -> str:
    text = _compact_upper(value, spec.label)
    try:
        return str(uscc.validate(text))
    except InvalidLength as exc:
        raise _Bad(f"{spec.label}应为 18 位") from exc
    except InvalidChecksum as exc:
        raise _Bad(f"{spec.label}校验位不正确") from exc
    except ValidationError as exc:
        raise _Bad(f"{spec.label}格式不正确") from exc


def _id_number(spec: FieldSpec, value: Any, context: FilingContext) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{spec.label}应为文本")
    try:
        return check_document("resident_id", value, today=context.today)
    except InvalidDocument as exc:
        raise _Bad(str(exc)) from exc


_LEAF_CHECKS: dict[str, Callable[[FieldSpec, Any, FilingContext], Any]] = {
    "string": _string,
    "money": _money,
    "decimal": _decimal,
    "integer": _integer,
    "date": _date,
    "enum": _enum,
    "phone": _phone,
    "taxpayer_id": _taxpayer_id,
    "uscc": _uscc,
    "id_number": _id_number,
}


# --------------------------------------------------------------------------- the walk


_ABSENT = object()


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


class _Walk:
    def __init__(self, context: FilingContext) -> None:
        self.context = context
        self.errors: dict[str, str] = {}

    def fields(
        self, specs: tuple[FieldSpec, ...], value: Mapping[str, Any], path: str
    ) -> dict[str, Any]:
        known = {spec.name for spec in specs}
        for key in value:
            if key not in known:
                # Cut to a sane length: the key is the client's, and comes back in the answer.
                self.errors[_join(path, str(key)[:64])] = UNKNOWN_FIELD
        clean: dict[str, Any] = {}
        for spec in specs:
            result = self.field(spec, value.get(spec.name), _join(path, spec.name))
            if result is not _ABSENT:
                clean[spec.name] = result
        return clean

    def field(self, spec: FieldSpec, value: Any, path: str) -> Any:
        if _is_empty(value):
            if spec.required:
                self.errors[path] = f"请填写{spec.label}"
            return _ABSENT
        if spec.type == "object":
            if not isinstance(value, Mapping):
                self.errors[path] = f"{spec.label}应为对象"
                return _ABSENT
            return self.fields(spec.fields, value, path)
        if spec.type == "list":
            return self.list(spec, value, path)
        try:
            return _LEAF_CHECKS[spec.type](spec, value, self.context)
        except _Bad as bad:
            self.errors[path] = bad.message
            return _ABSENT

    def list(self, spec: FieldSpec, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            self.errors[path] = f"{spec.label}应为列表"
            return _ABSENT
        low, high = spec.rules["min_items"], spec.rules["max_items"]
        if len(value) > high:
            # Items past the limit are not looked at: the list is refused as a whole.
            self.errors[path] = f"{spec.label}最多 {high} 项"
            return _ABSENT
        if len(value) < low:
            self.errors[path] = f"请填写{spec.label}" if not value else f"{spec.label}至少 {low} 项"
        assert spec.items is not None  # noqa: S101 - the catalogue gives every list its items
        clean = []
        for index, item in enumerate(value):
            result = self.field(spec.items, item, _join(path, index))
            # A failed item keeps its place, so the paths of later items stay the client's.
            clean.append(None if result is _ABSENT else result)
        return clean


def _covered(path: str, errors: Mapping[str, str]) -> bool:
    """Whether ``path`` or one of its parents already has an error."""
    return any(path == p or path.startswith(p + ".") for p in errors)


def validate(spec: FormSpec, data: Any, *, context: FilingContext) -> dict[str, Any]:
    """The cleaned data, or :class:`FormInvalid` with every problem found."""
    if not isinstance(data, Mapping):
        raise FormInvalid({ROOT: "表单数据应为对象"})
    walk = _Walk(context)
    clean = walk.fields(spec.fields, data, "")
    for name in spec.rules:
        for path, message in RULES[name].check(clean, context).items():
            if not _covered(path, walk.errors):
                walk.errors[path] = message
    if walk.errors:
        raise FormInvalid(walk.errors)
    return clean


# --------------------------------------------------------------------------- drafts


def prefill(
    spec: FormSpec, *, taxpayer: TaxpayerFacts | None, person: PersonFacts | None
) -> dict[str, Any]:
    """A new draft's data: what the registry and the person already say, and the form's
    defaults. Only fields the form names are filled, so the draft stays valid data."""
    sources: dict[str, str | None] = {
        "person.name": person.name if person else None,
        "person.phone": person.phone if person else None,
        "taxpayer.name": taxpayer.name if taxpayer else None,
        "taxpayer.taxpayer_id": taxpayer.taxpayer_id if taxpayer else None,
        "taxpayer.kind": taxpayer.kind if taxpayer else None,
    }
    return _prefilled(spec.fields, sources)


def _prefilled(specs: tuple[FieldSpec, ...], sources: Mapping[str, str | None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.type == "object":
            inner = _prefilled(spec.fields, sources)
            if inner:
                out[spec.name] = inner
        elif spec.prefill is not None and sources.get(spec.prefill):
            out[spec.name] = sources[spec.prefill]
        elif spec.default is not None:
            out[spec.name] = spec.default
    return out


__all__ = [
    "FilingContext",
    "FormInvalid",
    "PersonFacts",
    "TaxpayerFacts",
    "prefill",
    "validate",
]
