"""The hall under load: ``GET /api/v1/halls/liwan/status``, ``POST /api/v1/mp/appointments``
(booking) and the WebSocket fan-out of ``WS /api/v1/halls/liwan/live`` of ``suban serve`` with
2 workers in production mode on PostgreSQL and Redis, beside the bare Sanic JSON route
(bench/bare_app.py, 2 workers), all in the same run.

    flock /tmp/suban-bench.lock .venv/bin/python bench/hall.py      # ~6 minutes

Targets (issue 6): status >= 0.6x the bare route's requests/s; 2,000 concurrent WebSocket
subscribers on 2 workers receive an update with p99 < 1 s and none misses one; booking exact
under a race (capacity C, N >> C concurrent bookers -> exactly C bookings; issue 6 and 8), its
throughput reported beside the bare route. Defaults: ``--seconds 10 --rounds 5 --warmup 3
--clients 64 --people 400 --slots 200 --subscribers 2000 --client-procs 4 --heartbeats 20
--interval 2 --race-people 200 --race-capacity 5 --profile-seconds 10`` (0: no py-spy).

Needs wrk, PostgreSQL on 127.0.0.1:5432 (trust auth as postgres; ``--pg``), Redis on
127.0.0.1:6379 (``--redis``, db 13 by default: never 14, the test suite's), the ``websockets``
package and, for profiles, py-spy in the venv. It creates its own database ``suban_bench_hall``,
flushes only its own Redis db, and drops/flushes both at the end.

Set-up: ``suban migrate``, then ``suban demo`` in dev mode (the demo refuses production) with a
fresh ``SUBAN_DEMO_DEVICE_SECRET`` that the production server is then given too (production
refuses the published default); ``--people`` verified people with mini-program sessions and
``--slots`` slots of the demo hall 30+ days ahead (capacity = people) made in this process
through the app's own models and session store, as tests/e2e/test_booking_race.py does; one
signed heartbeat of camera cam-1 so the hall has a status.

Rounds, alternating bare route / status / book, each after the machine is nearly idle (a round
in which other processes took over 15% of the busy CPU is measured again, ``--retries`` times):
wrk -t2 -c64 GET of the bare route and of the status; wrk -t2 -c64 POST of bookings, person n
mod P on slot n div P (every request a new (person, slot) pair, so each should be a 201).
Then the race, the WebSocket fan-out (``--client-procs`` processes of this script in
``--ws-client`` mode hold the subscribers; each heartbeat carries a new people count, and every
subscriber's receipt of it is timed against the moment before the POST), and py-spy profiles of
a worker under each load whose target was missed. Printed and appended to bench/results/hall.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

# The project root first: this script's name would otherwise hide the ``hall`` package.
_BENCH, _ROOT = str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])
sys.path[:] = [_ROOT, _BENCH, *(p for p in sys.path if p not in (_ROOT, _BENCH))]

from harness import (  # noqa: E402
    TICKS,
    CpuMeter,
    Round,
    append_results,
    code_version,
    cpu_line,
    disturbed_lines,
    fresh_stores,
    measure_again_if_disturbed,
    processes,
    profile_busier_worker,
    rate_lines,
    refuse_test_redis,
    run_wrk,
    scalar,
    start,
    suban_env,
    tear_down,
    wait_quiet,
)

HALL = "liwan"
CAMERA = "cam-1"
CATEGORY = "invoice"
STATUS_PATH = f"/api/v1/halls/{HALL}/status"
LIVE_PATH = f"/api/v1/halls/{HALL}/live"
HEARTBEAT_PATH = "/api/v1/devices/heartbeat"
TARGETS = ("bare /healthz", "status", "book")
STATUS_TARGET = 0.6
HEALTHZ_TARGET = 0.9
BUCKETS = (
    ("Sanic: HTTP server, routing, responses", ("sanic/", "sanic_routing", "httptools")),
    ("WebSockets: websockets", ("websockets/",)),
    ("PostgreSQL: Tortoise/pypika/asyncpg", ("tortoise/", "pypika", "asyncpg/")),
    ("Redis: redis-py", ("redis/",)),
    ("validation: pydantic", ("pydantic",)),
    ("hall code: hall/", ("/hall/",)),
    ("app: miniapp_api/, auth/", ("miniapp_api/", "/auth/")),
    ("json", ("json/",)),
)

# POST a booking: person n mod P on slot n div P, n counted from an offset that grows from round
# to round; args: tokens-file slots-file threads offset
LUA_BOOK = """
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local function lines(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = line end
  return out
end
function init(args)
  tokens = lines(args[1])
  slots = lines(args[2])
  nthreads = tonumber(args[3])
  offset = tonumber(args[4])
  k = 0
end
function request()
  local n = offset + id + k * nthreads
  k = k + 1
  local p = n % #tokens
  local s = math.floor(n / #tokens) % #slots
  return wrk.format("POST", nil, {
    ["Authorization"] = "Bearer " .. tokens[p + 1],
    ["Content-Type"] = "application/json",
  }, '{"slot_id": ' .. slots[s + 1] .. '}')
end
"""


# ---------------------------------------------------------------- set-up in this process


async def _seed(env: dict[str, str], people: int, slots: list[int]) -> tuple[list[str], list[int]]:
    """``people`` verified people with mini-program sessions, and a slot of the demo hall for
    each capacity in ``slots`` (30+ days ahead, clear of the demo's 14 days): their tokens and
    the slot ids."""
    from datetime import time as hhmm
    from datetime import timedelta

    import redis.asyncio as redis_asyncio
    from tortoise import Tortoise

    from auth import clock
    from auth.models import Person, WeChatAccount
    from auth.taxpayers import ID_NUMBER_INDEX
    from hall.models import Slot
    from hall.slots import NO_WINDOW, hall_time
    from miniapp_api.app import keyring_from
    from miniapp_api.database import tortoise_config
    from miniapp_api.sessions_setup import session_store
    from miniapp_api.settings import Settings

    settings = Settings.from_env(env)
    keyring = keyring_from(settings)
    await Tortoise.init(config=tortoise_config(settings.database_url), _enable_global_fallback=True)
    redis = redis_asyncio.Redis.from_url(settings.redis_url)
    sessions = session_store(redis, settings)
    serial = int(time.time()) % 100_000

    async def one(i: int) -> str:
        body = f"1101011980{1 + i % 12:02d}{1 + i // 12 % 28:02d}{(serial + i) % 1000:03d}"
        weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        number = (
            body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
        )
        person = await Person.create(
            id_number_index=keyring.blind_index(number, purpose=ID_NUMBER_INDEX),
            verified_at=clock.now(),
            id_type="resident_id",
        )
        person.name_sealed = keyring.seal("压测人", table="person", column="name", row_id=person.id)
        await person.save(update_fields=["name_sealed"])
        account = await WeChatAccount.create(openid=f"bench-hall-{serial}-{i}", person=person)
        return str(await sessions.create("mp", account.id, person.id))

    try:
        tokens: list[str] = []
        for first in range(0, people, 50):
            tokens += await asyncio.gather(*(one(i) for i in range(first, min(first + 50, people))))
        today = clock.now().date()
        slot_ids = []
        for i, capacity in enumerate(slots):
            slot = await Slot.create(
                hall_id=HALL,
                category=CATEGORY,
                date=today + timedelta(days=30 + i // 10),
                start=hall_time(hhmm(8 + i % 10)),
                end=hall_time(hhmm(8 + i % 10, 50)),
                window=NO_WINDOW,
                capacity=capacity,
                reserved=0,
            )
            slot_ids.append(int(slot.id))
        return tokens, slot_ids
    finally:
        await redis.aclose()
        await Tortoise.close_connections()


def heartbeat(base: str, secret: str, people_count: int) -> float:
    """POST a signed heartbeat of cam-1; returns the wall-clock time taken just before it."""
    from hall.device_auth import sign_request

    body = json.dumps({"camera_id": CAMERA, "people_count": people_count}).encode()
    headers = sign_request(CAMERA, secret, "POST", HEARTBEAT_PATH, body)
    headers["Content-Type"] = "application/json"
    t0 = time.time()
    r = httpx.post(base + HEARTBEAT_PATH, content=body, headers=headers, timeout=10)
    if r.status_code >= 300:
        raise SystemExit(f"heartbeat: {r.status_code} {r.text}")
    return t0


# ---------------------------------------------------------------- WebSocket subscribers


def ws_client(url: str, count: int) -> None:
    """``--ws-client``: hold ``count`` subscribers; print ``ready`` once all are connected, and,
    when stdin closes, one JSON line: per subscriber {people_count: first receipt time}, and how
    many failed to connect or were closed early."""
    from websockets.asyncio.client import connect

    received: list[dict[int, float]] = [{} for _ in range(count)]
    closed = collections.Counter[str]()

    async def subscriber(i: int, connected: asyncio.Semaphore, ready: list[int]) -> None:
        try:
            async with connected:
                ws = await connect(url, open_timeout=60, max_queue=64)
            ready[0] += 1
        except Exception as exc:
            closed[f"connect: {type(exc).__name__}"] += 1
            ready[0] += 1
            return
        mine = received[i]
        try:
            async for message in ws:
                now = time.time()
                status = json.loads(message)
                for camera in status.get("cameras", []):
                    if camera.get("camera_id") == CAMERA:
                        mine.setdefault(int(camera.get("people_count") or 0), now)
        except Exception as exc:
            closed[f"closed: {type(exc).__name__}"] += 1
        finally:
            await ws.close()

    async def run() -> None:
        connected, ready = asyncio.Semaphore(50), [0]
        tasks = [asyncio.create_task(subscriber(i, connected, ready)) for i in range(count)]
        while ready[0] < count:  # noqa: ASYNC110 - a count, not one event
            await asyncio.sleep(0.1)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        print(json.dumps({"received": received, "closed": closed}), flush=True)

    asyncio.run(run())


def rss_mb(pgid: int) -> float:
    total = 0
    for p in processes():
        if p.pgid != pgid:
            continue
        try:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def group_cpu(pgid: int) -> float:
    return sum(p.ticks for p in processes() if p.pgid == pgid) / TICKS


def fan_out(opts: argparse.Namespace, suban: str, secret: str, pgid: int) -> dict[str, Any]:
    """Subscribers over ``--client-procs`` processes, then ``--heartbeats`` heartbeats every
    ``--interval`` s; latencies from each POST to each subscriber's receipt."""
    per = opts.subscribers // opts.client_procs
    url = "ws://" + suban.removeprefix("http://") + LIVE_PATH
    rss_before = rss_mb(pgid)
    t_connect = time.monotonic()
    clients = [
        subprocess.Popen(
            [sys.executable, __file__, "--ws-client", url, str(per)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(opts.client_procs)
    ]
    try:
        for c in clients:
            assert c.stdout is not None
            if c.stdout.readline().strip() != "ready":
                raise SystemExit("a WebSocket client process failed")
        connect_s = time.monotonic() - t_connect
        time.sleep(2)
        rss_connected = rss_mb(pgid)
        cpu0, t0 = group_cpu(pgid), time.monotonic()
        base = 100 + int(time.time()) % 90 * 100  # people_count is at most 10,000
        posted: dict[int, float] = {}
        for i in range(opts.heartbeats):
            posted[base + i] = heartbeat(suban, secret, base + i)
            time.sleep(opts.interval)
        time.sleep(2)
        cpu = group_cpu(pgid) - cpu0
        span = time.monotonic() - t0
        rss_after = rss_mb(pgid)
        outputs = []
        for c in clients:
            out, _ = c.communicate(timeout=120)
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
                c.wait()
    latencies: list[float] = []
    missed = 0
    closed: collections.Counter[str] = collections.Counter()
    for out in outputs:
        closed.update(out["closed"])
        for got in out["received"]:
            got = {int(k): v for k, v in got.items()}
            for count, t in posted.items():
                if count in got:
                    latencies.append((got[count] - t) * 1000)
                else:
                    missed += 1
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    return {
        "subscribers": per * opts.client_procs,
        "connect_s": connect_s,
        "deliveries": len(latencies),
        "expected": per * opts.client_procs * opts.heartbeats,
        "missed": missed,
        "closed": dict(closed),
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "max": latencies[-1] if latencies else 0.0,
        "cpu_share": cpu / span,
        "rss": (rss_before, rss_connected, rss_after),
    }


# ---------------------------------------------------------------- the race


async def race(base: str, tokens: list[str], slot_id: int) -> collections.Counter[int]:
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=len(tokens))
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/mp/appointments",
                    json={"slot_id": slot_id},
                    headers={"Authorization": f"Bearer {t}"},
                )
                for t in tokens
            )
        )
    return collections.Counter(r.status_code for r in answers)


# ---------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--ws-client":
        ws_client(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--slots", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument("--heartbeats", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--race-people", type=int, default=200)
    parser.add_argument("--race-capacity", type=int, default=5)
    parser.add_argument("--profile-seconds", type=int, default=10, help="0: no py-spy profile")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="suban_bench_hall")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--quiet-wait", type=float, default=10)
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument(
        "--with-healthz",
        action="store_true",
        help="suban's /healthz as a fourth target of the alternation (bench/suite.py)",
    )
    parser.add_argument("--note", default="")
    opts = parser.parse_args()
    refuse_test_redis(opts.redis)
    if opts.race_people > opts.people:
        raise SystemExit("--race-people: at most --people")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers and clients inherit it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped (SIGTERM)"))
    run(opts)


