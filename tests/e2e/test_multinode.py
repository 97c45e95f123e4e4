"""Two nodes, one state: two ``suban serve`` processes (own ports, two workers each) and two
``suban worker`` processes on one PostgreSQL and one Redis, with the WeChat simulator as its own
process. What one node does, the other sees: sessions, rate limits, the WeChat access token (one
refresh for the whole cluster), outbox messages delivered exactly once, a slot's places (never
overbooked by people racing through both nodes) and the hall's live status (a heartbeat posted to
one node reaches the WebSocket readers of every worker of both)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from forms.tracking import new_tracking_no
from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV, LiveServer, run_cli
from tests.e2e.test_hall_workers import (
    HEARTBEAT,
    _arrival,
    _people_of_cam1,
    _signed,
    readers_on_both_workers,
)
from tests.hall.appointment_helpers import resident_id
from tests.miniapp_api.filing_helpers import (
    COMPANY,
    filed,
    person_token,
    reviewer_token,
    staff_act,
)
from tests.miniapp_api.test_mp_realname import auth, claim, login, verify
from tests.processes import free_port, running_process

# Marked rather than skipped in the fixture: the embedded backend then skips without first
# building the suite's database that the cluster would use.
pytestmark = pytest.mark.skipif(
    BACKEND != "postgres",
    reason="several nodes share PostgreSQL + Redis; the embedded default is one process",
)
SUBAN = str(Path(sys.executable).with_name("suban"))
# The demo hall: its opening hours, its cameras and their signing secret come with the demo data.
HALL = "liwan"
PEOPLE = 60
CAPACITY = 5
# Verifications in flight at once while making the people: enough to be quick, few enough that
# a loaded two-core machine answers each well within its timeout.
MAKING_AT_ONCE = 8
STAFF_PASSWORD = "multinode password 123"
# API.md promises live updates "on every change"; across nodes they go through Redis pub/sub,
# which on loopback takes milliseconds. Two seconds leaves room for a loaded machine.
LIVE_WITHIN = 2.0


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


def _wait_for_workers(log: Path, workers: int) -> None:
    """/readyz answers once one worker is up; the steps need every worker of a node serving."""
    deadline = time.monotonic() + 60
    while log.read_text(errors="replace").count("Worker ready") < workers:
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.1)


# One cluster for the module: starting it (six processes) is most of a test's time.
@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp_path = tmp_path_factory.mktemp("cluster")
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
        for name in ("a", "b"):
            _wait_for_workers(tmp_path / f"node-{name}.log", 2)
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


async def _connect(cluster: Cluster) -> asyncpg.Connection:
    return await asyncpg.connect(cluster.database_url.replace("postgresql://", "postgres://", 1))


async def _hall_manager(cluster: Cluster, http: httpx.AsyncClient) -> str:
    """A staff session allowed to make slots: the demo reviewer is not, so an operator adds a
    hall manager with the real CLI, as on a deployment."""
    username = f"mn{uuid.uuid4().hex[:10]}"
    var = cluster.logs / "var-cli"
    var.mkdir(exist_ok=True)
    env = {
        "SUBAN_DATABASE_URL": cluster.database_url,
        "SUBAN_VAR_DIR": str(var),
        "SUBAN_STAFF_PASSWORD": STAFF_PASSWORD,
    }
    done = await asyncio.to_thread(
        run_cli, "staff", "add", username, "--role", "hall_manager", env=env
    )
    assert done.returncode == 0, done.stderr
    r = await http.post(
        "/api/v1/staff/login", json={"username": username, "password": STAFF_PASSWORD}
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def _open_period(open_hours: list[dict[str, Any]]) -> tuple[date, str, str]:
    """A day the hall opens and one of its opening periods. Two days ahead, so the slot has not
    started on the hall's clock whatever this machine's time zone."""
    first = date.today() + timedelta(days=2)
    for day in (first + timedelta(days=n) for n in range(14)):
        for period in open_hours:
            if day.isoweekday() in period["weekdays"]:
                return day, period["start"], period["end"]
    raise AssertionError(f"{HALL} never opens: {open_hours}")


async def _small_slot(cluster: Cluster, a: httpx.AsyncClient, b: httpx.AsyncClient) -> Any:
    """A new slot of ``CAPACITY`` places in the demo hall, made by a hall manager logged in on
    node A through node B; its staff view."""
    halls = (await a.get("/api/v1/halls")).json()
    open_hours = next(h["open_hours"] for h in halls if h["hall_id"] == HALL)
    day, start, end = _open_period(open_hours)
    manager = await _hall_manager(cluster, a)
    body = {
        "date": day.isoformat(),
        "start": start,
        "end": end,
        "category": "invoice",
        "capacity": CAPACITY,
        # A window of its own: the demo slots hold (hall, category, date, start) already.
        "window": f"mn-{uuid.uuid4().hex[:8]}",
    }
    r = await b.post(f"/api/v1/staff/halls/{HALL}/slots", json=body, headers=auth(manager))
    assert r.status_code == 201, r.text
    assert r.json()["remaining"] == CAPACITY
    return r.json()


async def _verified_people(a_base: str, b_base: str) -> list[tuple[str, str]]:
    """(node, session token) of ``PEOPLE`` real-name verified people, each made through the
    mini-program's login and face verification on alternating nodes."""
    run = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(MAKING_AT_ONCE)

    async def one(i: int, base: str, http: httpx.AsyncClient) -> tuple[str, str]:
        async with gate:
            node = _node(base, http)
            token = await login(node, f"o-mn-book-{run}-{i}")
            r = await verify(node, token, claim("测试人", resident_id()))
            assert r.status_code == 200, r.text
            return base, token

    async with await _fresh_client(a_base) as a, await _fresh_client(b_base) as b:
        pairs = [(a_base, a), (b_base, b)] * (PEOPLE // 2)
        return await asyncio.gather(*(one(i, *pair) for i, pair in enumerate(pairs)))


async def _booking_capacity_exact(cluster: Cluster) -> None:
    """``PEOPLE`` people race for ``CAPACITY`` places, half through each node: the conditional
    UPDATE in the shared database, not any worker's memory, decides who gets one."""
    a_base, b_base = cluster.nodes
    async with await _fresh_client(a_base) as a, await _fresh_client(b_base) as b:
        slot = await _small_slot(cluster, a, b)
    people = await _verified_people(a_base, b_base)
    # Fresh connections for every request: the kernel spreads the bookings over the workers.
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=PEOPLE)
    async with (
        httpx.AsyncClient(base_url=a_base, timeout=60, limits=limits) as a,
        httpx.AsyncClient(base_url=b_base, timeout=60, limits=limits) as b,
    ):
        clients = {a_base: a, b_base: b}
        answers = await asyncio.gather(
            *(
                clients[base].post(
                    "/api/v1/mp/appointments",
                    json={"slot_id": slot["slot_id"]},
                    headers=auth(token),
                )
                for base, token in people
            )
        )
        codes = sorted(r.status_code for r in answers)
        assert codes == [201] * CAPACITY + [409] * (PEOPLE - CAPACITY), [
            r.text for r in answers if r.status_code not in (201, 409)
        ]
        refusals = {r.json()["error"]["code"] for r in answers if r.status_code == 409}
        assert refusals == {"SLOT_FULL"}, refusals
        # Both nodes (over fresh connections, so either worker) read the slot as full.
        params = {"date": slot["date"], "category": "invoice"}
        for http in (a, b) * 2:
            listed = (await http.get(f"/api/v1/halls/{HALL}/slots", params=params)).json()
            assert [s["remaining"] for s in listed if s["slot_id"] == slot["slot_id"]] == [0]
    conn = await _connect(cluster)
    try:
        booked = await conn.fetchval("SELECT booked FROM hall_slot WHERE id = $1", slot["slot_id"])
        holders = await conn.fetch(
            "SELECT person_id FROM hall_appointment WHERE slot_id = $1 AND status = 'booked'",
            slot["slot_id"],
        )
    finally:
        await conn.close()
    assert booked == CAPACITY
    assert len(holders) == len({h["person_id"] for h in holders}) == CAPACITY, holders


