"""Filing under load: ``POST /api/v1/mp/submissions`` (submission create) and the public
``GET /api/v1/progress`` (progress lookup) of ``suban serve`` with 2 workers on PostgreSQL and
Redis, beside the bare Sanic JSON route (bench/bare_app.py, 2 workers), all in the same run.

    flock /tmp/suban-bench.lock .venv/bin/python bench/filing.py    # 10-20 minutes

Targets (issue 4): submission create p99 < 50 ms at 64 concurrent clients; progress lookup
>= 0.3x the requests/s of the bare route. Defaults: ``--seconds 10 --rounds 5 --warmup 5
--clients 64 --pool 15000 --profile-seconds 10 --quiet-wait 10 --retries 1`` (0 skips the
profile).

Needs wrk (apt-get install wrk), PostgreSQL on 127.0.0.1:5432 (trust auth as postgres; ``--pg``),
Redis on 127.0.0.1:6379 (``--redis``, db 13 by default: never 14, the test suite's) and, for the
profile, py-spy in the venv. It creates its own database ``suban_bench_filing``, flushes only its
own Redis db, and drops/flushes both again at the end. ``flock`` keeps two benchmarks from
running at once; tests may run beside it, which is why only ratios to the bare route measured in
the same run count (and a round disturbed by other processes is measured again).

Set-up, all through the API of the server under test: ``suban migrate && suban demo``, then
``--chen`` mini-program accounts verified as 陈明 (legal representative of the demo shop
92440103MA5C3RTN8C; the real-name limit allows 5 attempts per ID number per 10 minutes) and
``--people`` accounts verified as natural persons with fresh valid ID numbers. The simulator runs
as its own process (face verification answers ``sim:<name>:<id>``).

Per round, in alternation, each after the machine is nearly idle or ``--quiet-wait`` seconds
have passed (a round in which other processes took over 15% of the busy CPU is measured again,
``--retries`` times at most; the report names them):

- ``bare /healthz``: wrk -t2 -c64 GET through the same Lua path rotation as the lookups;
- ``progress``: wrk -t2 -c64 GET ``/api/v1/progress?tracking_no=..&check=..`` rotating over the
  newest ``--pool`` (or more, see below) submissions with their right check (last four of the
  applicant's ID number). Before the round, outside the measurement: every number not in the
  progress cache is looked up once (a small keep-alive client: wrk cannot stop after a list),
  and the rate-limit counters of the lookups are deleted from the bench's Redis db, so neither a
  cold cache nor the per-number limit (10 per 10 minutes) is what is measured; the per-address
  limit is raised with the deployment setting ``SUBAN_PROGRESS_IP_LIMIT`` (wrk runs from one
  address). The pool follows the last round's rate so that no number is asked more than 5 times
  a round (as far as there are submissions: the warm-up files creates until there are
  ``--pool``); each round reports its Redis keyspace misses (a lookup that misses the cache is
  one) and any non-2xx answer (a 429 would be one);
- ``create``: wrk -t2 -c64 POST of a proxy-invoice filing, tokens round-robin (half 陈明 for the
  shop, half natural persons with no taxpayer), a new ``Idempotency-Key`` each request; each
  round reports the submissions created against the requests completed.

Per target: requests/s, p50/p99 latency (wrk --latency), non-2xx and socket errors, CPU per
request of every process involved (from /proc). Then: creates at 2 to 64 clients (one short pass
each: where p99 stays under 50 ms); whether every filing has its audit event; latency with one
client; the SQL and Redis round trips of one create and one lookup, counted and in order (a
third, one-worker server reached through counting proxies, bench/wire.py); py-spy profiles of
one worker under each load, bucketed by package. ``suban worker`` is not run: the creates'
outbox nudges wait in Redis (delivering them is not part of the request). Printed and appended
to bench/results/filing.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from harness import (  # noqa: E402
    CpuMeter,
    Round,
    append_results,
    code_version,
    cpu_line,
    disturbed_lines,
    fresh_stores,
    measure_again_if_disturbed,
    profile_busier_worker,
    rate_lines,
    refuse_test_redis,
    run_wrk,
    start,
    stop,
    suban_env,
    tear_down,
    wait_quiet,
)
from wire import Counts, counting_proxies  # noqa: E402

SHOP = "92440103MA5C3RTN8C"
CHEN = ("陈明", "44010319850612301X")
NAMES = ["赵一", "钱二", "孙三", "李四", "周五", "吴六", "郑七", "王八"]
DATA = {
    "invoice_kind": "general",
    "location": "city",
    "buyer": {"name": "广州示例采购有限公司", "taxpayer_id": "91350100M000100Y43"},
    "lines": [{"name": "维修服务", "amount_incl_tax": "5050.00"}],
}
BODIES = {
    "shop": {"form_code": "proxy_invoice", "taxpayer_id": SHOP, "data": DATA},
    "person": {"form_code": "proxy_invoice", "data": DATA},
}
TARGETS = ("bare /healthz", "progress", "create")
# Every thread walks its own residue class of the list: thread i sends items i, i+T, i+2T, ...
LUA_COMMON = """
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
"""

# GET the paths of a file round-robin; args: file threads
LUA_GET = (
    LUA_COMMON
    + """
