"""Outbox delivery on the real job path: the ``deliver_outbox`` job sends through the real WeChat
clients to the simulator, which records what it received.

* In-process (both backends): the app with the simulator mounted; the test calls the job function
  (or nudges the embedded runner) and reads the simulator's record.
* Production shape (PostgreSQL backend): a real ``suban worker`` process (arq, real Redis) and the
  simulator as its own process. A message written while no worker runs waits in the outbox; the
  worker, once started, delivers it exactly once, also across an injected transient fault.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
import redis
import redis.asyncio as redis_asyncio
from tortoise import Tortoise
from tortoise.transactions import in_transaction

from auth import clock
from auth.audit import Actor
from auth.models import OutboxMessage, Person, WeChatAccount
from auth.outbox import deliver_due, enqueue_message
from forms import lifecycle
from forms.models import Submission
from miniapp_api.database import tortoise_config
from miniapp_api.jobs import deliver_outbox, enqueue, wechat_sender
from miniapp_api.settings import SIMULATOR_PREFIX
from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV, LiveServer
from tests.processes import PROJECT_ROOT, free_port, running_process

_unique = itertools.count(1)


def _openid() -> str:
    # Unique per test run as well: the session database and the simulator outlive one test.
    return f"o-outbox-{os.getpid()}-{next(_unique)}"


async def write_status_change(openid: str, *, text: str = "已通过") -> str:
    """What forms/lifecycle.py does on a status change: the outbox row in the change's
    transaction. Returns its dedupe key."""
    key = f"test-delivery:{openid}"
    async with in_transaction():
        await enqueue_message(
            channel="subscribe",
            recipient=openid,
            template="sim-tmpl-status",
            payload={
                "data": {"character_string1": "SB0001", "phrase3": text},
                "page": "pages/progress/index?id=1",
            },
            dedupe_key=key,
            now=clock.now(),
        )
    return key


def _is_502_on_send(error: str | None) -> bool:
    # Method, path (below whichever API base) and failure: no query string, no recipient.
    return (error or "").startswith("WeChatUnavailable: POST /") and (error or "").endswith(
        "/cgi-bin/message/subscribe/send: HTTP 502"
    )


def received(messages: list[dict[str, Any]], recipient: str) -> list[dict[str, Any]]:
    return [m["body"] for m in messages if m["body"].get("touser") == recipient]


async def until(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.1)


# ------------------------------------------------------------------------------- in-process


def _sim_messages(live: LiveServer, channel: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = live.app.ctx.simulator_state.messages
    return [m for m in messages if m["channel"] == channel]


def _job_ctx(live: LiveServer) -> dict[str, Any]:
    return {"settings": None, "redis": live.app.ctx.redis, "wechat": live.app.ctx.wechat}


async def drain(live: LiveServer) -> None:
    """Deliver what other tests left due in the shared database, so an injected fault meets this
    test's message and no other. Earlier tests' apps may have stopped mid-send, leaving rows
    claimed for up to a minute (as a dead worker would): their leases are ended first."""
    sender = wechat_sender(live.app.ctx.wechat)
    await OutboxMessage.filter(status="pending", locked_until__gt=clock.now()).update(
        locked_until=clock.now() - timedelta(seconds=1)
    )

    async def empty() -> bool:
        await deliver_due(sender, clock.now)
        due = OutboxMessage.filter(status="pending", next_attempt_at__lte=clock.now())
        return not await due.exists()

    await until(empty, timeout=10, what="an outbox with nothing due")


async def inject(live: LiveServer, fault: dict[str, Any]) -> None:
    await drain(live)
    answer = await live.http.post(f"{SIMULATOR_PREFIX}/control/faults", json=fault)
    assert answer.is_success, answer.text


async def test_the_job_sends_a_subscribe_message_once(live: LiveServer) -> None:
    openid = _openid()
    key = await write_status_change(openid)
    await deliver_outbox(_job_ctx(live))
    await deliver_outbox(_job_ctx(live))
    # Through the control API, as any client of the simulator reads it.
    listed = await live.http.get(f"{SIMULATOR_PREFIX}/control/messages?channel=subscribe")
    (body,) = received(listed.json()["messages"], openid)
    assert body["template_id"] == "sim-tmpl-status"
    assert body["data"] == {
        "character_string1": {"value": "SB0001"},
        "phrase3": {"value": "已通过"},
    }
    assert body["page"] == "pages/progress/index?id=1"
    row = await OutboxMessage.get(dedupe_key=key)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 1, None)


async def test_the_job_sends_a_wecom_app_message(live: LiveServer) -> None:
    userid = f"wecom-{_openid()}"
    card = {
        "title": "代开发票申请待审批",
        "description": "SB0002",
        "url": "https://example.invalid/",
    }
    await enqueue_message(
        channel="wecom",
        recipient=userid,
        template="textcard",
        payload=card,
        dedupe_key=f"test-wecom:{userid}",
        now=clock.now(),
    )
    await deliver_outbox(_job_ctx(live))
    (body,) = received(_sim_messages(live, "wecom"), userid)
    assert body["msgtype"] == "textcard"
    assert body["textcard"] == card
    assert body["agentid"] == live.app.ctx.wechat.wecom.agent_id


async def test_a_transient_fault_is_retried_after_the_backoff_and_delivered_once(
    live: LiveServer,
) -> None:
    openid = _openid()
    await inject(live, {"endpoint": "subscribe_send", "kind": "http", "status": 502})
    key = await write_status_change(openid)
    sender = wechat_sender(live.app.ctx.wechat)
    report = await deliver_due(sender, clock.now)
    # The embedded runner may have taken it first; either way exactly one attempt failed.
    row = await OutboxMessage.get(dedupe_key=key)
    assert report.delivered == 0
    assert (row.status, row.attempts) == ("pending", 1)
    assert _is_502_on_send(row.last_error)
    assert received(_sim_messages(live, "subscribe"), openid) == []
    # Not due before the backoff has passed …
    await deliver_due(sender, clock.now)
    assert (await OutboxMessage.get(dedupe_key=key)).attempts == 1

    # … and delivered once after it.
    def later() -> datetime:
        return clock.now() + timedelta(seconds=31)

    await deliver_due(sender, later)
    assert len(received(_sim_messages(live, "subscribe"), openid)) == 1
    row = await OutboxMessage.get(dedupe_key=key)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 2, None)


async def test_a_refused_subscription_is_given_up_without_retry(live: LiveServer) -> None:
    openid = _openid()
    await inject(live, {"endpoint": "subscribe_send", "kind": "errcode", "errcode": 43101})
    key = await write_status_change(openid)
    await deliver_outbox(_job_ctx(live))
    row = await OutboxMessage.get(dedupe_key=key)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == "OtherWeChatError errcode 43101: user refused the subscription"
    assert openid not in (row.last_error or "")


async def test_system_busy_is_retried_by_the_transport_within_one_attempt(
    live: LiveServer,
) -> None:
    # errcode -1 means Tencent did nothing: the transport itself retries it, even for a send.
    openid = _openid()
    await inject(live, {"endpoint": "subscribe_send", "kind": "errcode", "errcode": -1})
    key = await write_status_change(openid)
    await deliver_outbox(_job_ctx(live))
    assert len(received(_sim_messages(live, "subscribe"), openid)) == 1
    assert (await OutboxMessage.get(dedupe_key=key)).attempts == 1


@pytest.mark.skipif(BACKEND != "embedded", reason="the in-process runner is the embedded default's")
async def test_a_nudge_after_commit_delivers_without_waiting_for_the_minute(
    live: LiveServer,
) -> None:
    openid = _openid()
    await write_status_change(openid)
    await enqueue(live.app, "deliver_outbox")

    async def arrived() -> bool:
        return len(received(_sim_messages(live, "subscribe"), openid)) == 1

    await until(arrived, timeout=5, what="delivery after the nudge")


# ----------------------------------------------------------------------- real worker process


@dataclass
class Deployment:
    env: dict[str, str]
    sim_base: str
    logs: Path


@pytest.fixture
def deployment(database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """The simulator as its own process and the environment a ``suban worker`` needs; the worker
    itself is started by the test."""
    if BACKEND != "postgres":
        pytest.skip("a separate worker process needs real Redis (the postgres backend)")
    try:
        client = redis.Redis.from_url(REAL_REDIS_URL)
        client.flushdb()
        client.close()
    except redis.ConnectionError as exc:
        raise RuntimeError(f"real Redis at {REAL_REDIS_URL} does not answer") from exc
    sim_port = free_port()
    sim_base = f"http://127.0.0.1:{sim_port}"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")}
    env = base_env | {
        "SUBAN_DATABASE_URL": database_url,
        "SUBAN_REDIS_URL": REAL_REDIS_URL,
        "SUBAN_VAR_DIR": str(tmp_path),
        "SUBAN_WECHAT_API_BASE": f"{sim_base}/wechat",
        "SUBAN_WECOM_API_BASE": f"{sim_base}/wecom",
        "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
        "SUBAN_ENV": "dev",
    }
    with running_process(
        [sys.executable, "-m", "wechat.simulator", "--port", str(sim_port)],
        ready_url=f"{sim_base}/control/counters",
        log_path=tmp_path / "sim.log",
        env=base_env,
    ):
        yield Deployment(env=env, sim_base=sim_base, logs=tmp_path)


@contextmanager
def running_worker(deployment: Deployment) -> Iterator[subprocess.Popen[bytes]]:
    """``suban worker`` as an operator starts it; stopped with TERM (arq shuts down cleanly),
    then KILL, and its process group cleared."""
    log_path = deployment.logs / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
            [str(Path(sys.executable).with_name("suban")), "worker"],
            cwd=PROJECT_ROOT,
            env=deployment.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
async def orm(database_url: str) -> AsyncIterator[None]:
    """This test process's own connection to the session database, to write the status change
    as the app would."""
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    try:
        yield
    finally:
        await Tortoise.close_connections()


async def _sim_received(sim: httpx.AsyncClient, recipient: str) -> list[dict[str, Any]]:
    answer = await sim.get("/control/messages", params={"channel": "subscribe"})
    answer.raise_for_status()
    return received(answer.json()["messages"], recipient)


def _alive(worker: subprocess.Popen[bytes], deployment: Deployment) -> None:
    if worker.poll() is not None:
        log = (deployment.logs / "worker.log").read_text(errors="replace")
        raise AssertionError(f"suban worker exited ({worker.returncode}):\n{log}")


async def _nudge() -> None:
    """What a route does after committing a change: ``enqueue(app, "deliver_outbox")``; with a
    real Redis that is an arq job on the shared queue, for whichever worker takes it."""
    client = redis_asyncio.from_url(REAL_REDIS_URL)
    try:
        app = SimpleNamespace(ctx=SimpleNamespace(redis=client))
        await enqueue(cast(Any, app), "deliver_outbox")
    finally:
        await client.aclose()


@pytest.mark.postgres
async def test_a_message_written_while_no_worker_runs_arrives_once_the_worker_starts(
    deployment: Deployment, orm: None
) -> None:
    openid = _openid()
    async with httpx.AsyncClient(base_url=deployment.sim_base, timeout=10) as sim:
        key = await write_status_change(openid)
        await asyncio.sleep(1)
        assert await _sim_received(sim, openid) == []
        assert (await OutboxMessage.get(dedupe_key=key)).status == "pending"

        with running_worker(deployment) as worker:

            async def arrived() -> bool:
                _alive(worker, deployment)
                return len(await _sim_received(sim, openid)) > 0

            # The worker runs the delivery job at start-up (arq cron, run_at_startup).
            await until(arrived, timeout=30, what="delivery by the started worker")
            # A later message, nudged as a route does after its commit.
            second = _openid()
            await write_status_change(second, text="已办结")
            await _nudge()

            async def second_arrived() -> bool:
                _alive(worker, deployment)
                return len(await _sim_received(sim, second)) > 0

            await until(second_arrived, timeout=30, what="delivery after the nudge")
            # More runs (another nudge) find nothing left to send.
            await _nudge()
            await asyncio.sleep(2)

        assert len(await _sim_received(sim, openid)) == 1
        assert len(await _sim_received(sim, second)) == 1
    for dedupe_key in (key, f"test-delivery:{second}"):
        row = await OutboxMessage.get(dedupe_key=dedupe_key)
        assert (row.status, row.attempts) == ("delivered", 1)


@pytest.mark.postgres
async def test_a_transient_fault_at_the_worker_is_retried_and_delivered_once(
    deployment: Deployment, orm: None
) -> None:
    openid, probe = _openid(), _openid()
    async with httpx.AsyncClient(base_url=deployment.sim_base, timeout=10) as sim:
        with running_worker(deployment) as worker:
            # Other tests leave messages due in the shared database, some still claimed by an
            # app that stopped mid-send (their leases are ended here, as a minute would). The
            # worker sends them first (oldest due first), so once a probe written now has arrived
            # the fault below meets this test's message and no other.
            await OutboxMessage.filter(status="pending", locked_until__gt=clock.now()).update(
                locked_until=clock.now() - timedelta(seconds=1)
            )
            await write_status_change(probe)

            async def probe_arrived() -> bool:
                _alive(worker, deployment)
                return len(await _sim_received(sim, probe)) > 0

            await until(probe_arrived, timeout=30, what="the probe's delivery")
            await asyncio.sleep(0.5)
            # A 502 on the send: not retried by the transport (the send may have happened), so
            # the outbox's backoff takes over.
            fault = {"endpoint": "subscribe_send", "kind": "http", "status": 502}
            (await sim.post("/control/faults", json=fault)).raise_for_status()
            key = await write_status_change(openid)
            await _nudge()

            async def attempted() -> bool:
                _alive(worker, deployment)
                row = await OutboxMessage.get(dedupe_key=key)
                return row.attempts == 1 and row.locked_until is None

            await until(attempted, timeout=30, what="the first attempt")
            row = await OutboxMessage.get(dedupe_key=key)
            assert row.status == "pending"
            assert _is_502_on_send(row.last_error)
            assert row.next_attempt_at > clock.now()
            assert await _sim_received(sim, openid) == []

            # The backoff passes (moved forward here rather than waited for), then a run.
            await OutboxMessage.filter(id=row.id).update(next_attempt_at=clock.now())
            await _nudge()

            async def arrived() -> bool:
                _alive(worker, deployment)
                return len(await _sim_received(sim, openid)) > 0

            await until(arrived, timeout=30, what="delivery on the retry")
            await _nudge()
            await asyncio.sleep(2)

        assert len(await _sim_received(sim, openid)) == 1
    row = await OutboxMessage.get(dedupe_key=key)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 2, None)


@pytest.mark.postgres
async def test_a_submission_withdrawn_while_no_worker_runs_is_announced_once(
    deployment: Deployment, orm: None
) -> None:
    """The issue's test on the real path: forms/lifecycle.py changes a status (writing the
    outbox row in its transaction) while no worker runs; a worker started later delivers the
    applicant's subscribe message exactly once."""
    openid = _openid()
    person = await Person.create(id_type="resident_id", verified_at=clock.now())
    await WeChatAccount.create(openid=openid, person=person, last_login_at=clock.now())
    submission = await Submission.create(
        tracking_no=f"SB26-OBX{next(_unique):04d}",
        form_code="proxy_invoice",
        form_version=1,
        applicant=person,
        status="submitted",
        data_sealed="-",
        idempotency_key=f"outbox-{openid}",
        body_hash="-",
        check_applicant="-",
    )
    notice = lifecycle.Notice("sim-tmpl-status", form_title=lambda code: "代开增值税发票")
    changed = await lifecycle.transition(
        submission.id, "withdraw", expected_version=1, actor=Actor("mp", 1), notice=notice
    )
    assert changed.status == "withdrawn"
    async with httpx.AsyncClient(base_url=deployment.sim_base, timeout=10) as sim:
        await asyncio.sleep(1)
        assert await _sim_received(sim, openid) == []
        with running_worker(deployment) as worker:

            async def arrived() -> bool:
                _alive(worker, deployment)
                return len(await _sim_received(sim, openid)) > 0

            await until(arrived, timeout=30, what="delivery by the started worker")
            await _nudge()
            await asyncio.sleep(2)
        bodies = await _sim_received(sim, openid)
    assert len(bodies) == 1
    assert bodies[0]["data"]["phrase3"] == {"value": "已撤回"}
    assert bodies[0]["data"]["character_string1"] == {"value": submission.tracking_no}
    row = await OutboxMessage.get(dedupe_key=f"submission:{submission.id}:v2:applicant")
    assert (row.status, row.attempts) == ("delivered", 1)
