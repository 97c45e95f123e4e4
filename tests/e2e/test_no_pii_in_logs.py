"""Personal data never reaches the logs: the README walkthrough and the identity flows against a
real ``suban serve`` at DEBUG level (libraries included), then the whole log searched for the
demo people's names, ID numbers and phone numbers."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV
from tests.e2e.walkthrough import walk
from tests.processes import free_port, running_process

CHEN = ("陈明", "44010319850612301X")
LIN = ("林芳", "440103199003152024")
PHONES = ("13912345678", "13800138000")  # bound through /mp/phone · a contact in the walkthrough


async def _identity_flows(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        login = await http.post("/api/v1/mp/login", json={"code": "sim:o-no-pii-logs"})
        assert login.status_code == 200, login.text
        me = {"Authorization": f"Bearer {login.json()['token']}"}
        phone = await http.post("/api/v1/mp/phone", json={"code": f"sim:{PHONES[0]}"}, headers=me)
        assert phone.status_code == 200, phone.text
        # A face result of someone else: refused, and the refusal is logged and audited.
        wrong = {
            "name": LIN[0],
            "id_type": "resident_id",
            "id_number": LIN[1],
            "verify_result": f"sim:{CHEN[0]}:{CHEN[1]}",
        }
        refused = await http.post("/api/v1/mp/realname", json=wrong, headers=me)
        assert refused.status_code == 409, refused.text
        # A bad ID number: the 422 names the field, the log must not hold the number.
        bad = await http.post(
            "/api/v1/mp/realname",
            json=wrong | {"id_number": "44010319900315202X"},
            headers=me,
        )
        assert bad.status_code == 422, bad.text


def test_no_name_id_number_or_phone_in_the_logs(
    database_url: str, tmp_path: Path, redis_client: Any
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")} | {
        "SUBAN_DATABASE_URL": database_url,
        "SUBAN_VAR_DIR": str(tmp_path),
        "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
        "SUBAN_PORT": str(port),
        "SUBAN_WORKERS": "1",
        "SUBAN_REDIS_URL": REAL_REDIS_URL if BACKEND == "postgres" else "memory://",
        # Everything any logger says, SQL parameters of the database drivers included.
        "SUBAN_LOG_LEVEL": "DEBUG",
    }
    log = tmp_path / "serve.log"
    said: list[str] = []
    with running_process(
        [str(Path(sys.executable).with_name("suban")), "serve"],
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log_path=log,
        env=env,
    ):
        import asyncio

        asyncio.run(_identity_flows(f"http://127.0.0.1:{port}"))
        done = walk(f"http://127.0.0.1:{port}", say=said.append)
    assert done["proxy_invoice"]["status"] == "completed"
    text = log.read_text(encoding="utf-8", errors="replace")
    # The log really was written at DEBUG, through the flows above.
    assert "/api/v1/mp/realname" in text
    assert len(text.splitlines()) > 50
    secrets = [*CHEN, *LIN, *PHONES, "44010319900315202X"]
    # Also the middle of an ID number and of a phone, which masking hides.
    secrets += [CHEN[1][4:14], LIN[1][4:14], PHONES[0][3:7] + PHONES[0][7:]]
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"personal data in the log: {leaked}"
