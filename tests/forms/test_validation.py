"""Validating form data against the catalogue: every problem collected at once under its path,
values cleaned, identifiers through python-stdnum, the cross-field rules, and prefill."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forms.catalogue import FormSpec, catalogue, parse_form
from forms.rules import is_natural_person_id, report_validity
from forms.validation import (
    FilingContext,
    FormInvalid,
    PersonFacts,
    TaxpayerFacts,
    prefill,
    validate,
)

TODAY = date(2026, 3, 10)
PERSON = FilingContext(seller_kind="natural_person", today=TODAY)
USCC = "91350100M000100Y43"  # GB 32100-2015's standard example
RIC = "11010519491231002X"  # GB 11643-1999's standard example
CHEN = "44010319850612301X"
LIN = "440103199003152024"
PHONE_ERROR = "应为手机号码或带区号的固定电话，如 13800138000 或 020-83331234"
TAXPAYER_ID_18 = "无效：18 位的须为有效的统一社会信用代码或身份证号码"


def ric(body: str) -> str:
    """A resident ID number with its GB 11643 check character."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def form(code: str) -> FormSpec:
    spec = catalogue().get(code)
    assert spec is not None
    return spec


def proxy_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "invoice_kind": "general",
        "location": "city",
        "buyer": {"name": "广州示例科技有限公司", "taxpayer_id": USCC},
        "lines": [{"name": "咨询服务", "amount_incl_tax": "5050.00"}],
    }
    data.update(changes)
    return data


def cross_data(**contract: Any) -> dict[str, Any]:
    return {
        "address": "佛山市南海区桂城街道示例路1号",
        "business_mode": "建筑安装",
        "contract": {
            "name": "示例工程施工合同",
            "number": "HT-2026-001",
            "amount": "1200000.00",
            "start": "2026-03-15",
            "end": "2026-09-30",
            "counterparty_name": "佛山示例建设有限公司",
            "counterparty_id": USCC,
        }
        | contract,
        "contact": {"name": "陈明", "phone": "13800138000"},
    }


def errors(spec: FormSpec, data: Any, context: FilingContext = PERSON) -> dict[str, str]:
    with pytest.raises(FormInvalid) as caught:
        validate(spec, data, context=context)
    return caught.value.fields


