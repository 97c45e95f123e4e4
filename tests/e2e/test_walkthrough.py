"""The README's filing walkthrough against a real ``suban serve`` with the demo data: both forms
filed by 陈明 and completed by the demo reviewer, then found through the public lookup."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV
from tests.e2e.walkthrough import walk
from tests.processes import free_port, running_process


@pytest.fixture
async def fresh_redis(redis_client: Any) -> None:
    """No rate-limit counts left by earlier tests (the walk verifies 陈明, whose ID number other
    tests have tried too)."""


def test_the_walkthrough_files_and_completes_both_forms(
    database_url: str, tmp_path: Path, fresh_redis: None
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")} | {
        "SUBAN_DATABASE_URL": database_url,
        "SUBAN_VAR_DIR": str(tmp_path),
        "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
        "SUBAN_PORT": str(port),
        # One worker, so the simulator can be mounted in it as in `make run`.
        "SUBAN_WORKERS": "1",
        "SUBAN_REDIS_URL": REAL_REDIS_URL if BACKEND == "postgres" else "memory://",
    }
    lines: list[str] = []
    with running_process(
        [str(Path(sys.executable).with_name("suban")), "serve"],
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log_path=tmp_path / "serve.log",
        env=env,
    ):
        done = walk(f"http://127.0.0.1:{port}", say=lines.append)
    assert done["proxy_invoice"]["status"] == "completed"
    assert len(done["proxy_invoice"]["result"]["number"]) == 20
    assert done["cross_region_report"]["result"]["number"].startswith("税跨报〔")
    assert sum("public progress" in line and "已办结" in line for line in lines) == 2
