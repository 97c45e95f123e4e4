"""A light load of taxpayers in a loop, and a tally of what they were answered.

Each client logs in once with its own openid and passes real-name verification, then repeats:
file a proxy-invoice request, look up its progress, read the hall's live status, and every few
rounds book a hall slot. A lost session (401) means logging in again with the same openid: the
account, and its verification, live in PostgreSQL. Every answer is checked against the contract:
an error must be the error shape, and a 5xx must be a 503 (anything else is a defect).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from tests.miniapp_api.filing_helpers import proxy_invoice_data

# Valid resident ID numbers of people outside the demo registry, one per client.
_ids = itertools.count(500)
NAMES = ("张伟", "王芳", "李娜", "刘洋", "赵静", "杨帆")


def fresh_id_number() -> str:
    body = f"11010119900308{next(_ids) % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


@dataclass
class Tally:
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    # 201s the clients saw: these must all be rows afterwards.
    submissions: set[int] = field(default_factory=set)
    appointments: set[int] = field(default_factory=set)
    defects: list[str] = field(default_factory=list)
    error_codes: Counter[str] = field(default_factory=Counter)
    # When each 5xx was answered (monotonic clock), to count those after a fault ended.
    failures_at: list[float] = field(default_factory=list)

    def record(self, route: str, response: httpx.Response) -> None:
        self.statuses.setdefault(route, Counter())[response.status_code] += 1
        if response.status_code >= 500:
            self.failures_at.append(time.monotonic())
        if response.status_code < 400:
            return
        try:
            error = response.json()["error"]
            code, message = error["code"], error["message"]
            if not (isinstance(code, str) and isinstance(message, str)):
                raise TypeError(code, message)
        except Exception:
            self.defects.append(
                f"{route} {response.status_code} not the error shape: {response.text[:200]}"
            )
            return
        self.error_codes[f"{response.status_code} {code}"] += 1
        if response.status_code >= 500 and response.status_code != 503:
            self.defects.append(f"{route} {response.status_code} {code}: {message}")

    def transport_error(self, route: str, exc: Exception) -> None:
        self.statuses.setdefault(route, Counter())[0] += 1
        self.defects.append(f"{route}: no answer ({type(exc).__name__})")

    def failures_after(self, moment: float) -> int:
        return sum(1 for at in self.failures_at if at > moment)

    def merge(self, other: Tally) -> None:
        for route, counts in other.statuses.items():
            self.statuses.setdefault(route, Counter()).update(counts)
        self.submissions |= other.submissions
        self.appointments |= other.appointments
        self.defects += other.defects
        self.error_codes.update(other.error_codes)
        self.failures_at += other.failures_at

    def requests(self) -> dict[str, int]:
        return {route: sum(c.values()) for route, c in sorted(self.statuses.items())}

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests(),
            "statuses": {
                route: {str(s): n for s, n in sorted(c.items())}
                for route, c in sorted(self.statuses.items())
            },
            "error_codes": dict(sorted(self.error_codes.items())),
            "accepted_submissions": len(self.submissions),
            "accepted_bookings": len(self.appointments),
            "defects": self.defects[:20],
        }


@dataclass
class Client:
    http: httpx.AsyncClient
    tally: Tally
    number: int
    openid: str = field(default_factory=lambda: f"o-fault-{uuid.uuid4().hex[:12]}")
    id_number: str = field(default_factory=fresh_id_number)
    token: str | None = None
    verified: bool = False
    tracking: tuple[str, str] | None = None
    slot_ids: list[int] = field(default_factory=list)
    rounds: int = 0

    async def call(self, route: str, method: str, url: str, **kw: Any) -> httpx.Response | None:
        try:
            response = await self.http.request(method, url, **kw)
        except httpx.TransportError as exc:
            self.tally.transport_error(route, exc)
            return None
        self.tally.record(route, response)
        if response.status_code == 401:
            self.token = None
        return response

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def ensure_session(self) -> bool:
        if self.token is None:
            r = await self.call(
                "login", "POST", "/api/v1/mp/login", json={"code": f"sim:{self.openid}"}
            )
            if r is None or r.status_code != 200:
                return False
            self.token = r.json()["token"]
        if not self.verified:
            body = {
                "name": NAMES[self.number % len(NAMES)],
                "id_type": "resident_id",
                "id_number": self.id_number,
                "verify_result": f"sim:{NAMES[self.number % len(NAMES)]}:{self.id_number}",
            }
            r = await self.call(
                "realname", "POST", "/api/v1/mp/realname", json=body, headers=self.auth()
            )
            if r is None or r.status_code != 200:
                return False
            self.verified = True
        return True

    async def one_round(self) -> None:
        self.rounds += 1
        await self.call("hall_status", "GET", "/api/v1/halls/liwan/status")
        if self.tracking is not None:
            tracking_no, check = self.tracking
            params = {"tracking_no": tracking_no, "check": check}
            await self.call("progress", "GET", "/api/v1/progress", params=params)
        if not await self.ensure_session():
            return
        headers = self.auth() | {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        body = {"form_code": "proxy_invoice", "data": proxy_invoice_data()}
        r = await self.call("file", "POST", "/api/v1/mp/submissions", json=body, headers=headers)
        if r is not None and r.status_code == 201:
            made = r.json()
            self.tally.submissions.add(int(made["id"]))
            self.tracking = (made["tracking_no"], self.id_number[-4:])
        if self.rounds % 4 == 1:
            await self.book()

    async def book(self) -> None:
        if not self.slot_ids:
            tomorrow = (date.today() + timedelta(days=1)).isoformat()
            r = await self.call(
                "slots", "GET", "/api/v1/halls/liwan/slots", params={"date": tomorrow}
            )
            if r is None or r.status_code != 200:
                return
            self.slot_ids = [s["slot_id"] for s in r.json() if s.get("remaining", 0) > 0]
            if not self.slot_ids:
                return
        slot_id = self.slot_ids.pop(self.number % len(self.slot_ids))
        r = await self.call(
            "book",
            "POST",
            "/api/v1/mp/appointments",
            json={"slot_id": slot_id},
            headers=self.auth(),
        )
        if r is not None and r.status_code == 201:
            self.tally.appointments.add(int(r.json()["appointment_id"]))


async def run_load(
    base: str, stop: asyncio.Event, tally: Tally, clients: int = 4, pause: float = 0.05
) -> None:
    """``clients`` taxpayers in a loop until ``stop`` is set."""

    async def loop(number: int) -> None:
        async with httpx.AsyncClient(
            base_url=base,
            timeout=20,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as http:
            client = Client(http, tally, number)
            while not stop.is_set():
                await client.one_round()
                await asyncio.sleep(pause)

    await asyncio.gather(*(loop(n) for n in range(clients)))


class Phases:
    """Wall-clock marks of a fault test, for the summary."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        self.marks[name] = round(time.monotonic() - self.started, 2)