def clean_line(line: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = proxy_data(lines=[line])
    data.update(changes)
    return validate(form("proxy_invoice"), data, context=PERSON)["lines"][0]  # type: ignore[no-any-return]


def line_error(line: dict[str, Any]) -> dict[str, str]:
    return errors(form("proxy_invoice"), proxy_data(lines=[line]))


# A form with the types the two packaged forms do not use, as a catalogue file would say it.
ALL_TYPES = parse_form(
    "all_types.toml",
    tomllib.loads(
        """
code = "all_types"
title = "类型测试"
version = 1
needs_taxpayer = true
permission = "forms.file"
taxpayer_kinds = "any"

[fields.credit_code]
type = "uscc"
label = "统一社会信用代码"
required = false

[fields.id_number]
type = "id_number"
label = "身份证号码"
required = false

[fields.count]
type = "integer"
label = "人数"
required = false
rules = { min = 1, max = 500 }

[fields.code]
type = "string"
label = "代码"
required = false
rules = { min_length = 2, max_length = 6, pattern = "[A-Z]+" }
"""
    ),
    expected_code=None,
)


# --------------------------------------------------------------------------- whole forms


def test_the_contracts_proxy_invoice_passes_and_comes_back_cleaned() -> None:
    data = {
        "invoice_kind": " special ",
        "location": "county",
        "buyer": {
            "name": "  广州示例科技有限公司 ",
            "taxpayer_id": "91350100m000100y43",
            "address": "广州市荔湾区示例路2号",
            "phone": "020-83331234",
            "bank": "中国工商银行广州荔湾支行",
            "account": "3602000109000012345",
        },
        "lines": [
            {
                "name": "设计服务",
                "spec": "A1",
                "unit": "项",
                "quantity": "2.50",
                "unit_price": 2020,
                "amount_incl_tax": " 5050 ",
                "rate": "0.010",
            },
            {"name": "咨询服务", "amount_incl_tax": "12.5"},
        ],
        "remark": "  合同号 HT-1 ",
    }
    assert validate(form("proxy_invoice"), data, context=PERSON) == {
        "invoice_kind": "special",
        "location": "county",
        "buyer": {
            "name": "广州示例科技有限公司",
            "taxpayer_id": USCC,
            "address": "广州市荔湾区示例路2号",
            "phone": "020-83331234",
            "bank": "中国工商银行广州荔湾支行",
            "account": "3602000109000012345",
        },
        "lines": [
            {
                "name": "设计服务",
                "spec": "A1",
                "unit": "项",
                "quantity": "2.5",
                "unit_price": "2020",
                "amount_incl_tax": "5050.00",
                "rate": "0.01",
            },
            {"name": "咨询服务", "amount_incl_tax": "12.50"},
        ],
        "remark": "合同号 HT-1",
    }


def test_the_contracts_cross_region_report_passes_and_comes_back_cleaned() -> None:
    data = cross_data(counterparty_id=" 91350100m000100y43 ", amount="1200000")
    data["contact"]["phone"] = "138 0013 8000"
    clean = validate(form("cross_region_report"), data, context=PERSON)
    assert clean["contract"]["counterparty_id"] == USCC
    assert clean["contract"]["amount"] == "1200000.00"
    assert clean["contact"] == {"name": "陈明", "phone": "13800138000"}
    assert clean["business_mode"] == "建筑安装"


def test_validation_does_not_change_the_callers_data() -> None:
    data = proxy_data(remark="  备注  ")
    before = copy.deepcopy(data)
    validate(form("proxy_invoice"), data, context=PERSON)
    assert data == before


def test_every_error_is_reported_at_once() -> None:
    data = {
        "invoice_kind": "vip",
        "location": "city",
        "buyer": {"name": "", "taxpayer_id": "91350100M000100Y44", "phone": "12345"},
        "lines": [
            {"name": "咨询", "amount_incl_tax": "1.001"},
            {"name": "设计", "amount_incl_tax": "-1", "rate": "0.04"},
            "not a line",
        ],
        "remark": "a\nb",
        "seller": {"name": "我"},
    }
    assert errors(form("proxy_invoice"), data) == {
        "seller": "不允许的字段",
        "invoice_kind": "发票种类只能选择：「增值税普通发票」「增值税专用发票」",
        "buyer.name": "请填写购买方名称",
        "buyer.taxpayer_id": "购买方纳税人识别号" + TAXPAYER_ID_18,
        "buyer.phone": "购买方电话" + PHONE_ERROR,
        "lines.0.amount_incl_tax": "含税金额最多保留两位小数",
        "lines.1.amount_incl_tax": "含税金额须大于 0",
        "lines.1.rate": "征收率只能是 0.01、0.015、0.02、0.03、0.05 之一",
        "lines.2": "明细行应为对象",
        "remark": "备注不能包含换行或控制字符",
    }


def test_every_error_of_the_cross_region_report_is_reported_at_once() -> None:
    data = cross_data(start="2026-13-01", end="2026/09/30", amount="0.00", counterparty_id="123")
    data["business_mode"] = "批发零售"
    data["contact"] = {"name": "  ", "phone": "020-1234"}
    assert errors(form("cross_region_report"), data) == {
        "business_mode": (
            "经营方式只能选择：「建筑安装」「装饰修饰」「修理修配」「加工」「批发」「零售」"
            "「批零兼营」「零批兼营」「其他」"
        ),
        "contract.amount": "合同金额须大于 0",
        "contract.start": "合同有效期起不是有效的日期",
        "contract.end": "合同有效期止格式应为 YYYY-MM-DD",
        "contract.counterparty_id": "合同相对方纳税人识别号应为 15、17、18 或 20 位",
        "contact.name": "请填写经办人姓名",
        "contact.phone": "经办人联系电话" + PHONE_ERROR,
    }


def test_an_empty_form_names_each_required_field() -> None:
    assert errors(form("proxy_invoice"), {}) == {
        "invoice_kind": "请填写发票种类",
        "location": "请填写经营地所在区域",
        "buyer": "请填写购买方",
        "lines": "请填写货物、劳务或服务明细",
    }
    assert errors(form("cross_region_report"), {"contract": {}, "contact": None}) == {
        "address": "请填写跨区域经营地址",
        "business_mode": "请填写经营方式",
        "contract.name": "请填写合同名称",
        "contract.number": "请填写合同编号",
        "contract.amount": "请填写合同金额",
        "contract.start": "请填写合同有效期起",
        "contract.end": "请填写合同有效期止",
        "contract.counterparty_name": "请填写合同相对方名称",
        "contract.counterparty_id": "请填写合同相对方纳税人识别号",
        "contact": "请填写经办人",
    }


@pytest.mark.parametrize("data", [None, [], "proxy", 42])
def test_data_that_is_not_an_object_is_refused(data: Any) -> None:
    assert errors(form("proxy_invoice"), data) == {"data": "表单数据应为对象"}


def test_unknown_fields_are_refused_wherever_they_are() -> None:
    data = proxy_data(extra=1)
    data["buyer"]["email"] = "a@example.com"
    data["lines"][0]["discount"] = "1.00"
    assert errors(form("proxy_invoice"), data) == {
        "extra": "不允许的字段",
        "buyer.email": "不允许的字段",
        "lines.0.discount": "不允许的字段",
    }


def test_a_very_long_unknown_key_is_cut_in_the_answer() -> None:
    assert errors(form("proxy_invoice"), proxy_data(**{"k" * 500: 1})) == {"k" * 64: "不允许的字段"}


def test_empty_optional_fields_are_left_out_of_the_cleaned_data() -> None:
    data = proxy_data(remark="   ")
    data["buyer"].update(address="", phone=None, bank=" ")
    clean = validate(form("proxy_invoice"), data, context=PERSON)
    assert "remark" not in clean
    assert clean["buyer"] == {"name": "广州示例科技有限公司", "taxpayer_id": USCC}


def test_objects_and_lists_must_have_their_shape() -> None:
    assert errors(form("proxy_invoice"), proxy_data(buyer="张三", lines={"name": "x"})) == {
        "buyer": "购买方应为对象",
        "lines": "货物、劳务或服务明细应为列表",
    }


def test_list_length_limits() -> None:
    line = {"name": "咨询", "amount_incl_tax": "1.00"}
    assert errors(form("proxy_invoice"), proxy_data(lines=[])) == {
        "lines": "请填写货物、劳务或服务明细"
    }
    assert errors(form("proxy_invoice"), proxy_data(lines=[line] * 9)) == {
        "lines": "货物、劳务或服务明细最多 8 项"
    }
    assert (
        len(validate(form("proxy_invoice"), proxy_data(lines=[line] * 8), context=PERSON)["lines"])
        == 8
    )
    assert errors(form("proxy_invoice"), proxy_data(lines=[line, None])) == {
        "lines.1": "请填写明细行"
    }


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [
        ("5050.00", "5050.00"),
        ("  12.5 ", "12.50"),
        ("7", "7.00"),
        ("0.01", "0.01"),
        ("007.10", "7.10"),
        ("1.100", "1.10"),
        ("99999999.99", "99999999.99"),
    ],
)
def test_money_is_normalised_to_two_decimals(given: str, cleaned: str) -> None:
    assert clean_line({"name": "x", "amount_incl_tax": given})["amount_incl_tax"] == cleaned


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("0.00", "含税金额须大于 0"),
        ("0", "含税金额须大于 0"),
        ("-1", "含税金额须大于 0"),
        ("-0.001", "含税金额须大于 0"),
        ("1.001", "含税金额最多保留两位小数"),
        ("0.001", "含税金额最多保留两位小数"),
        ("1e3", "含税金额格式不正确，应为数字，如 5050.00"),
        ("1,000.00", "含税金额格式不正确，应为数字，如 5050.00"),
        ("+5", "含税金额格式不正确，应为数字，如 5050.00"),
        ("NaN", "含税金额格式不正确，应为数字，如 5050.00"),
        ("５０", "含税金额格式不正确，应为数字，如 5050.00"),
        ("12.", "含税金额格式不正确，应为数字，如 5050.00"),
        ("100000000.00", "含税金额不能超过 99999999.99"),
        ("9" * 60, "含税金额不能超过 99999999.99"),
        (5050, '含税金额应以文本填写，如 "5050.00"'),
        (50.5, '含税金额应以文本填写，如 "5050.00"'),
        ("", "请填写含税金额"),
        ("   ", "请填写含税金额"),
    ],
)
def test_bad_money_is_refused_with_the_reason(given: Any, message: str) -> None:
    assert line_error({"name": "x", "amount_incl_tax": given}) == {
        "lines.0.amount_incl_tax": message
    }


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2))
def test_any_amount_in_range_comes_back_as_itself(amount: Decimal) -> None:
    assert clean_line({"name": "x", "amount_incl_tax": str(amount)})["amount_incl_tax"] == (
        f"{amount:.2f}"
    )


