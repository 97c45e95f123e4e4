"""The form catalogue: one versioned TOML file per form in ``forms/catalogue/``, read and checked
once per process.

A file names its form (code, title, version), who may file it (the taxpayer permission, the
taxpayer kinds, whether a taxpayer must be chosen), its fields (nested objects and lists, each
with a type, a Chinese label, whether it is required, options, rules, and where a draft's first
value comes from) and the cross-field rules it obeys (``forms/rules.py``). A new form is a new
file, plus a rule function where it needs one.

Every file is checked completely when the catalogue is first read, so a mistake in one (an
unknown type, a misspelt key, a rule or permission that does not exist) stops the service at
start-up with the file and the key named, instead of surfacing as a KeyError on some request.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from auth.roles import role_book
from auth.taxpayers import TAXPAYER_KINDS
from forms.rules import RULES

# Data files only: the folder must not become a regular package (no __init__.py), or it would
# shadow this module, which has the same dotted name. setuptools packages it as a namespace
# package, so pyproject's "*.toml" package-data glob takes the files along.
CATALOGUE_DIR = "catalogue"

# A form code names the form in URLs and in the database (form_code is 48 characters there).
_CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")

LEAF_TYPES = frozenset(
    {
        "string",
        "money",
        "date",
        "enum",
        "phone",
        "taxpayer_id",
        "uscc",
        "id_number",
        "integer",
        "decimal",
    }
)
FIELD_TYPES = LEAF_TYPES | {"object", "list"}

# Which rules each type takes. Values a catalogue file may leave out get the defaults below, so
# the published schema always states the limits the validator applies.
TYPE_RULES: dict[str, frozenset[str]] = {
    "string": frozenset({"min_length", "max_length", "pattern"}),
    "money": frozenset({"min", "max"}),
    "decimal": frozenset({"min", "max", "positive", "max_decimals", "one_of"}),
    "integer": frozenset({"min", "max"}),
    "list": frozenset({"min_items", "max_items"}),
}
# Bounded by default: whatever a file forgets, no field takes unbounded input.
DEFAULT_MAX_LENGTH = 200
DEFAULT_MONEY_MIN = "0.01"
DEFAULT_MONEY_MAX = "99999999.99"
DEFAULT_MAX_ITEMS = 100

# Where a draft's first value may come from (forms.validation.prefill).
PREFILL_SOURCES = frozenset(
    {"person.name", "person.phone", "taxpayer.name", "taxpayer.taxpayer_id", "taxpayer.kind"}
)

_FORM_KEYS = frozenset(
    {
        "code",
        "title",
        "version",
        "needs_taxpayer",
        "permission",
        "taxpayer_kinds",
        "rules",
        "fields",
    }
)
_FIELD_KEYS = frozenset(
    {
        "type",
        "label",
        "required",
        "hint",
        "options",
        "rules",
        "fields",
        "items",
        "prefill",
        "default",
    }
)


class CatalogueError(ValueError):
    """A catalogue file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    label: str
    required: bool
    hint: str | None = None
    # enum: (value, label) in the file's order.
    options: tuple[tuple[str, str], ...] = ()
    # With the defaults filled in; JSON-ready (decimals as strings).
    rules: Mapping[str, Any] = field(default_factory=dict)
    fields: tuple[FieldSpec, ...] = ()
    items: FieldSpec | None = None
    prefill: str | None = None
    default: Any = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "label": self.label, "required": self.required}
        if self.hint is not None:
            out["hint"] = self.hint
        if self.options:
            out["options"] = [{"value": v, "label": label} for v, label in self.options]
        if self.rules:
            # Copies, so an answer being shaped cannot change the catalogue.
            out["rules"] = {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.rules.items()
            }
        if self.prefill is not None:
            out["prefill"] = self.prefill
        if self.default is not None:
            out["default"] = self.default
        if self.type == "object":
            out["fields"] = [{"name": f.name, **f.schema()} for f in self.fields]
        if self.items is not None:
            out["items"] = self.items.schema()
        return out