def run(opts: argparse.Namespace) -> None:
    bindir = Path(sys.executable).parent
    tmp = Path(tempfile.mkdtemp(prefix="suban-bench-hall-"))
    sim_port, bare_port, suban_port = 8923, 8121, 8122
    secret = os.urandom(16).hex()
    env = suban_env(
        pg=opts.pg, db=opts.db, redis=opts.redis, var_dir=tmp, sim_port=sim_port, port=suban_port
    ) | {"SUBAN_DEMO_DEVICE_SECRET": secret}
    dsn = f"{opts.pg}/{opts.db}"
    fresh_stores(opts.pg, opts.db, opts.redis)
    servers: dict[str, subprocess.Popen[bytes]] = {}
    rounds: list[Round] = []
    repeated: list[str] = []
    extra: list[str] = []
    suban = f"http://127.0.0.1:{suban_port}"
    try:
        servers["simulator"] = start(
            [sys.executable, "-m", "wechat.simulator", "--port", str(sim_port)],
            env,
            f"http://127.0.0.1:{sim_port}/control/counters",
            tmp / "sim.log",
        )
        t0 = time.monotonic()
        for command in ("migrate", "demo"):
            mode = {"SUBAN_ENV": "dev"} if command == "demo" else {}
            done = subprocess.run([bindir / "suban", command], env=env | mode, capture_output=True)
            if done.returncode != 0:
                raise SystemExit(f"suban {command}: {done.stderr.decode()}")
        extra.append(
            f"  suban migrate + demo (three years of history): {time.monotonic() - t0:.1f} s"
        )
        servers["bare"] = start(
            [sys.executable, "bench/bare_app.py", "--port", str(bare_port), "--workers", "2"],
            env,
            f"http://127.0.0.1:{bare_port}/healthz",
            tmp / "bare.log",
        )
        servers["suban"] = start(
            [str(bindir / "suban"), "serve"], env, f"{suban}/healthz", tmp / "suban.log"
        )
        t0 = time.monotonic()
        tokens, slot_ids = asyncio.run(
            _seed(env, opts.people, [opts.people] * opts.slots + [opts.race_capacity])
        )
        race_slot = slot_ids.pop()
        extra.append(
            f"  {opts.people} verified people with sessions and {opts.slots + 1} slots made in "
            f"{time.monotonic() - t0:.1f} s"
        )
        heartbeat(suban, secret, 7)
        status = httpx.get(suban + STATUS_PATH, timeout=10)
        if status.status_code != 200:
            raise SystemExit(f"status: {status.status_code} {status.text}")
        tokens_file, slots_file, lua = tmp / "tokens.txt", tmp / "slots.txt", tmp / "book.lua"
        tokens_file.write_text("\n".join(tokens) + "\n")
        slots_file.write_text("\n".join(map(str, slot_ids)) + "\n")
        lua.write_text(LUA_BOOK)
        meter = CpuMeter({n: p.pid for n, p in servers.items()}, opts.db)
        offset = [0]

        def wrk_for(target: str) -> tuple[str, Path | None, list[str]]:
            if target == "bare /healthz":
                return f"http://127.0.0.1:{bare_port}/healthz", None, []
            if target == "status":
                return suban + STATUS_PATH, None, []
            if target == "healthz":
                return f"{suban}/healthz", None, []
            return (
                f"{suban}/api/v1/mp/appointments",
                lua,
                [
                    str(tokens_file),
                    str(slots_file),
                    "2",
                    str(offset[0]),
                ],
            )

        def measure_once(target: str, seconds: int) -> Round:
            url, script, args = wrk_for(target)
            waited = wait_quiet(timeout=opts.quiet_wait)
            meter.start()
            result, _ = run_wrk(url, seconds, opts.clients, script, args, sim_port)
            cpu = meter.stop()
            if target == "book":
                # Requests in flight when wrk stopped were sent too: leave them a margin.
                offset[0] += result["requests"] + 10 * opts.clients
            return Round(target, cpu=cpu, extra={"waited": waited}, **result)

        targets = TARGETS[:1] + ("healthz",) * opts.with_healthz + TARGETS[1:]
        for target in targets:
            measure_once(target, opts.warmup)
        for i in range(opts.rounds):
            for target in targets:
                r = measure_again_if_disturbed(
                    lambda target=target: measure_once(target, opts.seconds),  # type: ignore[misc]
                    meter,
                    opts.retries,
                    repeated,
                )
                rounds.append(r)
                print(
                    f"round {i + 1} {target}: {r.rps:.0f} req/s, p99 {r.p99_ms:.1f} ms, "
                    f"non-2xx {r.non2xx}",
                    file=sys.stderr,
                    flush=True,
                )
        booked = asyncio.run(
            scalar(dsn, f"SELECT count(*) FROM hall_appointment WHERE slot_id <> {race_slot}")
        )
        extra.append(
            f"  bookings in the database {booked} (warm-up and measured rounds); non-2xx in the "
            f"measured rounds {sum(r.non2xx for r in rounds if r.target == 'book')}"
        )

        # The race: N verified people at once on a slot of capacity C, fresh connections.
        wait_quiet(timeout=opts.quiet_wait)
        codes = asyncio.run(race(suban, tokens[: opts.race_people], race_slot))
        slot_booked = asyncio.run(scalar(dsn, f"SELECT booked FROM hall_slot WHERE id={race_slot}"))
        rows = asyncio.run(
            scalar(
                dsn,
                f"SELECT count(*) FROM hall_appointment WHERE slot_id={race_slot} "
                "AND status='booked'",
            )
        )
        exact = (
            codes.get(201, 0) == opts.race_capacity
            and slot_booked == opts.race_capacity
            and rows == opts.race_capacity
            and codes.get(201, 0) + codes.get(409, 0) == opts.race_people
        )
        extra.append(
            f"  race: {opts.race_people} people at once on a slot of capacity "
            f"{opts.race_capacity}: answers {dict(sorted(codes.items()))}; slot counter "
            f"{slot_booked}, booked rows {rows}: {'EXACT' if exact else 'NOT EXACT'}"
        )

        # WebSocket fan-out.
        wait_quiet(timeout=opts.quiet_wait)
        ws = fan_out(opts, suban, secret, servers["suban"].pid)
        ws_met = ws["p99"] < 1000 and ws["missed"] == 0 and not ws["closed"]
        extra += [
            f"  WebSocket fan-out: {ws['subscribers']} subscribers over {opts.client_procs} client "
            f"processes (connected in {ws['connect_s']:.1f} s), {opts.heartbeats} heartbeats "
            f"every {opts.interval:g} s; deliveries {ws['deliveries']}/{ws['expected']}, missed "
            f"{ws['missed']}, closed early {ws['closed'] or 0}",
            f"    latency POST -> receipt ms: p50 {ws['p50']:.0f}  p95 {ws['p95']:.0f}  p99 "
            f"{ws['p99']:.0f}  max {ws['max']:.0f} (target p99 < 1000, none missed: "
            f"{'met' if ws_met else 'missed'})",
            f"    suban (main + 2 workers) CPU {ws['cpu_share']:.0%} of a core during the "
            f"heartbeats; RSS MB before / connected / after {ws['rss'][0]:.0f} / "
            f"{ws['rss'][1]:.0f} / {ws['rss'][2]:.0f}",
        ]

        med = {t: statistics.median(r.rps for r in rounds if r.target == t) for t in targets}
        bare = med["bare /healthz"]
        missed = [("status", med["status"] / bare < STATUS_TARGET)]
        if "healthz" in med:
            missed.append(("healthz", med["healthz"] / bare < HEALTHZ_TARGET))
        for target, below in missed:
            if opts.profile_seconds and below:
                extra.append(f"  profile under {target} load (target missed):")
                extra += profile(servers["suban"].pid, opts, *wrk_for(target), tmp, target)
        if opts.profile_seconds:
            extra.append("  profile under booking load:")
            extra += profile(servers["suban"].pid, opts, *wrk_for("book"), tmp, "book")
    finally:
        tear_down(servers, opts.pg, opts.db, opts.redis)

    stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    lines = report(
        rounds,
        f"{stamp}  {os.cpu_count()} cores, wrk -t2 -c{opts.clients} -d{opts.seconds}s x "
        f"{opts.rounds} per target, alternating; suban 2 workers, PostgreSQL + Redis, production; "
        f"bare route 2 workers; code {code_version(['hall', 'miniapp_api', 'auth'])}"
        + (f"; {opts.note}" if opts.note else ""),
    )
    if repeated:
        lines.insert(1, "  rounds measured again (other processes): " + ", ".join(repeated))
    append_results("hall.txt", "\n".join(lines + extra))