def test_a_field_may_raise_the_default_money_cap() -> None:
    big = cross_data(amount="1500000000.00")
    assert validate(form("cross_region_report"), big, context=PERSON)["contract"]["amount"] == (
        "1500000000.00"
    )
    assert errors(form("cross_region_report"), cross_data(amount="100000000000.00")) == {
        "contract.amount": "合同金额不能超过 99999999999.99"
    }


# --------------------------------------------------------------------------- decimals


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [("0.03", "0.03"), (0.01, "0.01"), ("0.010", "0.01"), (0.015, "0.015"), ("0.05", "0.05")],
)
def test_a_line_rate_is_one_of_the_levy_rates(given: Any, cleaned: str) -> None:
    assert clean_line({"name": "x", "amount_incl_tax": "1.00", "rate": given})["rate"] == cleaned


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (0.04, "征收率只能是 0.01、0.015、0.02、0.03、0.05 之一"),
        ("0.13", "征收率只能是 0.01、0.015、0.02、0.03、0.05 之一"),
        ("3%", "征收率格式不正确，应为数字，如 0.03"),
        (True, "征收率应为数字"),
        (float("inf"), "征收率应为数字"),
        ([0.03], "征收率应为数字"),
    ],
)
def test_a_line_rate_outside_the_levy_rates_is_refused(given: Any, message: str) -> None:
    assert line_error({"name": "x", "amount_incl_tax": "1.00", "rate": given}) == {
        "lines.0.rate": message
    }


