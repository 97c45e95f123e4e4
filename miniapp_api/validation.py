"""Parsing bodies at the edge: malformed JSON is 400, invalid values are 422 naming each field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sanic import Request

from miniapp_api.errors import ApiError, BadRequest, ValidationFailed

M = TypeVar("M", bound=BaseModel)

# The largest values the database columns hold: ids are BIGINT, versions INTEGER. A larger number
# in a body or path reached the driver and failed there (a 500, found by tests/fuzz); models
# bound their ints with these (``Field(ge=1, le=MAX_ID)``) and answer 422 instead.
MAX_ID = 2**63 - 1
MAX_INT = 2**31 - 1

# Pydantic's error types in the contract's language; anything else falls back to a general line.
_MESSAGES: dict[str, str] = {
    "missing": "必填",
    "extra_forbidden": "不允许的字段",
    "string_type": "应为字符串",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "string_pattern_mismatch": "格式不正确",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "float_parsing": "应为数字",
    "decimal_parsing": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "greater_than": "数值过小",
    "greater_than_equal": "数值过小",
    "less_than": "数值过大",
    "less_than_equal": "数值过大",
    "literal_error": "不是允许的取值",
    "enum": "不是允许的取值",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "datetime_parsing": "时间格式应为 ISO 8601",
    "list_type": "应为数组",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "too_short": "条目过少",
    "too_long": "条目过多",
}


def field_errors(exc: ValidationError) -> dict[str, str]:
    """``{"lines.0.amount": "应为数字"}``: one message per field path, the first one wins."""
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in error["loc"]) or "body"
        message = _MESSAGES.get(error["type"])
        if message is None:
            # A validator of ours raises ValueError with a Chinese message; pydantic prefixes it.
            message = str(error.get("msg", "取值无效")).removeprefix("Value error, ")
        fields.setdefault(path, message)
    return fields


# JSON bodies are forms, not files: anything larger is a mistake or an attack. Attachments have
# their own route and limit.
MAX_JSON_BYTES = 256 * 1024


def parse_body(request: Request, model: type[M], max_bytes: int = MAX_JSON_BYTES) -> M:
    """The JSON body as ``model``; 413 when too large, 400 when it is not a JSON object, 422 for
    invalid fields."""
    if len(request.body) > max_bytes:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"请求内容过大（上限 {max_bytes // 1024} KB）")
    try:
        payload: Any = request.json
    except Exception as exc:  # Sanic raises its own BadRequest; say it in the contract's shape
        raise BadRequest("请求体不是合法的 JSON") from exc
    if not isinstance(payload, dict):
        raise BadRequest("请求体应为 JSON 对象")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from exc


def parse_query(request: Request, model: type[M]) -> M:
    """Query parameters (first value of each) as ``model``; 422 for invalid ones."""
    values = {key: request.args.get(key) for key in request.args}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from exc