def profile(
    main_pid: int,
    opts: argparse.Namespace,
    url: str,
    script: Path | None,
    args: list[str],
    tmp: Path,
    name: str,
) -> list[str]:
    wait_quiet(timeout=opts.quiet_wait)
    seconds = opts.profile_seconds
    prof = profile_busier_worker(
        main_pid,
        seconds,
        tmp / f"{name}.pyspy.txt",
        BUCKETS,
        lambda: run_wrk(url, seconds + 2, opts.clients, script, args, 0)[0],
    )
    return [
        f"    py-spy 100 Hz, {seconds} s, one worker (pid {prof.pid}), "
        f"{prof.load['rps']:.0f} req/s both workers; worker CPU busy {prof.busy:.0%}, "
        f"{prof.samples} samples",
        *(f"      {share:6.1%}  {bucket}" for bucket, share in prof.shares.items()),
    ]


def report(rounds: list[Round], header: str) -> list[str]:
    by: dict[str, list[Round]] = collections.defaultdict(list)
    for r in rounds:
        by[r.target].append(r)
    med = {t: statistics.median(r.rps for r in rs) for t, rs in by.items()}
    lines = [header]
    components = ("suban", "bare", "postgres", "redis", "wrk", "other")
    for target, rs in by.items():
        lines += rate_lines(target, rs, 14, digits=1)
        lines.append(cpu_line(rs, components, " " * 17))
    lines += disturbed_lines(rounds)
    bare = med["bare /healthz"]
    if "healthz" in med:
        ratio = med["healthz"] / bare
        lines.append(
            f"  healthz / bare: throughput {ratio:.2f} (target >= {HEALTHZ_TARGET}: "
            f"{'met' if ratio >= HEALTHZ_TARGET else 'missed'})"
        )
    ratio = med["status"] / bare
    lines.append(
        f"  status / bare: throughput {ratio:.2f} (target >= {STATUS_TARGET}: "
        f"{'met' if ratio >= STATUS_TARGET else 'missed'})"
    )
    p99 = statistics.median(r.p99_ms for r in by["book"])
    lines.append(
        f"  book / bare: throughput {med['book'] / bare:.3f}; {med['book']:.0f} bookings/s, "
        f"p99 median {p99:.1f} ms; non-2xx {sum(r.non2xx for r in by['book'])}"
    )
    return lines


if __name__ == "__main__":
    main()