def test_a_line_without_a_rate_is_fine() -> None:
    assert "rate" not in clean_line({"name": "x", "amount_incl_tax": "1.00", "rate": None})


def test_quantity_and_unit_price_limits() -> None:
    assert (
        clean_line({"name": "x", "amount_incl_tax": "1.00", "quantity": "0003.5000"})["quantity"]
        == "3.5"
    )
    assert line_error(
        {"name": "x", "amount_incl_tax": "1.00", "quantity": "0", "unit_price": "1.123456789"}
    ) == {
        "lines.0.quantity": "数量须大于 0",
        "lines.0.unit_price": "单价最多保留 8 位小数",
    }
    assert line_error({"name": "x", "amount_incl_tax": "1.00", "quantity": "100000000"}) == {
        "lines.0.quantity": "数量不能超过 99999999"
    }


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [
        (USCC, USCC),
        ("91350100m000100y43", USCC),
        (" 9135 0100 M000 100Y43 ", USCC),
        ("91440103MA59D8QK16", "91440103MA59D8QK16"),
        (RIC, RIC),
        ("11010519491231002x", RIC),  # a natural person's ID number serves as their id
        ("44010371234567X", "44010371234567X"),  # 15: region + organisation code
        (RIC + "01", RIC + "01"),  # 20: ID number + sequence (个体户)
    ],
)
def test_valid_taxpayer_ids(given: str, cleaned: str) -> None:
    data = cross_data(counterparty_id=given)
    assert (
        validate(form("cross_region_report"), data, context=PERSON)["contract"]["counterparty_id"]
        == cleaned
    )


