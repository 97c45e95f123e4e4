"""The audit log for staff (``GET /api/v1/staff/audit``) with its chain state, and
``suban audit verify`` as an operator runs it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from auth.models import AuditEvent, StaffUser
from auth.staff import create_staff
from miniapp_api.routes import staff_audit
from tests.conftest import TEST_PII_KEYS_ENV, LiveServer, run_cli
from tests.miniapp_api.filing_helpers import reviewer_token

PASSWORD = "audit-view-pass-1"


async def _auditor_token(live: LiveServer) -> tuple[str, StaffUser]:
    username = f"auditor{uuid.uuid4().hex[:8]}"
    made = await create_staff(username, PASSWORD, roles=["auditor"], keyring=live.app.ctx.keyring)
    r = await live.http.post(
        "/api/v1/staff/login", json={"username": username, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    return r.json()["token"], made.user


async def test_an_auditor_sees_the_log_and_an_intact_chain(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staff_audit, "_checked", None)
    token, user = await _auditor_token(live)
    headers = {"Authorization": f"Bearer {token}"}
    r = await live.http.get("/api/v1/staff/audit", headers=headers, params={"limit": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["chain"]["intact"] is True
    assert body["chain"]["head"]["hash"]
    assert len(body["events"]) == 2
    ids = [e["id"] for e in body["events"]]
    assert ids == sorted(ids, reverse=True)
    # Their own login is there, by id, with no personal data.
    mine = await live.http.get(
        "/api/v1/staff/audit", headers=headers, params={"actor": f"staff:{user.id}"}
    )
    actions = {e["action"] for e in mine.json()["events"]}
    assert "staff.login" in actions
    # Looking is itself recorded.
    assert await AuditEvent.filter(action="audit.view", actor_id=str(user.id)).exists()


async def test_a_tampered_row_shows_in_the_chain_state(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, _user = await _auditor_token(live)
    headers = {"Authorization": f"Bearer {token}"}
    victim = await AuditEvent.filter(action="staff.login").order_by("-id").first()
    assert victim is not None
    await AuditEvent.filter(id=victim.id).update(outcome="denied")
    monkeypatch.setattr(staff_audit, "_checked", None)
    try:
        r = await live.http.get("/api/v1/staff/audit", headers=headers)
        chain = r.json()["chain"]
        assert chain["intact"] is False
        assert {"id": victim.id, "problem": "its fields do not match its hash (edited?)"} in chain[
            "problems"
        ]
    finally:
        await AuditEvent.filter(id=victim.id).update(outcome=victim.outcome)
        monkeypatch.setattr(staff_audit, "_checked", None)


async def test_without_audit_view_it_is_forbidden(live: LiveServer) -> None:
    token = await reviewer_token(live)
    r = await live.http.get("/api/v1/staff/audit", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "FORBIDDEN"
    assert (await live.http.get("/api/v1/staff/audit")).status_code == 401


async def test_bad_filters_are_422(live: LiveServer) -> None:
    token, _ = await _auditor_token(live)
    r = await live.http.get(
        "/api/v1/staff/audit",
        headers={"Authorization": f"Bearer {token}"},
        params={"actor": "x' OR 1=1", "limit": "9999"},
    )
    assert r.status_code == 422
    assert set(r.json()["error"]["fields"]) == {"actor", "limit"}


def test_suban_audit_verify(database_url: str, tmp_path: Path) -> None:
    env = {
        "SUBAN_DATABASE_URL": database_url,
        "SUBAN_VAR_DIR": str(tmp_path),
        "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
    }
    done = run_cli("audit", "verify", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("chain intact; head ")
    head = last.removeprefix("chain intact; head ")
    again = run_cli("audit", "verify", "--expect-head", head, env=env)
    assert again.returncode == 0, again.stdout
    head_id = head.split(":")[0]
    wrong = run_cli("audit", "verify", "--expect-head", f"{head_id}:{'0' * 64}", env=env)
    assert wrong.returncode == 1
    assert "the recorded head is gone or changed" in wrong.stdout
