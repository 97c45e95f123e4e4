"""The form catalogue: the packaged files load, say who may file what, publish a schema; a
malformed file is refused when the catalogue is read, naming the file and the key."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from auth.roles import role_book
from auth.taxpayers import TAXPAYER_KINDS
from forms import validation
from forms.catalogue import (
    FIELD_TYPES,
    LEAF_TYPES,
    CatalogueError,
    catalogue,
    load_catalogue,
    parse_form,
)
from forms.rules import RULES

PACKAGED = resources.files("forms").joinpath("catalogue")

MINIMAL = """
code = "{code}"
title = "测试文书"
version = 1
needs_taxpayer = true
permission = "forms.file"
taxpayer_kinds = "any"

[fields.name]
type = "string"
label = "名称"
required = true
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_packaged_catalogue_holds_both_forms() -> None:
    forms = {spec.code: spec for spec in catalogue().forms}
    assert set(forms) == {"proxy_invoice", "cross_region_report"}
    proxy, cross = forms["proxy_invoice"], forms["cross_region_report"]
    assert proxy.summary() == {
        "code": "proxy_invoice",
        "title": "代开增值税发票缴纳税款申报单",
        "version": 1,
        "needs_taxpayer": False,
    }
    assert cross.summary() == {
        "code": "cross_region_report",
        "title": "跨区域涉税事项报告表",
        "version": 1,
        "needs_taxpayer": True,
    }
    assert proxy.permission == "invoices.proxy"
    assert cross.permission == "forms.file"
    assert set(proxy.taxpayer_kinds) == {"natural_person", "small_scale", "individual_business"}
    assert "general" not in proxy.taxpayer_kinds
    assert set(cross.taxpayer_kinds) == set(TAXPAYER_KINDS)
    assert proxy.rules == ("no_special_invoice_to_natural_person",)
    assert cross.rules == ("contract_dates",)


def test_permissions_named_by_forms_exist_in_the_role_book() -> None:
    for spec in catalogue().forms:
        assert spec.permission in role_book().permissions


def test_catalogue_is_read_once_and_get_answers_none_for_unknown_codes() -> None:
    assert catalogue() is catalogue()
    assert catalogue().get("proxy_invoice") is catalogue().get("proxy_invoice")
    assert catalogue().get("no_such_form") is None


def test_every_field_type_has_a_validator() -> None:
    assert set(validation._LEAF_CHECKS) == set(LEAF_TYPES)
    assert {"object", "list"} | LEAF_TYPES == FIELD_TYPES


def test_the_proxy_invoice_schema_follows_the_contract_shape() -> None:
    schema = catalogue().get("proxy_invoice").schema()  # type: ignore[union-attr]
    fields = {f["name"]: f for f in schema["fields"]}
    assert list(fields) == ["invoice_kind", "location", "buyer", "lines", "remark"]
    assert fields["invoice_kind"]["options"] == [
        {"value": "general", "label": "增值税普通发票"},
        {"value": "special", "label": "增值税专用发票"},
    ]
    assert fields["invoice_kind"]["default"] == "general"
    assert [o["value"] for o in fields["location"]["options"]] == ["city", "county", "other"]
    buyer = {f["name"]: f for f in fields["buyer"]["fields"]}
    assert list(buyer) == ["name", "taxpayer_id", "address", "phone", "bank", "account"]
    assert buyer["name"]["required"] is True
    assert buyer["taxpayer_id"]["type"] == "taxpayer_id"
    assert buyer["phone"]["type"] == "phone"
    lines = fields["lines"]
    assert lines["type"] == "list"
    assert lines["rules"] == {"min_items": 1, "max_items": 8}
    items = {f["name"]: f for f in lines["items"]["fields"]}
    assert list(items) == [
        "name",
        "spec",
        "unit",
        "quantity",
        "unit_price",
        "amount_incl_tax",
        "rate",
    ]
    assert items["amount_incl_tax"] == {
        "name": "amount_incl_tax",
        "type": "money",
        "label": "含税金额",
        "required": True,
        "rules": {"min": "0.01", "max": "99999999.99"},
    }
    assert items["rate"]["rules"]["one_of"] == ["0.01", "0.015", "0.02", "0.03", "0.05"]
    assert items["rate"]["required"] is False
    assert schema["rules"] == [
        {
            "name": "no_special_invoice_to_natural_person",
            "description": RULES["no_special_invoice_to_natural_person"].description,
        }
    ]
    assert schema["permission"] == "invoices.proxy"
    assert {k["kind"] for k in schema["taxpayer_kinds"]} == {
        "natural_person",
        "small_scale",
        "individual_business",
    }