@pytest.mark.parametrize("given", ["440103712345678", "11010549123100201", LIN + "01"])
def test_all_digit_taxpayer_ids_of_15_17_or_20_characters_are_valid(given: str) -> None:
    validate(form("cross_region_report"), cross_data(counterparty_id=given), context=PERSON)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            "91350100M000100Y44",
            "合同相对方纳税人识别号" + TAXPAYER_ID_18,
        ),
        (
            "110105194912310021",
            "合同相对方纳税人识别号" + TAXPAYER_ID_18,
        ),
        ("123", "合同相对方纳税人识别号应为 15、17、18 或 20 位"),
        ("44010371234567Ｘ", "合同相对方纳税人识别号只能包含数字和大写字母"),
        ("4401037123456-X", "合同相对方纳税人识别号只能包含数字和大写字母"),
        (91350100, "合同相对方纳税人识别号应为文本"),
    ],
)
def test_invalid_taxpayer_ids(given: Any, message: str) -> None:
    assert errors(form("cross_region_report"), cross_data(counterparty_id=given)) == {
        "contract.counterparty_id": message
    }


def test_uscc_fields_go_through_stdnum() -> None:
    assert validate(ALL_TYPES, {"credit_code": " 91350100m000100y43"}, context=PERSON) == {
        "credit_code": USCC
    }
    assert errors(ALL_TYPES, {"credit_code": "91350100M000100Y44"}) == {
        "credit_code": "统一社会信用代码校验位不正确"
    }
    assert errors(ALL_TYPES, {"credit_code": "91350100M000100Y4"}) == {
        "credit_code": "统一社会信用代码应为 18 位"
    }
    # I, O, S, V and Z are not in the GB 32100 alphabet.
    assert errors(ALL_TYPES, {"credit_code": "91350100I000100Y43"}) == {
        "credit_code": "统一社会信用代码格式不正确"
    }
    # An ID number is not a USCC, though both have 18 characters.
    assert "credit_code" in errors(ALL_TYPES, {"credit_code": RIC})


def test_id_number_fields_go_through_stdnum() -> None:
    assert validate(ALL_TYPES, {"id_number": "11010519491231002x"}, context=PERSON) == {
        "id_number": RIC
    }
    assert validate(ALL_TYPES, {"id_number": CHEN}, context=PERSON) == {"id_number": CHEN}
    assert errors(ALL_TYPES, {"id_number": "110105194912310021"}) == {
        "id_number": "居民身份证号码校验位不正确"
    }
    assert errors(ALL_TYPES, {"id_number": "1101051949123100"}) == {
        "id_number": "居民身份证号码应为 18 位"
    }
    assert errors(ALL_TYPES, {"id_number": USCC}) == {"id_number": "居民身份证号码格式不正确"}
    # Born after the day it is judged on.
    born_later = ric("11010520300101002")
    assert errors(ALL_TYPES, {"id_number": born_later}) == {"id_number": "证件号码中的出生日期无效"}


def test_integers_and_string_rules() -> None:
    assert validate(ALL_TYPES, {"count": " 12 ", "code": "ABC"}, context=PERSON) == {
        "count": 12,
        "code": "ABC",
    }
    assert errors(ALL_TYPES, {"count": 0, "code": "A"}) == {
        "count": "人数不能小于 1",
        "code": "代码至少 2 个字",
    }
    assert errors(ALL_TYPES, {"count": "1.5", "code": "abc"}) == {
        "count": "人数应为整数",
        "code": "代码格式不正确",
    }
    assert errors(ALL_TYPES, {"count": True, "code": "ABCDEFG"}) == {
        "count": "人数应为整数",
        "code": "代码不能超过 6 个字",
    }
    assert errors(ALL_TYPES, {"count": 501, "code": 12}) == {
        "count": "人数不能超过 500",
        "code": "代码应为文本",
    }


