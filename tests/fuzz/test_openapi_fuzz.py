"""Schemathesis against /docs/openapi.json on a live server: every documented operation, as an
anonymous caller, as a verified taxpayer and as staff, with valid and invalid input.

Checks: no 5xx ever; every answer's status code is documented, its content type is the documented
one and its body matches the documented schema (errors: the contract's ``Error`` component).

Bounded and reproducible: ``MAX_EXAMPLES`` per operation, generation mode and caller, hypothesis
derandomized (a fixed seed per test), no example database, no shrinking (a failure is reported
with the request that caused it, as a curl command).

The hall devices' routes run once more as the demo devices, each request HMAC-signed over the
exact bytes sent (:class:`DeviceSignature`), so they are fuzzed past the signature check and the
heartbeat's documented example reaches its 200. Answers the run must have seen succeed (and match
their schema) are listed in ``MUST_SUCCEED``.

Not covered (each on purpose):
- the WebSocket ``/api/v1/halls/{hall_id}/live`` (not HTTP request/response; its handshake and
  messages are documented, and tests/miniapp_api/test_hall_live_routes.py drives it);
- ``/metrics`` (Prometheus text for the scraper, no contract shape);
- ``/_sim/*`` (the WeChat simulator; not part of the API, and not in the document);
- ``/wecom/callback`` runs with the others, but only against 5xx: its body is WeCom's signed
  XML, which the fuzzer cannot sign, so it only reaches the signature check;
- operations that end the caller's session or person (logout, account deletion) run last, each
  with tokens of their own, so the rest of a run keeps its session.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hall.device_auth import sign_request
from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import COMPANY, filed, person_token, reviewer_token

# SUBAN_FUZZ_EXAMPLES raises it for a longer run by hand.
MAX_EXAMPLES = int(os.environ.get("SUBAN_FUZZ_EXAMPLES", "10"))
# Without a session, an operation that needs one answers 401 before it reads any input: a few
# examples show that. Logins also answer 401 (a wrong code or password) but are for anyone.
ANONYMOUS_ON_SIGNED_IN = 3
FOR_ANYONE = {
    ("POST", "/api/v1/mp/login"),
    ("POST", "/api/v1/staff/login"),
    ("GET", "/wecom/oauth/callback"),
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# (method, path) pairs never sent, with the reason in the module docstring.
EXCLUDED = {
    ("GET", "/api/v1/halls/{hall_id}/live"),
    ("GET", "/metrics"),
}
# The demo devices (API.md "Demo data"): cameras send heartbeats, the queue system its events.
DEVICE_SECRET = "suban-demo-device"
DEVICE_ROUTES = "/api/v1/devices/"
# Documented answers the run must see succeed at least once, each checked against its schema.
MUST_SUCCEED = {
    "GET /api/v1/halls",
    "GET /api/v1/halls/{hall_id}/status",
    "POST /api/v1/devices/heartbeat",
    "GET /api/v1/mp/me/export",
    "GET /healthz",
    "GET /readyz",
}
# Sent after everything else, with fresh tokens: they end the session (or the person).
LAST = {
    ("POST", "/api/v1/mp/logout"),
    ("POST", "/api/v1/staff/logout"),
    ("POST", "/api/v1/mp/me/deletion"),
}


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    requests: int = 0
    operations: set[str] = field(default_factory=set)
    # "METHOD /path" of operations that answered 2xx and passed every check.
    succeeded: set[str] = field(default_factory=set)


class DeviceSignature(requests.auth.AuthBase):
    """Signs a request as a demo device, over the body exactly as it is sent (the fuzzer's
    serialization decides the bytes, so the signature has to be made after it)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        path = urlsplit(request.url or "").path
        device = "queue-1" if path.endswith("/queue-events") else "cam-1"
        body = request.body or b""
        data = body.encode() if isinstance(body, str) else body
        assert isinstance(data, bytes), type(body)
        signed = sign_request(device, DEVICE_SECRET, request.method or "POST", path, data)
        request.headers.update(signed)
        return request


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    who: str,
    report: Report,
    path_parameters: dict[str, Any] | None = None,
    examples: int = MAX_EXAMPLES,
    auth: requests.auth.AuthBase | None = None,
) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=15, auth=auth)
        report.requests += 1
        if response.status_code == 503 and b"ATTACHMENT_UNAVAILABLE" in response.content:
            # The suite's shared database holds attachment rows of earlier tests whose files
            # lived in those tests' own temporary stores: a missing file is a 503 by design.
            return
        case.validate_response(response, checks=CHECKS, headers=headers)
        if 200 <= response.status_code < 300:
            report.succeeded.add(f"{operation.method.upper()} {operation.path}")

    report.operations.add(operation.label)
    try:
        run()
    except Unsatisfiable:
        # Nothing to make invalid: an operation without parameters or body has no negative case.
        assert mode is GenerationMode.NEGATIVE, operation.label
    # Schemathesis's failure (a FailureGroup when several checks fail, a BaseExceptionGroup)
    # names the check and gives the curl command to reproduce it.
    except (Exception, FailureGroup) as exc:
        where = " with known ids" if path_parameters else ""
        report.failures.append(f"[{who} {mode.value}{where}] {operation.label}\n{exc}")


