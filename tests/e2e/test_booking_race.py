"""Booking holds across worker processes (issue 6, Done when): ``suban serve`` with two workers on
PostgreSQL and real Redis, 100 verified people racing for a slot of capacity 5 → exactly 5
bookings, 95 refusals, and the slot's counter at 5 in the database."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import time
from pathlib import Path

import httpx
import pytest
import redis

from auth.models import WeChatAccount
from hall.models import Appointment, Slot
from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV, LiveServer
from tests.hall.appointment_helpers import in_days, make_slot, own_hall, verified_person
from tests.processes import free_port, running_process

pytestmark = pytest.mark.skipif(
    BACKEND != "postgres",
    reason="several workers need PostgreSQL (settings refuse SQLite with workers > 1)",
)
PEOPLE = 100
CAPACITY = 5


@pytest.fixture
def two_workers(live: LiveServer, database_url: str, tmp_path: Path) -> Iterator[str]:
    """``suban serve`` with two workers, started after ``live`` (which the test uses for the
    database and the session store) has flushed the shared Redis."""
    try:
        client = redis.Redis.from_url(REAL_REDIS_URL)
        client.ping()
        client.close()
    except redis.ConnectionError as exc:
        raise RuntimeError(f"real Redis at {REAL_REDIS_URL} does not answer") from exc
    sim_port, port = free_port(), free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")}
    sim_base = f"http://127.0.0.1:{sim_port}"
    env = base_env | {
        "SUBAN_DATABASE_URL": database_url,
        "SUBAN_VAR_DIR": str(tmp_path),
        "SUBAN_PORT": str(port),
        "SUBAN_WORKERS": "2",
        "SUBAN_REDIS_URL": REAL_REDIS_URL,
        # With two workers the app cannot mount the simulator in-process.
        "SUBAN_WECHAT_API_BASE": f"{sim_base}/wechat",
        "SUBAN_WECOM_API_BASE": f"{sim_base}/wecom",
        "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
        "SUBAN_ENV": "dev",
    }
    with (
        running_process(
            [sys.executable, "-m", "wechat.simulator", "--port", str(sim_port)],
            ready_url=f"{sim_base}/control/counters",
            log_path=tmp_path / "sim.log",
            env=base_env,
        ),
        running_process(
            [str(Path(sys.executable).with_name("suban")), "serve"],
            ready_url=f"http://127.0.0.1:{port}/readyz",
            log_path=tmp_path / "serve.log",
            env=env,
        ),
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def race_hall(live: LiveServer) -> AsyncIterator[str]:
    async with own_hall() as hall_id:
        yield hall_id


async def _tokens(live: LiveServer, count: int) -> list[str]:
    """Verified people with mini-program sessions, made through the same functions the app's
    login and real-name verification use rather than 100 face verifications over HTTP."""
    tokens = []
    for _ in range(count):
        person, _number = await verified_person(live.app.ctx.keyring)
        account = await WeChatAccount.get(person_id=person.id)
        tokens.append(await live.app.ctx.sessions.create("mp", account.id, person.id))
    return tokens


async def test_hundred_people_race_for_five_places_on_two_workers(
    live: LiveServer, race_hall: str, two_workers: str
) -> None:
    slot = await make_slot(race_hall, in_days(2), time(10), time(11), capacity=CAPACITY)
    tokens = await _tokens(live, PEOPLE)
    # Fresh connections for every request, so the kernel spreads them over both workers.
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=PEOPLE)
    async with httpx.AsyncClient(base_url=two_workers, timeout=60, limits=limits) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/mp/appointments",
                    json={"slot_id": slot.id},
                    headers={"Authorization": f"Bearer {token}"},
                )
                for token in tokens
            )
        )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * CAPACITY + [409] * (PEOPLE - CAPACITY), [
        r.text for r in answers if r.status_code not in (201, 409)
    ]
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {"SLOT_FULL"}
    assert (await Slot.get(id=slot.id)).booked == CAPACITY
    assert await Appointment.filter(slot_id=slot.id, status="booked").count() == CAPACITY