@dataclass(frozen=True)
class FormSpec:
    code: str
    title: str
    version: int
    needs_taxpayer: bool
    permission: str
    taxpayer_kinds: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    rules: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "title": self.title,
            "version": self.version,
            "needs_taxpayer": self.needs_taxpayer,
        }

    def schema(self) -> dict[str, Any]:
        """The public description of the form (GET /forms/{code}): what to ask, how to check it."""
        return {
            **self.summary(),
            "permission": self.permission,
            "taxpayer_kinds": [
                {"kind": kind, "label": TAXPAYER_KINDS[kind]} for kind in self.taxpayer_kinds
            ],
            "fields": [{"name": f.name, **f.schema()} for f in self.fields],
            "rules": [
                {"name": name, "description": RULES[name].description} for name in self.rules
            ],
        }


class Catalogue:
    def __init__(self, forms: Iterable[FormSpec]) -> None:
        self._by_code: dict[str, FormSpec] = {}
        for spec in forms:
            if spec.code in self._by_code:
                raise CatalogueError(f"form {spec.code!r} defined twice")
            self._by_code[spec.code] = spec

    @property
    def forms(self) -> list[FormSpec]:
        return list(self._by_code.values())

    def get(self, code: str) -> FormSpec | None:
        return self._by_code.get(code)


# --------------------------------------------------------------------------- reading the files


class _Where:
    """The file and key a check is looking at, for the error message."""

    def __init__(self, source: str, path: str = "") -> None:
        self.source = source
        self.path = path

    def at(self, key: str) -> _Where:
        return _Where(self.source, f"{self.path}.{key}" if self.path else key)

    def fail(self, message: str) -> CatalogueError:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return CatalogueError(f"{where}: {message}")