def test_the_cross_region_schema_follows_the_contract_shape() -> None:
    schema = catalogue().get("cross_region_report").schema()  # type: ignore[union-attr]
    fields = {f["name"]: f for f in schema["fields"]}
    assert list(fields) == ["address", "business_mode", "contract", "contact"]
    assert [o["value"] for o in fields["business_mode"]["options"]] == [
        "建筑安装",
        "装饰修饰",
        "修理修配",
        "加工",
        "批发",
        "零售",
        "批零兼营",
        "零批兼营",
        "其他",
    ]
    contract = {f["name"]: f for f in fields["contract"]["fields"]}
    assert list(contract) == [
        "name",
        "number",
        "amount",
        "start",
        "end",
        "counterparty_name",
        "counterparty_id",
    ]
    assert all(f["required"] for f in contract.values())
    assert contract["start"]["type"] == contract["end"]["type"] == "date"
    assert contract["amount"]["type"] == "money"
    contact = {f["name"]: f for f in fields["contact"]["fields"]}
    assert contact["name"]["prefill"] == "person.name"
    assert contact["phone"]["prefill"] == "person.phone"
    assert [r["name"] for r in schema["rules"]] == ["contract_dates"]


def test_string_fields_publish_their_default_length_limit() -> None:
    spec = parse_form("t.toml", tomllib.loads(MINIMAL.format(code="t")), expected_code="t")
    assert spec.schema()["fields"][0]["rules"] == {"max_length": 200}


def test_a_schema_is_a_copy_the_caller_may_change() -> None:
    spec = catalogue().get("proxy_invoice")
    assert spec is not None
    schema = spec.schema()
    rate = schema["fields"][3]["items"]["fields"][6]
    rate["rules"]["one_of"].append("0.99")
    rate["rules"]["max"] = "1"
    assert spec.schema()["fields"][3]["items"]["fields"][6]["rules"] == {
        "one_of": ["0.01", "0.015", "0.02", "0.03", "0.05"]
    }


def test_the_packaged_files_are_named_for_their_codes() -> None:
    names = sorted(entry.name for entry in PACKAGED.iterdir() if entry.name.endswith(".toml"))
    assert names == ["cross_region_report.toml", "proxy_invoice.toml"]
    for name in names:
        data = tomllib.loads(PACKAGED.joinpath(name).read_text(encoding="utf-8"))
        assert data["code"] == name.removesuffix(".toml")


def test_a_new_form_is_a_new_file(tmp_path: Path) -> None:
    write(tmp_path, "a_form.toml", MINIMAL.format(code="a_form"))
    write(tmp_path, "b_form.toml", MINIMAL.format(code="b_form"))
    write(tmp_path, "README.md", "not a form")
    loaded = load_catalogue(tmp_path)
    assert [spec.code for spec in loaded.forms] == ["a_form", "b_form"]


