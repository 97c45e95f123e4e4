"""OpenAPI definitions for routes, built from the same pydantic models the routes validate with.

``@doc(...)`` is ``sanic_ext.openapi.definition`` with the parts every route repeats filled in:
the request body and query parameters from the route's models, the success answer, and the error
answers in the contract's shape (the shared ``Error`` schema component, see docs API.md).

sanic-ext emits OpenAPI 3.0, while pydantic writes JSON Schema 2020-12; :func:`schema_of` turns
one into the other (``$defs`` inlined, ``null`` in unions as ``nullable``, ``const`` as ``enum``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel
from sanic_ext import openapi
from sanic_ext.extensions.openapi import definitions
from sanic_ext.extensions.openapi.builders import SpecificationBuilder

T = TypeVar("T")
Schema = dict[str, Any]

ERROR_SCHEMA: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
                "message": {"type": "string", "minLength": 1},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "request_id": {"type": "string"},
            },
        }
    },
}
ERROR_REF: Schema = {"$ref": "#/components/schemas/Error"}

# The one builder sanic-ext keeps for the process; the component is the same for every app.
SpecificationBuilder().add_component("schemas", "Error", ERROR_SCHEMA)

OBJECT: Schema = {"type": "object"}
LIST: Schema = {"type": "array", "items": {"type": "object"}}
BINARY: Schema = {"type": "string", "format": "binary"}
TEXT: Schema = {"type": "string"}
UPLOAD: Schema = {
    "type": "object",
    "required": ["file"],
    "properties": {"file": BINARY},
}
# What attachments are stored as (forms/attachments.py sniffs the bytes).
ATTACHMENT_TYPES = ("application/pdf", "image/jpeg", "image/png")

_ERROR_MEANING = {
    400: "Malformed request (not JSON, not an object, bad header)",
    401: "Not signed in, or the session ended",
    403: "Signed in but not allowed",
    404: "No such resource, or not yours",
    409: "Conflicts with the current state (stale version, already done)",
    413: "Request body too large",
    422: "Invalid fields, each named in `fields`",
    429: "Too many requests; see Retry-After",
    503: "A dependency (database, Redis, WeChat) is down; see Retry-After",
}
# Every route may answer these: bad input, unknown ids, rate limits, a dependency down.
BASE_ERRORS = (400, 404, 422, 429, 503)
Auth = Literal["public", "person", "staff", "member", "any"]


def _inline(node: Any, defs: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = _inline(defs[ref.removeprefix("#/$defs/")], defs)
        rest = {k: _inline(v, defs) for k, v in node.items() if k != "$ref"}
        return {**target, **rest}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$defs", "title"):
            continue
        if key == "properties":
            out[key] = {name: _inline(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _inline(value, defs)
    return _to_oas30(out)


def _to_oas30(node: dict[str, Any]) -> dict[str, Any]:
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(exclusive), int | float) and not isinstance(node[exclusive], bool):
            node[bound] = node.pop(exclusive)
            node[exclusive] = True
    for combinator in ("anyOf", "oneOf"):
        options = node.get(combinator)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [option for option in options if option != {"type": "null"}]
            node.pop(combinator)
            if len(rest) == 1:
                node = {**rest[0], **node}
            else:
                node[combinator] = rest
            node["nullable"] = True
    return node


def schema_of(model: type[BaseModel]) -> Schema:
    """``model``'s validation schema in OpenAPI 3.0 terms, self-contained."""
    full = model.model_json_schema(mode="validation")
    result: Schema = _inline(full, full.get("$defs", {}))
    return result


def query_parameters(model: type[BaseModel]) -> list[definitions.Parameter]:
    schema = schema_of(model)
    required = set(schema.get("required", []))
    return [
        definitions.Parameter(name, cast(Any, sub), "query", required=name in required)
        for name, sub in schema.get("properties", {}).items()
    ]


def header(name: str, schema: Schema, required: bool = True) -> definitions.Parameter:
    return definitions.Parameter(name, cast(Any, schema), "header", required=required)


def doc(
    summary: str,
    tag: str,
    *,
    auth: Auth = "public",
    body: type[BaseModel] | Schema | None = None,
    body_media: str = "application/json",
    query: type[BaseModel] | None = None,
    parameters: Iterable[definitions.Parameter] = (),
    ok: int | Iterable[int] = 200,
    answer: Schema | None = OBJECT,
    media: str | Iterable[str] = "application/json",
    errors: Iterable[int] = (),
    description: str | None = None,
) -> Callable[[T], T]:
    """The route's whole definition: what it takes, its success answer(s), its error answers.

    ``auth`` adds 401/403 for routes that need a session; ``body`` adds 413; ``errors`` adds
    others (409 for state conflicts). ``answer=None`` means an empty success answer (204)."""
    medias = [media] if isinstance(media, str) else list(media)
    statuses = [ok] if isinstance(ok, int) else list(ok)
    responses: list[definitions.Response] = []
    for status in statuses:
        content = {m: answer for m in medias} if answer is not None and status != 204 else {}
        responses.append(definitions.Response(content, status=status, description="Success"))
    codes = set(BASE_ERRORS) | set(errors)
    if auth != "public":
        codes |= {401, 403}
    if body is not None:
        codes.add(413)
    for code in sorted(codes):
        responses.append(
            definitions.Response(
                {"application/json": ERROR_REF}, status=code, description=_ERROR_MEANING[code]
            )
        )
    params: list[dict[str, Any] | definitions.Parameter | str] = [*parameters]
    if query is not None:
        params += query_parameters(query)
    request_body: dict[str, Any] | None = None
    if body is not None:
        schema = body if isinstance(body, dict) else schema_of(body)
        request_body = {body_media: schema}
    decorator: Callable[[T], T] = openapi.definition(
        summary=summary,
        description=description,
        tag=tag,
        body=request_body,
        parameter=params or None,
        response=responses,
    )
    return decorator