def _text(where: _Where, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.fail("must be a non-empty string")
    return value


def _bool(where: _Where, value: Any) -> bool:
    if not isinstance(value, bool):
        raise where.fail("must be true or false")
    return value


def _count(where: _Where, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise where.fail("must be a non-negative integer")
    return value


def _decimal(where: _Where, value: Any) -> Decimal:
    # Strings (or integers), never TOML floats: 0.1 as a float is not 0.1.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise where.fail('must be a decimal written as a string, e.g. "0.01"')
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise where.fail(f"{value!r} is not a decimal number") from exc
    if not number.is_finite():
        raise where.fail(f"{value!r} is not a finite number")
    return number


def _check_keys(where: _Where, table: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise where.fail(f"unknown keys {unknown} (allowed: {sorted(allowed)})")


def _rules(where: _Where, kind: str, raw: Any, required: bool) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise where.fail("must be a table of rules")
    _check_keys(where, raw, TYPE_RULES.get(kind, frozenset()))
    rules: dict[str, Any] = {}
    if kind == "string":
        min_length = _count(where.at("min_length"), raw.get("min_length", 0))
        max_length = _count(where.at("max_length"), raw.get("max_length", DEFAULT_MAX_LENGTH))
        if max_length < max(min_length, 1):
            raise where.fail("max_length must be at least 1 and not below min_length")
        if min_length:
            rules["min_length"] = min_length
        rules["max_length"] = max_length
        if "pattern" in raw:
            pattern = _text(where.at("pattern"), raw["pattern"])
            try:
                re.compile(pattern)
            except re.error as exc:
                raise where.at("pattern").fail(f"not a regular expression: {exc}") from exc
            rules["pattern"] = pattern
    elif kind == "money":
        low = _decimal(where.at("min"), raw.get("min", DEFAULT_MONEY_MIN))
        high = _decimal(where.at("max"), raw.get("max", DEFAULT_MONEY_MAX))
        for key, number in (("min", low), ("max", high)):
            if number < 0 or number != number.quantize(Decimal("0.01")):
                raise where.at(key).fail("must be an amount ≥ 0 with at most two decimals")
        if low > high:
            raise where.fail("min must not exceed max")
        rules["min"], rules["max"] = f"{low:.2f}", f"{high:.2f}"
    elif kind == "decimal":
        bounds = {k: _decimal(where.at(k), raw[k]) for k in ("min", "max") if k in raw}
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            raise where.fail("min must not exceed max")
        rules.update({k: str(raw[k]) for k in bounds})
        if "positive" in raw:
            rules["positive"] = _bool(where.at("positive"), raw["positive"])
        if "max_decimals" in raw:
            rules["max_decimals"] = _count(where.at("max_decimals"), raw["max_decimals"])
        if "one_of" in raw:
            choices = raw["one_of"]
            if not isinstance(choices, list) or not choices:
                raise where.at("one_of").fail("must be a non-empty list")
            for i, choice in enumerate(choices):
                _decimal(where.at(f"one_of.{i}"), choice)
            rules["one_of"] = tuple(str(c) for c in choices)
    elif kind == "integer":
        for key in ("min", "max"):
            if key in raw:
                value = raw[key]
                if isinstance(value, bool) or not isinstance(value, int):
                    raise where.at(key).fail("must be an integer")
                rules[key] = value
        if "min" in rules and "max" in rules and rules["min"] > rules["max"]:
            raise where.fail("min must not exceed max")
    elif kind == "list":
        min_items = _count(where.at("min_items"), raw.get("min_items", 1 if required else 0))
        max_items = _count(where.at("max_items"), raw.get("max_items", DEFAULT_MAX_ITEMS))
        if max_items < max(min_items, 1):
            raise where.fail("max_items must be at least 1 and not below min_items")
        if required and min_items < 1:
            raise where.at("min_items").fail("a required list needs min_items of at least 1")
        rules["min_items"], rules["max_items"] = min_items, max_items
    return rules


def _options(where: _Where, raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or not raw:
        raise where.fail("an enum needs a non-empty table of options (value = label)")
    return tuple((str(value), _text(where.at(str(value)), label)) for value, label in raw.items())


def _field(where: _Where, name: str, raw: Any, *, in_list: bool) -> FieldSpec:
    if not isinstance(raw, dict):
        raise where.fail("must be a table")
    _check_keys(where, raw, _FIELD_KEYS)
    kind = raw.get("type")
    if kind not in FIELD_TYPES:
        raise where.at("type").fail(f"{kind!r} is not one of {sorted(FIELD_TYPES)}")
    label = _text(where.at("label"), raw.get("label"))
    if "required" not in raw:
        raise where.at("required").fail("must be given (true or false)")
    required = _bool(where.at("required"), raw["required"])
    hint = _text(where.at("hint"), raw["hint"]) if "hint" in raw else None

    def only_for(key: str, kinds: Collection[str]) -> None:
        if key in raw and kind not in kinds:
            raise where.at(key).fail(f"not allowed on a field of type {kind}")

    only_for("options", {"enum"})
    only_for("fields", {"object"})
    only_for("items", {"list"})
    only_for("default", {"enum", "string"})
    only_for("prefill", LEAF_TYPES)
    if "rules" in raw and kind not in TYPE_RULES:
        raise where.at("rules").fail(f"a field of type {kind} takes no rules")

    options = _options(where.at("options"), raw.get("options")) if kind == "enum" else ()
    rules = _rules(where.at("rules"), kind, raw.get("rules"), required)
    children: tuple[FieldSpec, ...] = ()
    items: FieldSpec | None = None
    if kind == "object":
        children = _fields(where.at("fields"), raw.get("fields"), in_list=in_list)
    elif kind == "list":
        if "items" not in raw:
            raise where.at("items").fail("a list needs an items table")
        items = _field(where.at("items"), "items", raw["items"], in_list=True)

    prefill: str | None = None
    if "prefill" in raw:
        prefill = _text(where.at("prefill"), raw["prefill"])
        if prefill not in PREFILL_SOURCES:
            raise where.at("prefill").fail(f"{prefill!r} is not one of {sorted(PREFILL_SOURCES)}")
        if in_list:
            raise where.at("prefill").fail("fields inside a list cannot be prefilled")
    default: Any = None
    if "default" in raw:
        default = raw["default"]
        if kind == "enum" and default not in {v for v, _ in options}:
            raise where.at("default").fail(f"{default!r} is not one of the options")
        if kind == "string" and (
            not isinstance(default, str) or len(default) > rules["max_length"]
        ):
            raise where.at("default").fail("must be a string within max_length")
    return FieldSpec(
        name=name,
        type=kind,
        label=label,
        required=required,
        hint=hint,
        options=options,
        rules=rules,
        fields=children,
        items=items,
        prefill=prefill,
        default=default,
    )


def _fields(where: _Where, raw: Any, *, in_list: bool = False) -> tuple[FieldSpec, ...]:
    if not isinstance(raw, dict) or not raw:
        raise where.fail("must be a non-empty table of fields")
    specs = []
    for name, spec in raw.items():
        if not _FIELD_NAME.fullmatch(name):
            raise where.at(name).fail("field names are lower-case letters, digits and _")
        specs.append(_field(where.at(name), name, spec, in_list=in_list))
    return tuple(specs)


def parse_form(source: str, data: Mapping[str, Any], *, expected_code: str | None) -> FormSpec:
    """One catalogue file's content as a :class:`FormSpec`, or :class:`CatalogueError`."""
    where = _Where(source)
    _check_keys(where, data, _FORM_KEYS)
    code = _text(where.at("code"), data.get("code"))
    if not _CODE.fullmatch(code):
        raise where.at("code").fail("lower-case letters, digits and _, at most 48")
    if expected_code is not None and code != expected_code:
        raise where.at("code").fail(f"must match the file name ({expected_code!r})")
    title = _text(where.at("title"), data.get("title"))
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise where.at("version").fail("must be a positive integer")
    needs_taxpayer = _bool(where.at("needs_taxpayer"), data.get("needs_taxpayer"))

    permission = _text(where.at("permission"), data.get("permission"))
    if permission not in role_book().permissions:
        raise where.at("permission").fail(f"{permission!r} is not a permission in auth/roles.toml")

    kinds_raw = data.get("taxpayer_kinds")
    if kinds_raw == "any":
        kinds = tuple(TAXPAYER_KINDS)
    elif isinstance(kinds_raw, list) and kinds_raw:
        unknown = sorted(str(k) for k in set(kinds_raw) - set(TAXPAYER_KINDS))
        if unknown:
            raise where.at("taxpayer_kinds").fail(
                f"unknown kinds {unknown} (known: {sorted(TAXPAYER_KINDS)})"
            )
        kinds = tuple(k for k in TAXPAYER_KINDS if k in kinds_raw)
    else:
        raise where.at("taxpayer_kinds").fail('must be "any" or a non-empty list of kinds')
    if not needs_taxpayer and "natural_person" not in kinds:
        raise where.at("taxpayer_kinds").fail(
            "a form filed without a taxpayer is filed by a natural person: list natural_person"
        )

    rules_raw = data.get("rules", [])
    if not isinstance(rules_raw, list) or not all(isinstance(r, str) for r in rules_raw):
        raise where.at("rules").fail("must be a list of rule names")
    unknown_rules = sorted(set(rules_raw) - set(RULES))
    if unknown_rules:
        raise where.at("rules").fail(
            f"unknown rules {unknown_rules} (forms/rules.py has {sorted(RULES)})"
        )
    return FormSpec(
        code=code,
        title=title,
        version=version,
        needs_taxpayer=needs_taxpayer,
        permission=permission,
        taxpayer_kinds=kinds,
        fields=_fields(where.at("fields"), data.get("fields")),
        rules=tuple(rules_raw),
    )


def load_catalogue(directory: Traversable | Path) -> Catalogue:
    """Every ``*.toml`` in ``directory``, checked; :class:`CatalogueError` names the bad file."""
    files = sorted(
        (entry for entry in directory.iterdir() if entry.name.endswith(".toml")),
        key=lambda entry: entry.name,
    )
    if not files:
        raise CatalogueError(f"{directory}: no form files (*.toml)")
    forms = []
    for entry in files:
        source = f"{CATALOGUE_DIR}/{entry.name}"
        try:
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise CatalogueError(f"{source}: not valid TOML: {exc}") from exc
        forms.append(parse_form(source, data, expected_code=entry.name.removesuffix(".toml")))
    return Catalogue(forms)


@cache
def catalogue() -> Catalogue:
    """The packaged catalogue, read and checked on first use (the forms blueprint asks for it
    before the server starts, so a bad file stops start-up)."""
    return load_catalogue(resources.files("forms").joinpath(CATALOGUE_DIR))
