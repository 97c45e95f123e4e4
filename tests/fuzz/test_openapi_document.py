"""The OpenAPI document is complete enough to fuzz: every API operation says what it takes and
what it answers, errors included, in the contract's shape (the shared ``Error`` component), and
which operations need a session (the bearer security scheme)."""

from __future__ import annotations

import inspect
from typing import Any

from sanic import HTTPResponse, Request
from sanic.response import empty

from miniapp_api.openapi_docs import doc, schema_of
from miniapp_api.routes import progress
from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import filed, person_token
from tests.miniapp_api.test_mp_realname import CHEN

# Operations documented elsewhere or not yet: each is listed on purpose, and the fuzzer still
# sends them input (only "no 5xx" applies while their answers are undocumented).
NOT_YET_DOCUMENTED: set[tuple[str, str]] = set()
# Documented, but only their handshake is HTTP: no input to refuse with 422, no rate limit, and
# what they send afterwards is described in prose (checked below), not as an HTTP answer.
WEBSOCKETS = {("GET", "/api/v1/halls/{hall_id}/live")}
# Not API routes: health and metrics for operators, HTML pages, WeCom's signed XML callback.
NOT_API = {"/metrics", "/readyz", "/healthz", "/h5", "/console", "/wecom/callback"}
# Session-less by design: logins hand out the token; devices sign each request with HMAC.
NO_SESSION = {
    ("POST", "/api/v1/mp/login"),
    ("POST", "/api/v1/staff/login"),
    ("GET", "/api/v1/forms"),
    ("GET", "/api/v1/halls"),
    ("GET", "/api/v1/halls/{hall_id}/status"),
    ("GET", "/api/v1/progress"),
    ("GET", "/api/v1/guides"),
    ("POST", "/api/v1/devices/heartbeat"),
    ("POST", "/api/v1/devices/queue-events"),
    ("GET", "/wecom/oauth/callback"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
}
BEARER = [{"bearer": []}]


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if path not in NOT_API and not path.startswith("/hall/")
    ]


async def test_every_api_operation_documents_its_answers_and_errors(live: LiveServer) -> None:
    document = (await live.http.get("/docs/openapi.json")).json()
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]
    missing = []
    for method, path, operation in _operations(document):
        if (method, path) in NOT_YET_DOCUMENTED | WEBSOCKETS:
            continue
        responses = operation["responses"]
        successes = [s for s in responses if s.startswith(("2", "3"))]
        errors = {s: r for s, r in responses.items() if s.startswith(("4", "5"))}
        if not successes or not {"400", "422", "429", "503"} <= set(errors):
            missing.append(f"{method} {path}: {sorted(responses)}")
            continue
        for status, answer in errors.items():
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
        # A POST or PUT that takes input says so (claim/approve/... take a version too).
        takes_input = method in ("POST", "PUT") and "{" not in path.rsplit("/", 1)[-1]
        if takes_input and "requestBody" not in operation and path not in _NO_BODY:
            missing.append(f"{method} {path}: no requestBody")
    assert not missing, "\n".join(missing)