def test_strings_are_limited_in_length() -> None:
    data = proxy_data(remark="字" * 201)
    assert errors(form("proxy_invoice"), data) == {"remark": "备注不能超过 200 个字"}
    assert validate(form("proxy_invoice"), proxy_data(remark="字" * 200), context=PERSON)


# --------------------------------------------------------------------------- dates and phones


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("2026-02-30", "合同有效期止不是有效的日期"),
        ("20260930", "合同有效期止格式应为 YYYY-MM-DD"),
        ("2026/09/30", "合同有效期止格式应为 YYYY-MM-DD"),
        ("2026-9-30", "合同有效期止格式应为 YYYY-MM-DD"),
        ("2026-09-30T00:00:00", "合同有效期止格式应为 YYYY-MM-DD"),
        (20260930, "合同有效期止格式应为 YYYY-MM-DD"),
    ],
)
def test_dates_are_iso_calendar_dates(given: Any, message: str) -> None:
    assert errors(form("cross_region_report"), cross_data(end=given)) == {"contract.end": message}


def test_a_date_is_stripped() -> None:
    clean = validate(form("cross_region_report"), cross_data(end=" 2026-09-30 "), context=PERSON)
    assert clean["contract"]["end"] == "2026-09-30"


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [
        ("13800138000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("19912345678", "19912345678"),
        ("020-83331234", "020-83331234"),
        ("02083331234", "020-83331234"),
        ("(020)83331234", "020-83331234"),
        ("（010）62345678", "010-62345678"),
        ("0757-8123456", "0757-8123456"),
        ("07578123456", "0757-8123456"),
        ("020-83331234-808", "020-83331234-808"),
        ("020-83331234转808", "020-83331234-808"),
    ],
)
def test_phones_mobile_or_landline_with_area_code(given: str, cleaned: str) -> None:
    data = cross_data()
    data["contact"]["phone"] = given
    assert validate(form("cross_region_report"), data, context=PERSON)["contact"]["phone"] == (
        cleaned
    )


@pytest.mark.parametrize(
    "given", ["12345678901", "1380013800", "138001380001", "83331234", "020-0333123", "phone", "0"]
)
def test_bad_phones_are_refused(given: str) -> None:
    data = cross_data()
    data["contact"]["phone"] = given
    assert errors(form("cross_region_report"), data) == {
        "contact.phone": "经办人联系电话" + PHONE_ERROR
    }


# --------------------------------------------------------------------------- cross-field rules


def special(taxpayer_id: str | None) -> dict[str, Any]:
    buyer: dict[str, Any] = {"name": "张三"}
    if taxpayer_id is not None:
        buyer["taxpayer_id"] = taxpayer_id
    return proxy_data(invoice_kind="special", buyer=buyer)


def test_no_special_invoice_to_a_buyer_identified_by_an_id_number() -> None:
    assert errors(form("proxy_invoice"), special(RIC)) == {
        "invoice_kind": "购买方为自然人，不能开具增值税专用发票"
    }
    assert errors(form("proxy_invoice"), special(CHEN.lower())) == {
        "invoice_kind": "购买方为自然人，不能开具增值税专用发票"
    }


def test_no_special_invoice_to_a_buyer_without_a_taxpayer_id() -> None:
    assert errors(form("proxy_invoice"), special(None)) == {
        "buyer.taxpayer_id": "开具增值税专用发票须填写购买方纳税人识别号"
    }
    assert errors(form("proxy_invoice"), special("  ")) == {
        "buyer.taxpayer_id": "开具增值税专用发票须填写购买方纳税人识别号"
    }


def test_a_special_invoice_to_an_enterprise_is_fine() -> None:
    assert validate(form("proxy_invoice"), special(USCC), context=PERSON)["invoice_kind"] == (
        "special"
    )
    # A 个体户's 20-character id is a taxpayer, not a natural person.
    assert validate(form("proxy_invoice"), special(RIC + "01"), context=PERSON)


def test_a_general_invoice_to_a_natural_person_is_fine() -> None:
    for taxpayer_id in (RIC, None):
        data = special(taxpayer_id)
        data["invoice_kind"] = "general"
        assert validate(form("proxy_invoice"), data, context=PERSON)["invoice_kind"] == "general"