BAD_FILES = [
    pytest.param(
        MINIMAL.replace('type = "string"', 'type = "text"'),
        "fields.name.type: 'text' is not one of",
        id="unknown type",
    ),
    pytest.param(
        MINIMAL.replace("required = true", "requird = true"),
        "fields.name: unknown keys ['requird']",
        id="misspelt key",
    ),
    pytest.param(
        MINIMAL.replace("required = true", ""),
        "fields.name.required: must be given",
        id="required left out",
    ),
    pytest.param(
        MINIMAL.replace('taxpayer_kinds = "any"', 'taxpayer_kinds = "any"\nrules = ["no_rule"]'),
        "rules: unknown rules ['no_rule']",
        id="unknown rule",
    ),
    pytest.param(
        MINIMAL.replace('"forms.file"', '"forms.fly"'),
        "permission: 'forms.fly' is not a permission in auth/roles.toml",
        id="unknown permission",
    ),
    pytest.param(
        MINIMAL.replace('"any"', '["natural_person", "giant"]'),
        "taxpayer_kinds: unknown kinds ['giant']",
        id="unknown taxpayer kind",
    ),
    pytest.param(
        MINIMAL.replace("needs_taxpayer = true", "needs_taxpayer = false").replace(
            '"any"', '["small_scale"]'
        ),
        "a form filed without a taxpayer is filed by a natural person",
        id="no taxpayer but no natural person",
    ),
    pytest.param(
        MINIMAL.replace("version = 1", 'version = "1"'),
        "version: must be a positive integer",
        id="version as text",
    ),
    pytest.param(
        MINIMAL.replace('type = "string"', 'type = "enum"'),
        "fields.name.options: an enum needs a non-empty table of options",
        id="enum without options",
    ),
    pytest.param(
        MINIMAL.replace('type = "string"', 'type = "list"'),
        "fields.name.items: a list needs an items table",
        id="list without items",
    ),
    pytest.param(
        MINIMAL.replace('type = "string"', 'type = "money"') + "rules = { max = 100.5 }\n",
        'fields.name.rules.max: must be a decimal written as a string, e.g. "0.01"',
        id="money bound as a float",
    ),
    pytest.param(
        MINIMAL.replace('type = "string"', 'type = "money"') + 'rules = { max = "1.005" }\n',
        "fields.name.rules.max: must be an amount ≥ 0 with at most two decimals",
        id="money bound with three decimals",
    ),
    pytest.param(
        MINIMAL + "rules = { max_items = 3 }\n",
        "fields.name.rules: unknown keys ['max_items']",
        id="rule of another type",
    ),
    pytest.param(
        MINIMAL + 'rules = { pattern = "[0-9" }\n',
        "fields.name.rules.pattern: not a regular expression",
        id="broken pattern",
    ),
    pytest.param(
        MINIMAL + 'prefill = "person.id_number"\n',
        "fields.name.prefill: 'person.id_number' is not one of",
        id="unknown prefill source",
    ),
    pytest.param(
        MINIMAL.replace('type = "string"', 'type = "enum"')
        + 'options = { a = "甲" }\ndefault = "b"\n',
        "fields.name.default: 'b' is not one of the options",
        id="default not an option",
    ),
    pytest.param(
        MINIMAL
        + '\n[fields.items]\ntype = "list"\nlabel = "行"\nrequired = true\n'
        + '[fields.items.items]\ntype = "object"\nlabel = "行"\nrequired = true\n'
        + '[fields.items.items.fields.who]\ntype = "string"\nlabel = "谁"\nrequired = true\n'
        + 'prefill = "person.name"\n',
        "fields.items.items.fields.who.prefill: fields inside a list cannot be prefilled",
        id="prefill inside a list",
    ),
    pytest.param(
        MINIMAL + '\n[fields.Bad-Name]\ntype = "string"\nlabel = "x"\nrequired = true\n',
        "fields.Bad-Name: field names are lower-case letters",
        id="bad field name",
    ),
    pytest.param(
        MINIMAL.replace('title = "测试文书"', 'title = ""'),
        "title: must be a non-empty string",
        id="empty title",
    ),
    pytest.param(MINIMAL + "\nextra = 1\n", "unknown keys ['extra']", id="unknown top-level key"),
    pytest.param("code = ", "not valid TOML", id="not TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_a_bad_catalogue_file_is_refused_at_load_with_a_clear_message(
    tmp_path: Path, text: str, message: str
) -> None:
    write(tmp_path, "good.toml", MINIMAL.format(code="good"))
    write(tmp_path, "bad_form.toml", text.replace("{code}", "bad_form"))
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(tmp_path)
    assert str(caught.value).startswith("catalogue/bad_form.toml: ")
    assert message in str(caught.value)


def test_a_file_must_be_named_for_its_code(tmp_path: Path) -> None:
    write(tmp_path, "other.toml", MINIMAL.format(code="mine"))
    with pytest.raises(CatalogueError, match=r"other\.toml: code: must match the file name"):
        load_catalogue(tmp_path)


def test_an_empty_catalogue_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="no form files"):
        load_catalogue(tmp_path)
