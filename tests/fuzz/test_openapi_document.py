"""The OpenAPI document is complete enough to fuzz: every API operation says what it takes and
what it answers, errors included, in the contract's shape (the shared ``Error`` component)."""

from __future__ import annotations

from typing import Any

from tests.conftest import LiveServer

# Operations documented elsewhere or not yet: each is listed on purpose, and the fuzzer still
# sends them input (only "no 5xx" applies while their answers are undocumented).
NOT_YET_DOCUMENTED = {
    # miniapp_api/routes/halls.py, devices.py, privacy.py, progress.py: owned by other work.
    ("GET", "/api/v1/halls"),
    ("GET", "/api/v1/halls/{hall_id}/live"),
    ("GET", "/api/v1/halls/{hall_id}/status"),
    ("GET", "/api/v1/halls/{hall_id}/snapshots/{name}"),
    ("POST", "/api/v1/devices/heartbeat"),
    ("POST", "/api/v1/devices/queue-events"),
    ("POST", "/api/v1/mp/me/deletion"),
    ("GET", "/api/v1/mp/me/export"),
    ("GET", "/api/v1/progress"),
}
# Not API routes: health and metrics for operators, HTML pages, WeCom's signed XML callback.
NOT_API = {"/metrics", "/readyz", "/healthz", "/h5", "/console", "/wecom/callback"}


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
        if (method, path) in NOT_YET_DOCUMENTED:
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


# POSTs whose whole input is the path and the caller's session.
_NO_BODY = {
    "/api/v1/mp/wecom-bind-code",
    "/api/v1/staff/logout",
    "/api/v1/mp/grants/{grant_id}/confirm",
    "/api/v1/mp/grants/{grant_id}/decline",
    "/api/v1/mp/invitations/{invitation_id}/accept",
    "/api/v1/mp/invitations/{invitation_id}/decline",
}