def test_a_rule_says_nothing_where_the_field_already_failed() -> None:
    # The buyer's id is invalid: its own message stands, the rule does not add "须填写".
    assert errors(form("proxy_invoice"), special("123")) == {
        "buyer.taxpayer_id": "购买方纳税人识别号应为 15、17、18 或 20 位"
    }
    assert errors(form("proxy_invoice"), proxy_data(invoice_kind="special", buyer=None)) == {
        "buyer": "请填写购买方"
    }


def test_natural_person_ids() -> None:
    assert is_natural_person_id(RIC)
    assert not is_natural_person_id(USCC)
    assert not is_natural_person_id(RIC + "01")
    assert not is_natural_person_id("110105194912310021")


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-09-30", "2026-03-15", "合同有效期止须晚于有效期起"),
        ("2026-03-15", "2026-03-15", "合同有效期止须晚于有效期起"),
        ("2025-01-01", "2026-03-10", "合同有效期止须晚于今天"),
        ("2025-01-01", "2025-12-31", "合同有效期止须晚于今天"),
        ("2025-12-31", "2025-01-01", "合同有效期止须晚于有效期起"),
    ],
)
def test_contract_dates(start: str, end: str, message: str) -> None:
    assert errors(form("cross_region_report"), cross_data(start=start, end=end)) == {
        "contract.end": message
    }


def test_a_contract_already_running_may_be_reported_from_today() -> None:
    data = cross_data(start="2026-01-01", end="2026-03-11")
    clean = validate(form("cross_region_report"), data, context=PERSON)
    assert clean["contract"]["start"] == "2026-01-01"
    assert report_validity(date(2026, 1, 1), date(2026, 3, 11), TODAY) == (
        TODAY,
        date(2026, 3, 11),
    )
    assert report_validity(date(2026, 4, 1), date(2026, 9, 30), TODAY) == (
        date(2026, 4, 1),
        date(2026, 9, 30),
    )


def test_contract_rules_judge_by_the_contexts_day() -> None:
    data = cross_data(start="2026-03-15", end="2026-09-30")
    later = dataclasses.replace(PERSON, today=date(2026, 10, 1))
    assert errors(form("cross_region_report"), data, later) == {
        "contract.end": "合同有效期止须晚于今天"
    }


def test_a_bad_date_is_not_also_judged_by_the_contract_rule() -> None:
    assert errors(form("cross_region_report"), cross_data(start="2026-02-30")) == {
        "contract.start": "合同有效期起不是有效的日期"
    }


def test_the_filing_context_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PERSON.today = date(2000, 1, 1)  # type: ignore[misc]


# --------------------------------------------------------------------------- prefill


def test_cross_region_contact_is_prefilled_from_the_person() -> None:
    taxpayer = TaxpayerFacts(
        name="广州荔湾示例贸易有限公司", taxpayer_id="91440103MA59D8QK16", kind="small_scale"
    )
    person = PersonFacts(name="陈明", phone="13800138000")
    assert prefill(form("cross_region_report"), taxpayer=taxpayer, person=person) == {
        "contact": {"name": "陈明", "phone": "13800138000"}
    }
    assert prefill(
        form("cross_region_report"), taxpayer=taxpayer, person=PersonFacts("陈明", None)
    ) == {"contact": {"name": "陈明"}}
    assert prefill(form("cross_region_report"), taxpayer=taxpayer, person=None) == {}


def test_proxy_invoice_prefill_is_its_defaults() -> None:
    person = PersonFacts(name="陈明", phone="13800138000")
    assert prefill(form("proxy_invoice"), taxpayer=None, person=person) == {
        "invoice_kind": "general"
    }


def test_a_prefilled_draft_completed_by_the_person_validates() -> None:
    draft = prefill(
        form("cross_region_report"), taxpayer=None, person=PersonFacts("陈明", "13800138000")
    )
    data = cross_data()
    data["contact"] = draft["contact"]
    assert (
        validate(form("cross_region_report"), data, context=PERSON)["contact"] == draft["contact"]
    )