def _known(path: str, ids: dict[str, Any]) -> dict[str, Any] | None:
    """Real ids for every parameter of ``path`` (so the fuzzer gets past the 404 and into
    bodies and state checks), or None when some are not known."""
    names = re.findall(r"{(\w+)}", path)
    if not names:
        return None
    scope = "guide_" if path.startswith("/api/v1/guides/") else ""
    values = {name: ids.get(scope + name, ids.get(name)) for name in names}
    return values if all(v is not None for v in values.values()) else None


def _run(
    document: dict[str, Any],
    base_url: str,
    callers: dict[str, dict[str, str]],
    last_callers: dict[str, dict[str, str]],
    ids: dict[str, Any],
    report: Report,
) -> None:
    schema = schemathesis.openapi.from_dict(document, config=schemathesis.Config())
    operations = [result.ok() for result in schema.get_all_operations()]
    key = lambda op: (op.method.upper(), op.path)  # noqa: E731
    ordinary = [op for op in operations if key(op) not in EXCLUDED | LAST]
    final = [op for op in operations if key(op) in LAST]
    for who, headers in callers.items():
        for operation in ordinary:
            known = _known(operation.path, ids)
            examples = MAX_EXAMPLES
            signed_in = "401" in operation.definition.raw.get("responses", {})
            if not headers and signed_in and key(operation) not in FOR_ANYONE:
                examples = ANONYMOUS_ON_SIGNED_IN
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, base_url, headers, who, report, None, examples)
                if known:
                    _fuzz(operation, mode, base_url, headers, who, report, known, examples)
    signer = DeviceSignature()
    for operation in ordinary:
        if operation.path.startswith(DEVICE_ROUTES):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, base_url, {}, "device", report, auth=signer)
    for who, headers in last_callers.items():
        for operation in final:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, base_url, headers, who, report)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_every_operation_as_anyone_taxpayer_and_staff(live: LiveServer) -> None:
    r = await live.http.get("/docs/openapi.json")
    assert r.status_code == 200
    document = r.json()
    callers = {
        "anonymous": {},
        "taxpayer": _bearer(await person_token(live)),
        "staff": _bearer(await reviewer_token(live)),
    }
    last_callers = {
        "anonymous": {},
        "taxpayer": _bearer(await person_token(live)),
        "staff": _bearer(await reviewer_token(live)),
    }
    # Ids that exist, so the fuzzer also reaches past lookups: the taxpayer's own submission and
    # draft (which staff then fuzz too), a hall, a form, a guide, the taxpayer's company.
    taxpayer = callers["taxpayer"]
    halls = (await live.http.get("/api/v1/halls")).json()
    guides = (await live.http.get("/api/v1/guides")).json()
    draft = await live.http.post(
        "/api/v1/mp/drafts", json={"form_code": "proxy_invoice"}, headers=taxpayer
    )
    assert draft.status_code == 201, draft.text
    ids: dict[str, Any] = {
        "hall_id": halls[0]["hall_id"],
        "code": "proxy_invoice",
        "guide_code": guides[0]["code"],
        "taxpayer_id": COMPANY,
        "submission_id": (await filed(live, taxpayer["Authorization"].split()[1]))["id"],
        "draft_id": draft.json()["id"],
    }
    report = Report()
    # Schemathesis is synchronous; the server runs in this loop, so the fuzzer gets a thread.
    await asyncio.to_thread(_run, document, live.base_url, callers, last_callers, ids, report)
    assert report.requests > 0
    assert not report.failures, (
        f"{len(report.failures)} failures in {report.requests} requests:\n\n"
        + "\n\n".join(report.failures)
    )
    assert report.succeeded >= MUST_SUCCEED, sorted(MUST_SUCCEED - report.succeeded)
