"""OpenAPI definitions for routes, built from the same pydantic models the routes validate with.

``@doc(...)`` is ``sanic_ext.openapi.definition`` with the parts every route repeats filled in:
the request body and query parameters from the route's models, the success answer, and the error
answers in the contract's shape (the shared ``Error`` schema component, see docs API.md).

sanic-ext emits OpenAPI 3.0, while pydantic writes JSON Schema 2020-12; :func:`schema_of` turns
one into the other (``$defs`` inlined, ``null`` in unions as ``nullable``, ``const`` as ``enum``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from sanic import Sanic
from sanic_ext import openapi
from sanic_ext.extensions.openapi import definitions
from sanic_ext.extensions.openapi.builders import OperationStore, SpecificationBuilder
from sanic_ext.extensions.openapi.types import Schema as OasSchema

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

# The one builder sanic-ext keeps for the process; the components are the same for every app.
SpecificationBuilder().add_component("schemas", "Error", ERROR_SCHEMA)
# Sessions are opaque random tokens held in Redis (auth/sessions.py), not JWTs.
BEARER = "bearer"
SpecificationBuilder().add_security_scheme(
    BEARER,
    "http",
    scheme="bearer",
    bearer_format="opaque",
    description="`Authorization: Bearer <token>`: the token of /api/v1/mp/login, "
    "/api/v1/staff/login or /wecom/oauth/callback",
)

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
    413: "Request body, or URL and headers, too large",
    426: "Not a WebSocket handshake: the route only upgrades",
    422: "Invalid fields, each named in `fields`",
    429: "Too many requests; see Retry-After",
    503: "A dependency (database, Redis, WeChat) is down; see Retry-After",
}
# Every route may answer these: bad input, unknown ids, rate limits, a dependency down.
BASE_ERRORS = (400, 404, 422, 429, 503)
# "public": no credentials; "device": HMAC-signed by a hall device (the four headers below, no
# session); the others take a session token, so the operation carries the bearer requirement.
Auth = Literal["public", "device", "person", "staff", "member", "any"]
SESSION_AUTH: frozenset[str] = frozenset({"person", "staff", "member", "any"})


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


def add_schema_component(name: str, model: type[BaseModel]) -> Schema:
    """Put ``model`` under ``components.schemas`` as ``name``; returns the reference to it (for
    a shape named in prose as well as answered, like the live status a WebSocket sends)."""
    SpecificationBuilder().add_component("schemas", name, schema_of(model))
    return {"$ref": f"#/components/schemas/{name}"}


def _parameter_schema(schema: Schema) -> Any:
    # sanic-ext reads a plain dict given as a parameter's schema as a model whose properties are
    # the dict's keys (``{"type": "object", "properties": {"pattern": ...}}``); a Schema instance
    # is used as it is.
    return OasSchema(**schema)  # type: ignore[no-untyped-call]


def query_parameters(model: type[BaseModel]) -> list[definitions.Parameter]:
    schema = schema_of(model)
    required = set(schema.get("required", []))
    return [
        definitions.Parameter(name, _parameter_schema(sub), "query", required=name in required)
        for name, sub in schema.get("properties", {}).items()
    ]


def header(
    name: str, schema: Schema, required: bool = True, description: str | None = None
) -> definitions.Parameter:
    return definitions.Parameter(
        name, _parameter_schema(schema), "header", required=required, description=description
    )


def carry_websocket_docs(app: Sanic[Any, Any]) -> None:
    """Give each WebSocket route the definition ``@doc`` recorded for its handler.

    sanic-ext looks a route's definition up by the route's handler, but Sanic registers a
    WebSocket handler wrapped in ``partial(app._websocket_handler, handler, ...)``, so without
    this the document shows a bare GET. Run before sanic-ext builds the document (a
    ``before_server_start`` listener of default priority does: sanic-ext's runs at -1000)."""
    store = OperationStore()  # type: ignore[no-untyped-call]
    for route in app.router.routes:
        wrapper = route.handler
        if not getattr(wrapper, "is_websocket", False) or not getattr(wrapper, "args", ()):
            continue
        handler = wrapper.args[0]
        if handler in store:
            store[wrapper] = store[handler]


# API.md "Hall devices"; the patterns are hall/device_auth.py's, so a request the document calls
# well-formed is one the signature check reads (and then judges).
DEVICE_HEADERS: tuple[definitions.Parameter, ...] = (
    header(
        "X-Device-Id",
        {"type": "string", "pattern": "^[A-Za-z0-9_\\-.]{1,64}$"},
        description="The device's id (a camera for heartbeats, the queue system for events)",
    ),
    header(
        "X-Timestamp",
        {"type": "string", "pattern": "^[0-9]{1,12}$"},
        description="Unix seconds; more than 300 s off the server's clock is refused",
    ),
    header(
        "X-Nonce",
        {"type": "string", "pattern": "^[A-Za-z0-9_\\-.]{8,64}$"},
        description="Never the same twice for a device within 10 minutes",
    ),
    header(
        "X-Signature",
        {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        description="Lowercase hex HMAC-SHA256 with the device secret over "
        "`{timestamp}\\n{nonce}\\n{METHOD}\\n{path}\\n{sha256 hex of body}`",
    ),
)


def doc(
    summary: str,
    tag: str,
    *,
    auth: Auth = "public",
    body: type[BaseModel] | Schema | None = None,
    body_media: str = "application/json",
    body_example: Any = None,
    query: type[BaseModel] | None = None,
    parameters: Iterable[definitions.Parameter] = (),
    ok: int | Iterable[int] = 200,
    answer: type[BaseModel] | Schema | None = OBJECT,
    media: str | Iterable[str] = "application/json",
    errors: Iterable[int] = (),
    base_errors: Iterable[int] = BASE_ERRORS,
    ok_description: str = "Success",
    description: str | None = None,
) -> Callable[[T], T]:
    """The route's whole definition: what it takes, its success answer(s), its error answers.

    ``auth`` adds 401/403 for routes that need a session or a device signature, the bearer
    security requirement for a session, the signature headers for a device; ``body`` and
    ``query`` add 413;
    ``errors`` adds others (409 for state conflicts). ``answer`` is a schema or the model the
    route answers with; ``None`` means an empty success answer (204). ``base_errors`` is for the
    few routes outside the API's error contract (health checks).

    Documentation only: the decorator records the definition and hands back the handler itself,
    so a documented route runs exactly the code of an undocumented one."""
    medias = [media] if isinstance(media, str) else list(media)
    statuses = [ok] if isinstance(ok, int) else list(ok)
    answer_schema = schema_of(answer) if isinstance(answer, type) else answer
    responses: list[definitions.Response] = []
    for status in statuses:
        has_body = answer_schema is not None and status not in (101, 204)
        content = {m: answer_schema for m in medias} if has_body else {}
        responses.append(definitions.Response(content, status=status, description=ok_description))
    codes = set(base_errors) | set(errors)
    if auth != "public":
        codes |= {401, 403}
    # Sanic answers 413 for a request head over its limit too: a long enough query string does it.
    if body is not None or query is not None:
        codes.add(413)
    for code in sorted(codes):
        responses.append(
            definitions.Response(
                {"application/json": ERROR_REF}, status=code, description=_ERROR_MEANING[code]
            )
        )
    params: list[dict[str, Any] | definitions.Parameter | str] = [*parameters]
    if auth == "device":
        params += DEVICE_HEADERS
    if query is not None:
        params += query_parameters(query)
    request_body: dict[str, Any] | None = None
    if body is not None:
        schema = body if isinstance(body, dict) else schema_of(body)
        media_type: Schema = {"schema": schema}
        if body_example is not None:
            media_type["example"] = body_example
        request_body = {body_media: media_type}
    definition: Callable[[T], T] = openapi.definition(
        summary=summary,
        description=description,
        tag=tag,
        parameter=params or None,
        response=responses,
        secured={BEARER: []} if auth in SESSION_AUTH else None,
    )

    def decorator(handler: T) -> T:
        documented = definition(handler)
        # Recorded on the operation directly: sanic-ext's own body= wraps the handler in one
        # that runs on every request (extract_request and an extra await) for nothing here.
        if request_body is not None:
            OperationStore()[documented].body(request_body)  # type: ignore[no-untyped-call]
        return documented

    return decorator
