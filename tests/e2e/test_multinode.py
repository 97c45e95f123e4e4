"""Two nodes, one state: two ``suban serve`` processes (own ports, two workers each) and two
``suban worker`` processes on one PostgreSQL and one Redis, with the WeChat simulator as its own
process. What one node does, the other sees: sessions, rate limits, the WeChat access token (one
refresh for the whole cluster), and outbox messages delivered exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from forms.tracking import new_tracking_no
from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV, LiveServer
from tests.miniapp_api.filing_helpers import (
    COMPANY,
    filed,
    person_token,
    reviewer_token,
    staff_act,
)
from tests.miniapp_api.test_mp_realname import auth, login
from tests.processes import free_port, running_process

SUBAN = str(Path(sys.executable).with_name("suban"))


@dataclass
class Cluster:
    nodes: tuple[str, str]
    simulator: str
    database_url: str
    logs: Path

    def log_text(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.logs.glob("*.log"))
        )


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    if BACKEND != "postgres":
        pytest.skip("several nodes share PostgreSQL + Redis; the embedded default is one process")
    client = redis.Redis.from_url(REAL_REDIS_URL)
    client.flushdb()
    client.close()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")}
    sim_port = free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    common = clean | {
        "SUBAN_DATABASE_URL": database_url,
        "SUBAN_REDIS_URL": REAL_REDIS_URL,
        "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
        "SUBAN_WECHAT_API_BASE": f"{sim}/wechat",
        "SUBAN_WECOM_API_BASE": f"{sim}/wecom",
        "SUBAN_ENV": "dev",
    }
    with ExitStack() as stack:
        stack.enter_context(
            running_process(
                [sys.executable, "-m", "wechat.simulator", "--port", str(sim_port)],
                ready_url=f"{sim}/control/counters",
                log_path=tmp_path / "sim.log",
                env=clean,
            )
        )
        nodes = []
        for name in ("a", "b"):
            port = free_port()
            var = tmp_path / f"var-{name}"
            var.mkdir()
            env = common | {
                "SUBAN_PORT": str(port),
                "SUBAN_WORKERS": "2",
                "SUBAN_VAR_DIR": str(var),
            }
            stack.enter_context(
                running_process(
                    [SUBAN, "serve"],
                    ready_url=f"http://127.0.0.1:{port}/readyz",
                    log_path=tmp_path / f"node-{name}.log",
                    env=env,
                    timeout=90,
                )
            )
            nodes.append(f"http://127.0.0.1:{port}")
        for name in ("1", "2"):
            var = tmp_path / f"var-worker-{name}"
            var.mkdir()
            stack.enter_context(
                running_process(
                    [SUBAN, "worker"],
                    # A worker has no HTTP side: it is ready when the simulator answers, and the
                    # test waits for its deliveries anyway.
                    ready_url=f"{sim}/control/counters",
                    log_path=tmp_path / f"worker-{name}.log",
                    env=common | {"SUBAN_VAR_DIR": str(var)},
                )
            )
        yield Cluster((nodes[0], nodes[1]), sim, database_url, tmp_path)


def _node(base: str, http: httpx.AsyncClient) -> LiveServer:
    return LiveServer(app=None, base_url=base, http=http)  # type: ignore[arg-type]


async def _fresh_client(base: str) -> httpx.AsyncClient:
    # No keep-alive: every request a new connection, so both workers of a node take turns.
    return httpx.AsyncClient(
        base_url=base, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
    )


async def _sessions_and_limits(cluster: Cluster) -> None:
    a_base, b_base = cluster.nodes
    async with await _fresh_client(a_base) as a, await _fresh_client(b_base) as b:
        # A session made on one node is valid on the other, and ends on both at logout.
        token = await login(_node(a_base, a), "o-multinode-session")
        for _ in range(4):
            assert (await b.get("/api/v1/mp/me", headers=auth(token))).status_code == 200
        assert (await b.post("/api/v1/mp/logout", headers=auth(token))).status_code == 204
        for node in (a, b):
            assert (await node.get("/api/v1/mp/me", headers=auth(token))).status_code == 401
        # The per-number limit of the public progress lookup counts both nodes' answers.
        # A well-formed number nobody holds (a malformed one is refused before any counting).
        params = {"tracking_no": new_tracking_no(date.today()), "check": "0000"}
        codes = []
        for i in range(14):
            r = await (a if i % 2 else b).get("/api/v1/progress", params=params)
            codes.append(r.status_code)
        assert codes.count(404) == 10, codes
        assert codes[10:] == [429] * 4, codes


async def _phone_calls(cluster: Cluster, round_no: int) -> None:
    """Eight phone bindings at once, half on each node: each needs the access token."""
    a_base, b_base = cluster.nodes
    async with await _fresh_client(a_base) as a, await _fresh_client(b_base) as b:
        pairs = [(a_base, a), (b_base, b)] * 4
        tokens = [
            await login(_node(base, http), f"o-multinode-phone-{round_no}-{i}")
            for i, (base, http) in enumerate(pairs)
        ]
        answers = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/mp/phone",
                    json={"code": f"sim:139{round_no:02d}{i:06d}"},
                    headers=auth(token),
                )
                for i, ((_, http), token) in enumerate(zip(pairs, tokens, strict=True))
            )
        )
    assert [r.status_code for r in answers] == [200] * len(tokens), [r.text for r in answers]


async def _token_refresh_once(cluster: Cluster) -> None:
    async def fetched() -> int:
        async with httpx.AsyncClient(base_url=cluster.simulator, timeout=10) as sim:
            return int((await sim.get("/control/counters")).json()["counters"]["stable_token"])

    await _phone_calls(cluster, 1)
    # Four serving workers and two job workers: one fetch of the token for all of them.
    assert await fetched() == 1
    async with httpx.AsyncClient(base_url=cluster.simulator, timeout=10) as sim:
        assert (await sim.post("/control/tokens/expire")).status_code == 200
    # WeChat now refuses the token everywhere: the calls on both nodes refresh it once.
    await _phone_calls(cluster, 2)
    assert await fetched() == 2


async def _outbox_exactly_once(cluster: Cluster) -> None:
    a_base, b_base = cluster.nodes
    made: dict[str, Any] = {}
    conn = await asyncpg.connect(cluster.database_url.replace("postgresql://", "postgres://", 1))
    try:
        first_id = await conn.fetchval("SELECT COALESCE(MAX(id), 0) FROM outbox_message")
        async with await _fresh_client(a_base) as a, await _fresh_client(b_base) as b:
            async with httpx.AsyncClient(base_url=cluster.simulator, timeout=10) as sim:
                before = len((await sim.get("/control/messages")).json()["messages"])
            applicant = await person_token(_node(a_base, a))
            reviewer = await reviewer_token(_node(b_base, b))
            # Status changes on both nodes: filed on A, claimed and approved on B, completed on A.
            made = await filed(_node(a_base, a), applicant, taxpayer_id=COMPANY)
            sid, version = made["id"], made["version"]
            claimed = await staff_act(_node(b_base, b), reviewer, sid, "claim", version=version)
            assert claimed.status_code == 200, claimed.text
            approved = await staff_act(
                _node(b_base, b), reviewer, sid, "approve", version=claimed.json()["version"]
            )
            assert approved.status_code == 200, approved.text
            completed = await staff_act(
                _node(a_base, a),
                reviewer,
                sid,
                "complete",
                version=approved.json()["version"],
                result=f"{date.today().year % 100:02d}44{uuid.uuid4().int % 10**16:016d}",
            )
            assert completed.status_code == 200, completed.text
        # Both job workers run deliveries (nudged by every change and every minute).
        deadline = time.monotonic() + 120
        while True:
            pending = await conn.fetchval(
                "SELECT count(*) FROM outbox_message WHERE id > $1 AND status = 'pending'",
                first_id,
            )
            if pending == 0:
                break
            assert time.monotonic() < deadline, cluster.log_text()
            await asyncio.sleep(0.5)
        # Only this filing's messages: the workers also deliver what earlier tests left pending
        # in the shared database, and the jobs (reminders) write rows of their own.
        rows = await conn.fetch(
            "SELECT id, channel, status FROM outbox_message"
            " WHERE id > $1 AND payload::text LIKE $2",
            first_id,
            f"%{made['tracking_no']}%",
        )
    finally:
        await conn.close()
    assert rows, "the status changes announced nothing"
    assert {r["status"] for r in rows} == {"delivered"}, rows
    async with httpx.AsyncClient(base_url=cluster.simulator, timeout=10) as sim:
        sent = [
            m
            for m in (await sim.get("/control/messages")).json()["messages"][before:]
            if made["tracking_no"] in json.dumps(m, ensure_ascii=False)
        ]
    # Exactly once: as many messages reached WeChat as rows were delivered, none twice.
    assert len(sent) == len(rows), (sent, rows)
    keys = [repr(sorted(m.items())) for m in sent]
    assert len(set(keys)) == len(keys), sent


def test_two_nodes_share_sessions_limits_tokens_and_the_outbox(cluster: Cluster) -> None:
    try:
        asyncio.run(_sessions_and_limits(cluster))
        asyncio.run(_token_refresh_once(cluster))
        asyncio.run(_outbox_exactly_once(cluster))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{cluster.log_text()}") from exc