async def _live_status_on_both_nodes(cluster: Cluster) -> None:
    """Readers held by both workers of both nodes; one signed heartbeat posted to node A."""
    a_base, b_base = cluster.nodes
    async with (
        readers_on_both_workers(a_base) as (a_readers, a_firsts),
        readers_on_both_workers(b_base) as (b_readers, b_firsts),
        await _fresh_client(a_base) as a,
        await _fresh_client(b_base) as b,
    ):
        firsts = a_firsts + b_firsts
        assert {first["hall_id"] for first in firsts} == {HALL}
        people = 100 + int(time.time() * 1000) % 800
        assert people not in {_people_of_cam1(first) for first in firsts}
        readers = [("a", ws) for ws in a_readers] + [("b", ws) for ws in b_readers]
        waits = {asyncio.create_task(_arrival(ws, people)): node for node, ws in readers}
        await asyncio.sleep(0.1)  # every reader is waiting
        body, headers = _signed({"camera_id": "cam-1", "people_count": people})
        loop = asyncio.get_running_loop()
        posted = loop.time()
        r = await a.post(HEARTBEAT, content=body, headers=headers)
        assert r.status_code == 200, r.text
        # Longer than LIVE_WITHIN, so a late reader is told apart from one that never heard.
        done, missing = await asyncio.wait(waits, timeout=LIVE_WITHIN + 8)
        for task in missing:
            task.cancel()
        assert not missing, f"readers on nodes {sorted(waits[t] for t in missing)} never heard"
        late = sorted(
            (waits[t], round(t.result() - posted, 3))
            for t in done
            if t.result() - posted >= LIVE_WITHIN
        )
        assert not late, f"readers (node, seconds after the POST) were late: {late}"
        # Plain GETs on both nodes (either worker) serve the new count too.
        for http in (a, b) * 2:
            status = (await http.get(f"/api/v1/halls/{HALL}/status")).json()
            assert _people_of_cam1(status) == people


def _steps(cluster: Cluster, *steps: Callable[[Cluster], Coroutine[Any, Any, None]]) -> None:
    try:
        for step in steps:
            asyncio.run(step(cluster))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{cluster.log_text()}") from exc


def test_two_nodes_share_sessions_limits_tokens_and_the_outbox(cluster: Cluster) -> None:
    _steps(cluster, _sessions_and_limits, _token_refresh_once, _outbox_exactly_once)


def test_two_nodes_keep_slot_capacity_exact_and_send_live_status_to_all_readers(
    cluster: Cluster,
) -> None:
    _steps(cluster, _booking_capacity_exact, _live_status_on_both_nodes)