function init(args)
  paths = lines(args[1])
  nthreads = tonumber(args[2])
  k = 0
end
function request()
  local n = id + k * nthreads
  k = k + 1
  return wrk.format(nil, paths[n % #paths + 1])
end
"""
)

# POST a filing; tokens round-robin from a file of "token kind" lines, a new Idempotency-Key per
# request; args: tokens-file threads nonce
LUA_CREATE = (
    LUA_COMMON
    + f"""
local bodies = {{shop = [[{json.dumps(BODIES["shop"], ensure_ascii=False)}]],
                 person = [[{json.dumps(BODIES["person"], ensure_ascii=False)}]]}}
function init(args)
  tokens, kinds = {{}}, {{}}
  for _, line in ipairs(lines(args[1])) do
    local token, kind = line:match("^(%S+)%s+(%S+)$")
    tokens[#tokens + 1] = token
    kinds[#kinds + 1] = kind
  end
  nthreads = tonumber(args[2])
  nonce = args[3]
  k = 0
end
function request()
  local n = id + k * nthreads
  k = k + 1
  local i = n % #tokens + 1
  return wrk.format("POST", nil, {{
    ["Authorization"] = "Bearer " .. tokens[i],
    ["Idempotency-Key"] = string.format("bench-%s-%d", nonce, n),
    ["Content-Type"] = "application/json",
  }}, bodies[kinds[i]])
end
"""
)


# ---------------------------------------------------------------- set-up through the API


def resident_id(n: int) -> str:
    """A valid 18-character resident ID number (tests/miniapp_api/test_mp_grants.py's way)."""
    body = f"11010119900307{n % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


@dataclass(frozen=True)
class Filer:
    token: str
    kind: str  # "shop": 陈明 for the demo shop; "person": a natural person, no taxpayer
    id_number: str
    openid: str


def verified_accounts(base: str, chen: int, people: int) -> list[Filer]:
    """Log in and verify, alternating 陈明 and natural persons so creates mix both evenly."""
    who = [("shop", CHEN)] * chen + [
        ("person", (NAMES[i % len(NAMES)], resident_id(i))) for i in range(people)
    ]
    filers: list[Filer] = []
    with httpx.Client(base_url=base, timeout=10) as http:
        for i, (kind, (name, id_number)) in enumerate(who):
            openid = f"bench-filer-{i:03d}"
            r = http.post("/api/v1/mp/login", json={"code": f"sim:{openid}"})
            r.raise_for_status()
            token = r.json()["token"]
            claim = {
                "name": name,
                "id_type": "resident_id",
                "id_number": id_number,
                "verify_result": f"sim:{name}:{id_number}",
            }
            r = http.post("/api/v1/mp/realname", json=claim, headers=_bearer(token))
            if r.status_code != 200:
                raise SystemExit(f"real-name verification of {name} failed: {r.text}")
            filers.append(Filer(token, kind, id_number, openid))
    shops = [f for f in filers if f.kind == "shop"]
    persons = [f for f in filers if f.kind == "person"]
    mixed = [f for pair in zip(shops, persons, strict=False) for f in pair]
    return mixed + shops[len(mixed) // 2 :] + persons[len(mixed) // 2 :]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- the lookup pool


async def _fetch(dsn: str, query: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def lookup_paths(dsn: str, size: int) -> list[tuple[str, str]]:
    """(tracking number, path) of the newest ``size`` submissions, with the right check."""
    rows = asyncio.run(
        _fetch(
            dsn,
            "SELECT s.tracking_no, a.openid FROM submission s JOIN LATERAL ("
            " SELECT openid FROM wechat_account w"
            " WHERE w.person_id = s.applicant_id AND w.openid LIKE 'bench-filer-%'"
            " ORDER BY w.id LIMIT 1) a ON true ORDER BY s.id DESC LIMIT $1",
            size,
        )
    )
    return [(r["tracking_no"], r["openid"]) for r in rows]


async def get_each(base: str, paths: list[str], connections: int = 16) -> collections.Counter[int]:
    """GET every path once over keep-alive connections (wrk cannot stop after a list: it always
    runs its full duration); returns the count of each status."""
    from urllib.parse import urlsplit

    where = urlsplit(base)
    todo, statuses = iter(paths), collections.Counter[int]()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(where.hostname, where.port)
        try:
            for path in todo:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {where.netloc}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                statuses[int(head.split(b" ", 2)[1])] += 1
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return statuses


class Lookups:
    """The pool of tracking numbers the progress rounds ask for, and their Redis preparation."""

    def __init__(self, dsn: str, redis_url: str, filers: list[Filer], tmp: Path) -> None:
        import redis

        from auth.ratelimit import PREFIX as RATE_PREFIX
        from forms.progress import cache_key

        self.dsn, self.tmp = dsn, tmp
        self.redis = redis.Redis.from_url(redis_url)
        self.cache_key = cache_key
        self.rate_pattern = f"{RATE_PREFIX}:progress_*"
        # The check of a filing: the last four characters of its applicant's ID number.
        self.check_of = {f.openid: f.id_number[-4:] for f in filers}
        self.filers = filers

    def prepare(self, size: int, url: str) -> dict[str, Any]:
        """Write the paths file of the newest ``size`` submissions, look up once every number
        not cached, then delete the lookups' rate-limit counters. Returns what it did."""
        numbers = lookup_paths(self.dsn, size)
        paths = [
            f"/api/v1/progress?tracking_no={no}&check={self.check_of[openid]}"
            for no, openid in numbers
        ]
        cold = [p for (no, _), p in zip(numbers, paths, strict=True) if not self._cached(no)]
        statuses = asyncio.run(get_each(url, cold)) if cold else collections.Counter()
        if set(statuses) - {200}:
            raise SystemExit(f"warming the progress cache: answers {dict(statuses)}")
        still_cold = sum(1 for no, _ in numbers if not self._cached(no))
        self.clear_limits()
        out = self.tmp / "progress.txt"
        out.write_text("\n".join(paths) + "\n")
        return {"file": out, "numbers": len(paths), "warmed": len(cold), "still_cold": still_cold}

    def _cached(self, tracking_no: str) -> bool:
        return bool(self.redis.exists(self.cache_key(tracking_no)))

    def clear_limits(self) -> None:
        batch = list(self.redis.scan_iter(match=self.rate_pattern, count=1000))
        for i in range(0, len(batch), 1000):
            self.redis.delete(*batch[i : i + 1000])

    def keyspace_misses(self) -> int:
        return int(self.redis.info("stats")["keyspace_misses"])


# ---------------------------------------------------------------- rounds


# ---------------------------------------------------------------- one client at a time


def sequential(url: str, n: int, request: Any) -> tuple[float, float, int]:
    """Median and min ms of ``n`` requests one after another (3 more first, not counted), and how
    many got no answer within 10 s."""
    times, stuck = [], 0
    with httpx.Client(timeout=10) as client:
        for i in range(n + 3):
            t0 = time.perf_counter()
            try:
                r = request(client, url, i)
            except httpx.TimeoutException:
                stuck += 1
                continue
            if r.status_code >= 300:
                raise SystemExit(f"{url}: {r.status_code} {r.text}")
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1000)
    if not times:
        return float("nan"), float("nan"), stuck
    return statistics.median(times), min(times), stuck


def database_sessions(dsn: str, db: str) -> list[str]:
    """The bench database's sessions as PostgreSQL sees them (for a request that hangs)."""
    rows = asyncio.run(
        _fetch(
            dsn,
            "SELECT state, wait_event_type, wait_event, count(*) AS n,"
            " max(extract(epoch FROM now() - xact_start))::int AS oldest_xact_s,"
            " max(extract(epoch FROM now() - state_change))::int AS oldest_state_s,"
            " min(left(regexp_replace(query, '\\s+', ' ', 'g'), 90)) AS query"
            " FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
            " GROUP BY 1, 2, 3 ORDER BY 4 DESC",
            db,
        )
    )
    return [
        f"    {r['n']} x {r['state']} (wait {r['wait_event_type']}/{r['wait_event']}), oldest "
        f"transaction {r['oldest_xact_s']} s, in this state {r['oldest_state_s']} s: {r['query']}"
        for r in rows
    ]


# ---------------------------------------------------------------- round trips per request


def probe_round_trips(
    env: dict[str, str], opts: argparse.Namespace, lookups: Lookups, tmp: Path, n: int
) -> list[str]:
    """A one-worker suban reaching PostgreSQL and Redis through counting proxies: what one create
    and one cached lookup send over the wire (round trips, statements, commands)."""
    from urllib.parse import urlsplit

    pg, rd = urlsplit(opts.pg), urlsplit(opts.redis)
    pg_port, redis_port, port = 8116, 8117, 8115
    loop = asyncio.new_event_loop()
    counts = Counts()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        holder["servers"] = loop.run_until_complete(
            counting_proxies(
                counts,
                (pg_port, pg.hostname, pg.port or 5432),
                (redis_port, rd.hostname, rd.port or 6379),
            )
        )
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    probe_env = env | {
        "SUBAN_WORKERS": "1",
        "SUBAN_PORT": str(port),
        "SUBAN_DATABASE_URL": f"postgresql://{pg.username}@127.0.0.1:{pg_port}/{opts.db}",
        "SUBAN_REDIS_URL": f"redis://127.0.0.1:{redis_port}{rd.path}",
    }
    base = f"http://127.0.0.1:{port}"
    server = start(
        [str(Path(sys.executable).parent / "suban"), "serve"],
        probe_env,
        f"{base}/healthz",
        tmp / "probe.log",
    )
    lines = []
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            shop = next(f for f in lookups.filers if f.kind == "shop")
            person = next(f for f in lookups.filers if f.kind == "person")

            def create(filer: Filer, i: int) -> Any:
                headers = _bearer(filer.token) | {"Idempotency-Key": f"probe-{filer.kind}-{i:05d}"}
                r = http.post("/api/v1/mp/submissions", json=BODIES[filer.kind], headers=headers)
                assert r.status_code == 201, r.text
                return r.json()["tracking_no"]

            # Warm: pools, prepared statements. Ten numbers, so 50 lookups stay within the
            # per-number limit (10 per 10 minutes) once the counters are cleared.
            filed = [create(shop, i) for i in range(10)]
            create(person, 0)
            cases = {
                "create (陈明, for the shop)": lambda i: create(shop, 100 + i),
                "create (natural person)": lambda i: create(person, 100 + i),
                "progress lookup (cached)": lambda i: http.get(
                    "/api/v1/progress",
                    params={"tracking_no": filed[i % len(filed)], "check": shop.id_number[-4:]},
                ).raise_for_status(),
            }
            for case, call in cases.items():
                lookups.clear_limits()
                counts.reset()
                for i in range(n):
                    call(i)
                time.sleep(0.3)  # the create's outbox nudge is written after the answer
                lines.append(f"  per {case}: " + counts.summary(n))
                counts.reset()
                call(n)
                time.sleep(0.3)
                lines.append("    in order: " + ", ".join(counts.sequence))
    finally:
        stop(server)
        for s in holder.get("servers", []):
            loop.call_soon_threadsafe(s.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    return lines


# ---------------------------------------------------------------- py-spy profile

BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("PostgreSQL: Tortoise/pypika/asyncpg", ("tortoise/", "pypika", "asyncpg/")),
    ("Redis: redis-py, arq (job enqueue)", ("redis/", "arq/")),
    ("crypto: cryptography (sealing, blind indexes)", ("cryptography/", "hmac.py", "hashlib")),
    ("filing code: forms/", ("forms/",)),
    ("auth/ (sessions, permissions, audit, pii)", ("auth/",)),
    ("app: miniapp_api/, pydantic, prometheus", ("miniapp_api/", "pydantic", "prometheus")),
    ("Sanic: HTTP server, routing, responses", ("sanic/", "sanic_routing/", "sanic_ext/")),
    ("json", ("json/", "ujson", "orjson")),
]
OWN_CODE = ("forms/", "auth/", "miniapp_api/", "wecom/")


def own_frames(raw: Path, limit: int = 14) -> list[tuple[str, float]]:
    """The heaviest frames of our own code, inclusive, as shares of all samples."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for frame in set(stack.split(";")):
            if any(m in frame for m in OWN_CODE):
                own[frame] += int(count)
    return [(f, v / max(total, 1)) for f, v in own.most_common(limit)]


def profile_under_load(
    suban_pid: int,
    url: str,
    lua: Path,
    args: list[str],
    opts: argparse.Namespace,
    raw: Path,
    sim_port: int,
) -> list[str]:
    wait_quiet(timeout=opts.quiet_wait)
    seconds = opts.profile_seconds
    prof = profile_busier_worker(
        suban_pid,
        seconds,
        raw,
        BUCKETS,
        lambda: run_wrk(url, seconds + 2, opts.clients, lua, args, sim_port)[0],
    )
    return [
        f"    py-spy 100 Hz, {seconds} s, one worker (pid {prof.pid}), "
        f"{prof.load['rps']:.0f} req/s both workers; worker CPU busy {prof.busy:.0%}, "
        f"{prof.samples} samples; threads: "
        + ", ".join(f"{name} {n}" for name, n in prof.threads.items()),
        *(f"      {share:6.1%}  {name}" for name, share in prof.shares.items()),
        "      heaviest frames of our code (inclusive):",
        *(f"        {share:6.1%}  {frame}" for frame, share in own_frames(raw)),
    ]


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--chen", type=int, default=4, help="accounts verified as 陈明 (<= 5)")
    parser.add_argument("--people", type=int, default=4, help="natural persons")
    parser.add_argument("--pool", type=int, default=15000, help="tracking numbers, at least")
    parser.add_argument("--profile-seconds", type=int, default=10, help="0: no py-spy profile")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="suban_bench_filing")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--quiet-wait", type=float, default=10, help="seconds to wait for an idle machine"
    )
    parser.add_argument("--retries", type=int, default=1, help="re-measures of a disturbed round")
    parser.add_argument("--note", default="", help="a word about this run, kept in the results")
    opts = parser.parse_args()
    refuse_test_redis(opts.redis)
    if not 1 <= opts.chen <= 5:
        raise SystemExit("--chen: 1 to 5 (5 real-name attempts per ID number per 10 minutes)")
    # Stopped from outside (a background job ignores SIGINT): still stop the servers and drop
    # the database on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped (SIGTERM)"))
    run(opts)


def run(opts: argparse.Namespace) -> None:
    bindir = Path(sys.executable).parent
    tmp = Path(tempfile.mkdtemp(prefix="suban-bench-filing-"))
    sim_port, bare_port, suban_port = 8913, 8111, 8112
    env = suban_env(
        pg=opts.pg, db=opts.db, redis=opts.redis, var_dir=tmp, sim_port=sim_port, port=suban_port
    ) | {
        # wrk asks from one address; a deployment setting (default 300 per 10 minutes).
        "SUBAN_PROGRESS_IP_LIMIT": "10000000"
    }
    dsn = f"{opts.pg}/{opts.db}"
    fresh_stores(opts.pg, opts.db, opts.redis)
    servers: dict[str, subprocess.Popen[bytes]] = {}
    rounds: list[Round] = []
    repeated: list[str] = []
    extra_lines: list[str] = []
    suban = f"http://127.0.0.1:{suban_port}"
    try:
        servers["simulator"] = start(
            [sys.executable, "-m", "wechat.simulator", "--port", str(sim_port)],
            env,
            f"http://127.0.0.1:{sim_port}/control/counters",
            tmp / "sim.log",
        )
        for command in ("migrate", "demo"):
            # The demo registry is refused in production mode; the server below runs in it.
            mode = {"SUBAN_ENV": "dev"} if command == "demo" else {}
            done = subprocess.run([bindir / "suban", command], env=env | mode, capture_output=True)
            if done.returncode != 0:
                raise SystemExit(f"suban {command}: {done.stderr.decode()}")
        servers["bare"] = start(
            [sys.executable, "bench/bare_app.py", "--port", str(bare_port), "--workers", "2"],
            env,
            f"http://127.0.0.1:{bare_port}/healthz",
            tmp / "bare.log",
        )
        servers["suban"] = start(
            [str(bindir / "suban"), "serve"], env, f"{suban}/healthz", tmp / "suban.log"
        )
        filers = verified_accounts(suban, opts.chen, opts.people)
        tokens = tmp / "tokens.txt"
        tokens.write_text("".join(f"{f.token} {f.kind}\n" for f in filers))
        lookups = Lookups(dsn, opts.redis, filers, tmp)
        bare_paths = tmp / "bare.txt"
        bare_paths.write_text("/healthz\n")
        get_lua, create_lua = tmp / "get.lua", tmp / "create.lua"
        get_lua.write_text(LUA_GET)
        create_lua.write_text(LUA_CREATE)
        meter = CpuMeter({n: p.pid for n, p in servers.items()}, opts.db)
        nonce = iter(range(10**6))
        progress_file: dict[str, Any] = {}
        progress_rps = [0.0]

        def wrk_for(target: str) -> tuple[str, Path, list[str]]:
            if target == "bare /healthz":
                return f"http://127.0.0.1:{bare_port}/", get_lua, [str(bare_paths), "2"]
            base = suban
            if target.startswith("progress"):
                return f"{base}/", get_lua, [str(progress_file["file"]), "2"]
            stamp = f"{os.getpid()}x{next(nonce)}"
            return f"{base}/api/v1/mp/submissions", create_lua, [str(tokens), "2", stamp]

        def submissions() -> int:
            return int(asyncio.run(_fetch(dsn, "SELECT count(*) FROM submission"))[0][0])

        def measure_once(target: str, seconds: int) -> Round:
            extra: dict[str, Any] = {}
            if target.startswith("progress"):
                # No number more than 5 times a round if there are enough: the pool follows
                # the last round's rate (the per-number limit answers the 11th lookup with 429).
                size = max(opts.pool, int(progress_rps[-1] * seconds / 5))
                progress_file.update(lookups.prepare(size, f"{suban}/"))
                extra = {k: v for k, v in progress_file.items() if k != "file"}
            url, lua, args = wrk_for(target)
            waited = wait_quiet(timeout=opts.quiet_wait)
            before = submissions() if target.startswith("create") else 0
            misses = lookups.keyspace_misses()
            meter.start()
            result, _ = run_wrk(url, seconds, opts.clients, lua, args, sim_port)
            cpu = meter.stop()
            extra["misses"] = lookups.keyspace_misses() - misses
            if target.startswith("progress"):
                progress_rps.append(result["rps"])
            extra["waited"] = waited
            if target.startswith("create"):
                extra["created"] = submissions() - before
            return Round(target, cpu=cpu, extra=extra, **result)

        def measure(target: str, seconds: int) -> Round:
            return measure_again_if_disturbed(
                lambda: measure_once(target, seconds), meter, opts.retries, repeated
            )

        # Warm-up: creates first (they fill the lookup pool), then each target once.
        while submissions() < opts.pool:  # (these rounds are not counted)
            if measure_once("create", max(opts.warmup, 10)).extra["created"] == 0:
                raise SystemExit("warm-up: no submission created (sessions gone from Redis?)")
        for target in TARGETS:
            measure_once(target, opts.warmup)

        def rounds_of(targets: tuple[str, ...], count: int) -> None:
            for i in range(count):
                for target in targets:
                    rounds.append(measure(target, opts.seconds))
                    r = rounds[-1]
                    print(
                        f"round {i + 1} {target}: {r.rps:.0f} req/s, p99 {r.p99_ms:.1f} ms, "
                        f"non-2xx {r.non2xx}",
                        file=sys.stderr,
                        flush=True,
                    )

        rounds_of(TARGETS, opts.rounds)

        # Submission create at fewer clients: where p99 stays under 50 ms.
        sweep = []
        for clients in (2, 4, 8, 16, 32, 64):
            wait_quiet(timeout=opts.quiet_wait)
            url, lua, args = wrk_for("create")
            result, _ = run_wrk(url, opts.warmup, clients, lua, args, sim_port)
            sweep.append(
                f"c{clients} {result['rps']:.0f}/s p50 {result['p50_ms']:.1f} "
                f"p99 {result['p99_ms']:.1f}"
            )
        extra_lines.append(
            f"  create by concurrent clients (wrk -t2, {opts.warmup} s each, one pass; req/s, "
            "ms): " + "; ".join(sweep)
        )
        # wrk closes its connections mid-request when a round ends; Sanic then cancels those
        # handlers. A create cancelled after its commit has no audit event (written after it).
        filed, audited = asyncio.run(
            _fetch(
                dsn,
                "SELECT (SELECT count(*) FROM submission), (SELECT count(*) FROM audit_event"
                " WHERE action = 'submission.file')",
            )
        )[0]
        extra_lines.append(
            f"  submissions {filed}, audit events submission.file {audited}: {filed - audited} "
            "filings without their audit event (requests cancelled by wrk's disconnect at the "
            "end of a round, between the commit and the audit insert)"
        )

        # One client at a time, on the servers measured above.
        shop = next(f for f in filers if f.kind == "shop")
        progress_paths = progress_file["file"].read_text().split()[:60]
        lookups.clear_limits()
        one_by_one = {
            "bare /healthz": sequential(
                f"http://127.0.0.1:{bare_port}/healthz", 50, lambda c, u, i: c.get(u)
            ),
            "progress": sequential(suban, 50, lambda c, u, i: c.get(u + progress_paths[i])),
            "create": sequential(
                f"{suban}/api/v1/mp/submissions",
                50,
                lambda c, u, i: c.post(
                    u,
                    json=BODIES["shop"],
                    headers=_bearer(shop.token) | {"Idempotency-Key": f"seq-{i:06d}"},
                ),
            ),
        }
        extra_lines.append(
            "  one client at a time, median (min) ms: "
            + "; ".join(
                f"{name} {m:.1f} ({lo:.1f})"
                + (f", {stuck} of 53 NO ANSWER in 10 s" if stuck else "")
                for name, (m, lo, stuck) in one_by_one.items()
            )
        )
        if any(stuck for _, _, stuck in one_by_one.values()):
            extra_lines.append("  requests hung; the bench database's sessions right after:")
            extra_lines += database_sessions(dsn, opts.db)
        extra_lines.append(
            "  SQL and Redis over the wire (one-worker server behind counting "
            "proxies, bench/wire.py), mean of 50 requests one at a time:"
        )
        extra_lines += probe_round_trips(env, opts, lookups, tmp, 50)

        if opts.profile_seconds:
            for target in ("create", "progress"):
                if target == "progress":
                    size = int(progress_rps[-1] * (opts.profile_seconds + 2) / 5)
                    progress_file.update(lookups.prepare(max(opts.pool, size), f"{suban}/"))
                url, lua, args = wrk_for(target)
                extra_lines.append(f"  profile under {target} load:")
                extra_lines += profile_under_load(
                    servers["suban"].pid,
                    url,
                    lua,
                    args,
                    opts,
                    tmp / f"{target}.pyspy.txt",
                    sim_port,
                )

    finally:
        tear_down(servers, opts.pg, opts.db, opts.redis)

    stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    lines = report(
        rounds,
        f"{stamp}  {os.cpu_count()} cores, wrk -t2 -c{opts.clients} -d{opts.seconds}s x "
        f"{opts.rounds} per target, alternating; suban 2 workers, PostgreSQL + Redis, production; "
        f"bare route 2 workers; code {code_version(['auth', 'forms', 'miniapp_api', 'wecom'])}"
        + (f"; {opts.note}" if opts.note else ""),
    )
    if repeated:
        lines.insert(1, "  rounds measured again (other processes): " + ", ".join(repeated))
    append_results("filing.txt", "\n".join(lines + extra_lines))


def server_of(target: str) -> str:
    """The CPU component that serves ``target``."""
    return "bare" if target.startswith("bare") else "suban"


def report(rounds: list[Round], header: str) -> list[str]:
    by: dict[str, list[Round]] = collections.defaultdict(list)
    for r in rounds:
        by[r.target].append(r)
    med = {t: statistics.median(r.rps for r in rs) for t, rs in by.items()}
    p99 = {t: statistics.median(r.p99_ms for r in rs) for t, rs in by.items()}
    lines = [header]
    components = ("suban", "bare", "simulator", "postgres", "redis", "wrk", "other")
    cpu_server = {
        t: statistics.median(r.cpu.get(server_of(t), 0.0) / max(r.requests, 1) for r in rs)
        for t, rs in by.items()
    }
    for target, rs in by.items():
        lines += rate_lines(target, rs, 16, digits=1)
        if target == "create":
            lines.append(
                "                   submissions created / requests completed "
                + " ".join(f"{r.extra['created']}/{r.requests}" for r in rs)
            )
        if target == "progress":
            lines.append(
                "                   tracking numbers asked / warmed before the round / still "
                "uncached / Redis keyspace misses in the round "
                + " ".join(
                    f"{r.extra['numbers']}/{r.extra['warmed']}/{r.extra['still_cold']}/"
                    f"{r.extra['misses']}"
                    for r in rs
                )
            )
        lines.append(cpu_line(rs, components, " " * 19))
    lines += disturbed_lines(rounds)
    bare, ratio = "bare /healthz", med["progress"] / med["bare /healthz"]
    lines.append(
        f"  progress / bare: throughput {ratio:.2f} (target >= 0.30: "
        f"{'met' if ratio >= 0.3 else 'missed'}), server CPU per request bare/progress "
        f"{cpu_server[bare] / max(cpu_server['progress'], 1e-12):.2f}"
    )
    lines.append(
        f"  create: p99 median {p99['create']:.1f} ms, worst round "
        f"{max(r.p99_ms for r in by['create']):.1f} ms (target < 50: "
        f"{'met' if p99['create'] < 50 else 'missed'}); {med['create']:.0f} creates/s"
    )
    return lines


if __name__ == "__main__":
    main()