async def test_operations_that_need_a_session_carry_the_bearer_scheme(live: LiveServer) -> None:
    document = (await live.http.get("/docs/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    operations = {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    wrong = []
    for (method, path), operation in operations.items():
        needs_session = path.startswith(("/api/v1/mp/", "/api/v1/staff/", "/api/v1/wecom/bind"))
        if (method, path) in NO_SESSION:
            needs_session = False
        if needs_session and operation.get("security") != BEARER:
            wrong.append(f"{method} {path}: no bearer security")
        if not needs_session and operation.get("security"):
            wrong.append(f"{method} {path}: security {operation['security']} on a public route")
        if needs_session and "401" not in operation["responses"]:
            wrong.append(f"{method} {path}: no 401")
    assert not wrong, "\n".join(wrong)
    # The login routes are what hands out the token.
    assert "security" not in operations["POST", "/api/v1/mp/login"]
    assert "security" not in operations["POST", "/api/v1/staff/login"]
    # Devices sign with HMAC: the four headers, no bearer token.
    heartbeat = operations["POST", "/api/v1/devices/heartbeat"]
    assert {p["name"] for p in heartbeat["parameters"] if p["in"] == "header"} == {
        "X-Device-Id",
        "X-Timestamp",
        "X-Nonce",
        "X-Signature",
    }
    assert {"401", "403", "413"} <= set(heartbeat["responses"])


async def test_health_checks_and_the_websocket_say_what_they_answer(live: LiveServer) -> None:
    document = (await live.http.get("/docs/openapi.json")).json()
    paths = document["paths"]
    healthz, readyz = paths["/healthz"]["get"], paths["/readyz"]["get"]
    assert healthz["tags"] == readyz["tags"] == ["ops"]
    assert healthz["summary"]
    assert readyz["summary"]
    assert set(healthz["responses"]) == {"200"}
    ok = healthz["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["properties"]["status"]["enum"] == ["ok"]
    assert set(readyz["responses"]) == {"200", "503"}
    down = readyz["responses"]["503"]["content"]["application/json"]["schema"]
    assert down == {"$ref": "#/components/schemas/Error"}
    live_ws = paths["/api/v1/halls/{hall_id}/live"]["get"]
    assert set(live_ws["responses"]) == {"101", "400", "426"}
    assert "#/components/schemas/HallStatus" in live_ws["description"]
    status = paths["/api/v1/halls/{hall_id}/status"]["get"]["responses"]["200"]
    assert status["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HallStatus"
    }
    hall_status = document["components"]["schemas"]["HallStatus"]
    assert hall_status["properties"]["crowd_level"]["enum"] == ["较少", "适中", "较多"]


def test_doc_attaches_metadata_and_hands_back_the_handler_itself() -> None:
    async def handler(request: Request) -> HTTPResponse:
        return empty()

    documented = doc("A route", "test", auth="person", query=progress.ProgressQuery)(handler)
    # No wrapper, so no work per request: the benchmarked progress lookup included.
    assert documented is handler

    async def posted(request: Request) -> HTTPResponse:
        return empty()

    # A documented body neither (sanic-ext's own body= would wrap the handler).
    assert doc("A post", "test", auth="person", body=progress.ProgressQuery)(posted) is posted
    assert inspect.getsourcefile(progress.lookup) == inspect.getsourcefile(progress.LocalLimits)
    assert not hasattr(progress.lookup, "__wrapped__")


async def test_documented_bodies_are_the_models_the_routes_validate_with(
    live: LiveServer,
) -> None:
    document = (await live.http.get("/docs/openapi.json")).json()
    quote = document["paths"]["/api/v1/mp/invoice-quote"]["post"]["requestBody"]
    schema = quote["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"seller_kind", "location", "lines"}
    assert schema["properties"]["lines"]["maxItems"] == 8
    # OpenAPI 3.0: no JSON Schema 2020 null type, no $defs left behind.
    assert "$defs" not in str(document)
    assert "'null'" not in str(document)
    submissions = document["paths"]["/api/v1/mp/submissions"]["post"]
    assert {p["name"] for p in submissions["parameters"] if p["in"] == "header"} == {
        "Idempotency-Key"
    }
    audit = document["paths"]["/api/v1/staff/audit"]["get"]
    assert {p["name"] for p in audit["parameters"]} == {"since", "actor", "limit"}
    # A parameter's schema is the model's field, not a model made of the schema's keywords.
    limit = next(p for p in audit["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["type"], limit["schema"]["maximum"]) == ("integer", 500)
    key = submissions["parameters"][0]["schema"]
    assert key["type"] == "string"
    assert "properties" not in key


# POSTs whose whole input is the path and the caller's session.
_NO_BODY = {
    "/api/v1/mp/wecom-bind-code",
    "/api/v1/staff/logout",
    "/api/v1/mp/grants/{grant_id}/confirm",
    "/api/v1/mp/grants/{grant_id}/decline",
    "/api/v1/mp/invitations/{invitation_id}/accept",
    "/api/v1/mp/invitations/{invitation_id}/decline",
}


async def test_a_real_progress_lookup_matches_its_documented_answer(live: LiveServer) -> None:
    # The fuzzer cannot guess a tracking number and its check, so this one answer is checked here.
    document = (await live.http.get("/docs/openapi.json")).json()
    lookup = document["paths"]["/api/v1/progress"]["get"]
    schema = lookup["responses"]["200"]["content"]["application/json"]["schema"]
    assert {p["name"] for p in lookup["parameters"]} == {"tracking_no", "check"}
    submission = await filed(live, await person_token(live))
    r = await live.http.get(
        "/api/v1/progress",
        params={"tracking_no": submission["tracking_no"], "check": CHEN[1][-4:]},
    )
    assert r.status_code == 200, r.text
    # The document holds the model's schema, and the model takes the real answer.
    assert schema == schema_of(progress.ProgressView)
    progress.ProgressView.model_validate(r.json())
    assert r.json()["tracking_no"] == submission["tracking_no"]
