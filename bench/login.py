"""Mini-program login (``POST /api/v1/mp/login``) of ``suban serve --workers 2`` on PostgreSQL and
Redis, the WeChat simulator as its own process adding 50 ms to jscode2session, against two bare
Sanic yardsticks served the same way and measured in the same run:

- ``bare /healthz``: bench/bare_app.py's JSON route (what bench/healthz.py compares against);
- ``bare /login``: the same app plus a route doing only the WeChat half of a login with the
  project's own ``MiniProgramClient`` (bench/bare_login_app.py): no database, Redis or middleware.

    .venv/bin/python bench/login.py            # 5 rounds x 10 s, 200 clients, 20,000 openids

Defaults: ``--seconds 10 --rounds 5 --warmup 5 --clients 200 --openids 20000 --latency-ms 50
--profile-seconds 10 --quiet-wait 300`` (``--profile-seconds 0`` skips py-spy, ``--warmup 0`` the
warm-up rounds). Needs wrk (apt-get install wrk), PostgreSQL on 127.0.0.1:5432 (trust auth as
postgres; ``--pg``) and Redis on 127.0.0.1:6379 (``--redis``, db 13 by default: never 14, the
test suite's). py-spy (``pip install py-spy`` into the venv) for the
profile. The script creates the database ``suban_bench_login`` (``--db``), flushes only its own
Redis db, and drops/flushes both again at the end.

Per round, in alternation: wrk -t2 -c200 against each of four targets: bare /healthz, bare /login,
and suban's login twice. ``suban first`` posts ``{"code": "sim:first-NNNNNNNN"}`` with openids never
seen before (every login creates its account); ``suban repeat`` cycles round-robin through
``--openids`` openids ``repeat-NNNNNNNN`` whose accounts the script inserts beforehand (one SQL
statement, as a first login would leave them), so every login finds its account. Each round
reports how many accounts it created. Per target: median requests/s, p50/p99 latency, non-2xx and
socket errors, CPU per request of every process involved (from /proc: the server's process group,
the simulator, the PostgreSQL backends of the bench database, redis-server, wrk, and "other": the
rest of the machine), the WeChat calls in flight (Little's law: logins/s x the added latency, a
lower bound) and the TCP connections open to the simulator in mid-round.

The machine is shared: each round starts once it is nearly idle or ``--quiet-wait`` seconds have
passed (then it is measured anyway, and the report's NOT QUIET line names it with how busy the
machine was), and a round in which other processes took over 15% of the busy CPU is measured
again (twice at most; the report says which and who). Then, outside the load: SQL and Redis
round trips per login (the login code run in this process against the same database and Redis
with a stub code exchange, asyncpg and redis-py calls counted), login latency with one client,
the CPU per call of the WeChat client alone (bench/wechat_client.py), and a py-spy profile of one
suban worker under repeat-login load, bucketed by library, with samples per thread (these wait
for a quiet machine as the rounds do, and the NOT QUIET line names them too). The header names
the commit measured and any uncommitted files of auth/, wechat/, miniapp_api/. Everything is
printed and appended to bench/results/login.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from harness import (
    ROOT,
    CpuMeter,
    WrkFailed,
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
    scalar,
    sql,
    start,
    suban_env,
    tear_down,
    wait_for_quiet,
)

LOGIN_PATH = "/api/v1/mp/login"

LUA = """
-- POST {"code": "sim:PREFIX-NNNNNNNN"}, openids round-robin; args: offset count threads prefix
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  offset = tonumber(args[1]) or 0
  count = tonumber(args[2]) or 20000
  nthreads = tonumber(args[3]) or 2
  prefix = args[4] or "bench"
  k = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  local n = (offset + id + k * nthreads) % count
  k = k + 1
  return wrk.format(nil, nil, nil, string.format('{"code":"sim:%s-%08d"}', prefix, n))
end
"""


@dataclass
class Round(harness.Round):
    first_logins: int = 0
    sim_connections: int = 0
    seconds: float = 0.0
    # Whether the machine was nearly idle when the round started (--quiet-wait bounds the wait),
    # and its busy share in the second before.
    quiet: bool = True
    busy_before: float = 0.0


NEVER_AGAIN = 10**8  # an openid range no run wraps around: every login a first login


async def seed_accounts(dsn: str, prefix: str, count: int) -> None:
    """Accounts as a first login through the API would leave them (the simulator's unionid), so
    logins with these openids are repeat logins."""
    await sql(
        dsn,
        "INSERT INTO wechat_account (openid, unionid, created_at, last_login_at) "
        f"SELECT o, 'sim-union-' || left(encode(sha256(('unionid:' || o)::bytea), 'hex'), 24), "
        "now(), now() "
        f"FROM (SELECT '{prefix}-' || lpad(g::text, 8, '0') AS o "
        f"FROM generate_series(0, {count - 1}) g) s",
    )


# ---------------------------------------------------------------- round trips per login


async def round_trips(database_url: str, redis_url: str, n: int) -> dict[str, Any]:
    """Run auth.login.login_with_wechat in this process (stub code exchange) n times for new
    openids, then n times for the same ones, counting asyncpg statements and Redis round trips."""
    import asyncpg
    import redis.asyncio as redis_asyncio
    from redis.asyncio.connection import AbstractConnection
    from tortoise import Tortoise

    sys.path.insert(0, str(ROOT))
    from auth.login import login_with_wechat
    from auth.sessions import SessionStore
    from miniapp_api.database import tortoise_config
    from wechat.miniprogram import LoginSession

    sql: list[str] = []
    redis_cmds: list[str] = []
    redis_trips = [0]
    original = {
        "execute": asyncpg.connection.Connection.execute,
        "_execute": asyncpg.connection.Connection._execute,
        "send": AbstractConnection.send_packed_command,
        "pack": AbstractConnection.pack_command,
        "packs": AbstractConnection.pack_commands,
    }

    async def execute(self: Any, query: str, *args: Any, timeout: Any = None) -> Any:
        if not args:  # with args asyncpg goes through _execute, counted there
            sql.append(query)
        return await original["execute"](self, query, *args, timeout=timeout)

    async def _execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        sql.append(query)
        return await original["_execute"](self, query, *args, **kwargs)

    async def send(self: Any, command: Any, check_health: bool = True) -> None:
        redis_trips[0] += 1
        await original["send"](self, command, check_health)

    def pack(self: Any, *args: Any) -> Any:
        redis_cmds.append(str(args[0]))
        return original["pack"](self, *args)

    def packs(self: Any, commands: Any) -> Any:
        commands = list(commands)
        redis_cmds.extend(str(c[0]) for c in commands)
        return original["packs"](self, commands)

    class Exchanger:
        async def code2session(self, code: str) -> LoginSession:
            openid = code.removeprefix("sim:")
            return LoginSession(openid=openid, session_key="x", unionid=f"u-{openid}")

    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    client = redis_asyncio.Redis.from_url(redis_url)
    sessions = SessionStore(client)
    result: dict[str, Any] = {}
    try:
        await login_with_wechat("sim:probe-warm", wechat=Exchanger(), sessions=sessions)
        asyncpg.connection.Connection.execute = execute  # type: ignore[method-assign]
        asyncpg.connection.Connection._execute = _execute  # type: ignore[method-assign]
        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        AbstractConnection.pack_command = pack  # type: ignore[method-assign]
        AbstractConnection.pack_commands = packs  # type: ignore[method-assign]
        for case in ("first", "repeat"):
            sql.clear()
            redis_cmds.clear()
            redis_trips[0] = 0
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for i in range(n):
                await login_with_wechat(f"sim:probe-{i:05d}", wechat=Exchanger(), sessions=sessions)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            kinds = collections.Counter(_sql_kind(q) for q in sql)
            result[case] = {
                "sql_per_login": len(sql) / n,
                "sql": {k: v / n for k, v in kinds.most_common()},
                "redis_trips_per_login": redis_trips[0] / n,
                "redis_cmds": dict(collections.Counter(redis_cmds)),
                "cpu_us": cpu / n * 1e6,
                "wall_us": wall / n * 1e6,
            }
    finally:
        asyncpg.connection.Connection.execute = original["execute"]  # type: ignore[method-assign]
        asyncpg.connection.Connection._execute = original["_execute"]  # type: ignore[method-assign]
        AbstractConnection.send_packed_command = original["send"]  # type: ignore[method-assign]
        AbstractConnection.pack_command = original["pack"]  # type: ignore[method-assign]
        AbstractConnection.pack_commands = original["packs"]  # type: ignore[method-assign]
        await client.aclose()
        await Tortoise.close_connections()
    return result


def _sql_kind(query: str) -> str:
    q = " ".join(query.split())
    if q.startswith("SELECT pg_advisory_unlock_all()"):
        return "pool reset (asyncpg, on each release)"
    words = q.split()
    table = next((w.strip('"') for w in words if w.strip('"') in _TABLES), "")
    return f"{words[0]} {table}".strip()


_TABLES = ("wechat_account", "person", "audit_event")


# ---------------------------------------------------------------- one client at a time


def sequential_latency(url: str, n: int, prefix: str) -> tuple[float, float]:
    times = []
    with httpx.Client(timeout=10) as client:
        for i in range(n + 3):
            t0 = time.perf_counter()
            r = client.post(url, json={"code": f"sim:{prefix}-{i:05d}"})
            r.raise_for_status()
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


CLIENTS = ("transport", "raw")


def client_cost(kind: str, base: str, clients: int, credentials: dict[str, str]) -> str:
    """CPU per WeChat call of one HTTP client alone (bench/wechat_client.py, its own process).
    ``credentials``: the run's BENCH_WECHAT_APPID and _SECRET, which the simulator expects."""
    cmd = [sys.executable, "bench/wechat_client.py", "--base", base, "--clients", str(clients)]
    cmd += ["--seconds", "5", "--only", kind]
    env = os.environ | credentials
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # A side measurement: its failure is reported, not allowed to lose the rounds above.
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return f"    {kind}: failed ({why})"
    return "    " + done.stdout.strip()


# ---------------------------------------------------------------- py-spy profile

BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    (
        "WeChat call: httpx/httpcore/anyio/h11 + wechat/",
        ("httpx/", "httpcore/", "anyio/", "h11/", "wechat/", "sniffio/", "certifi/"),
    ),
    ("PostgreSQL: Tortoise/pypika/asyncpg", ("tortoise/", "pypika", "asyncpg/")),
    ("Redis: redis-py", ("redis/",)),
    ("login code: auth/", ("auth/",)),
    ("app: middleware, metrics, routes, validation", ("miniapp_api/", "pydantic", "prometheus")),
    ("Sanic: HTTP server, routing, responses", ("sanic/", "sanic_routing/", "sanic_ext/")),
]


def top_frames(raw: Path, limit: int = 12) -> list[tuple[str, float]]:
    incl: dict[str, int] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        total += int(n)
        for frame in set(stack.split(";")):
            if any(m in frame for m in ("httpcore/", "httpx/", "tortoise/", "asyncpg/", "redis/")):
                incl[frame] += int(n)
    return [(f, n / total) for f, n in incl.most_common(limit)]


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5, help="0: no warm-up rounds")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--openids", type=int, default=20000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--profile-seconds", type=int, default=10, help="0: no py-spy profile")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="suban_bench_login")
    parser.add_argument(
        "--db-params", default="", help="appended to SUBAN_DATABASE_URL, e.g. maxsize=20"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=300,
        metavar="SECONDS",
        help="wait at most this long for a nearly idle machine before each round, then measure "
        "anyway (the report says so)",
    )
    parser.add_argument("--note", default="", help="a word about this run, kept in the results")
    opts = parser.parse_args()
    refuse_test_redis(opts.redis)
    bindir = Path(sys.executable).parent
    tmp = Path(tempfile.mkdtemp(prefix="suban-bench-login-"))
    database_url = f"{opts.pg}/{opts.db}" + (f"?{opts.db_params}" if opts.db_params else "")
    sim_port, bare_port, suban_port = 8903, 8101, 8102
    env = suban_env(
        pg=opts.pg, db=opts.db, redis=opts.redis, var_dir=tmp, sim_port=sim_port, port=suban_port
    ) | {
        "SUBAN_DATABASE_URL": database_url,
        "BENCH_WECHAT_API_BASE": f"http://127.0.0.1:{sim_port}/wechat",
    }
    # suban_env gives the simulator fresh credentials each run: the bare login app needs them too
    # (with its own defaults every bare /login answered 500, invalid appsecret).
    env |= {
        "BENCH_WECHAT_APPID": env["SUBAN_WECHAT_APPID"],
        "BENCH_WECHAT_SECRET": env["SUBAN_WECHAT_SECRET"],
    }
    lua = tmp / "login.lua"
    lua.write_text(LUA)
    fresh_stores(opts.pg, opts.db, opts.redis)
    servers: dict[str, subprocess.Popen[bytes]] = {}
    rounds: list[Round] = []
    lines: list[str] = []
    sim = f"http://127.0.0.1:{sim_port}"
    try:
        servers["simulator"] = start(
            [sys.executable, "-m", "wechat.simulator", "--port", str(sim_port)],
            env,
            f"{sim}/control/counters",
            tmp / "sim.log",
        )
        httpx.post(
            f"{sim}/control/latency", json={"endpoint": "jscode2session", "ms": opts.latency_ms}
        ).raise_for_status()
        subprocess.run([bindir / "suban", "migrate"], env=env, check=True, capture_output=True)
        servers["bare"] = start(
            [sys.executable, "bench/bare_login_app.py", "--port", str(bare_port)],
            env,
            f"http://127.0.0.1:{bare_port}/healthz",
            tmp / "bare.log",
        )
        servers["suban"] = start(
            [str(bindir / "suban"), "serve"],
            env,
            f"http://127.0.0.1:{suban_port}/healthz",
            tmp / "suban.log",
        )
        login = f"http://127.0.0.1:{suban_port}{LOGIN_PATH}"
        # target: (url, wrk script, openid prefix, how many distinct openids)
        targets: dict[str, tuple[str, Path | None, str, int]] = {
            "bare /healthz": (f"http://127.0.0.1:{bare_port}/healthz", None, "", 0),
            "bare /login": (f"http://127.0.0.1:{bare_port}/login", lua, "bare", NEVER_AGAIN),
            "suban first": (login, lua, "first", NEVER_AGAIN),
            "suban repeat": (login, lua, "repeat", opts.openids),
        }
        dsn = f"{opts.pg}/{opts.db}"
        asyncio.run(seed_accounts(dsn, "repeat", opts.openids))
        meter = CpuMeter({n: p.pid for n, p in servers.items()}, opts.db)
        offset = dict.fromkeys(targets, 0)
        repeated: list[str] = []
        # Measurements outside the rounds that started on a busy machine, for the report.
        not_quiet: list[str] = []

        def quiet_or_noted(what: str) -> None:
            quiet = wait_for_quiet(timeout=opts.quiet_wait)
            if not quiet.quiet:
                not_quiet.append(f"{what} ({quiet.busy:.0%} busy)")

        def wrk_args(target: str) -> list[str]:
            _, script, prefix, count = targets[target]
            return [str(offset[target]), str(count), "2", prefix] if script else []

        def measure(target: str, seconds: int) -> Round:
            # The wait inside: a round measured again waits for a quiet machine again.
            def once() -> Round:
                quiet = wait_for_quiet(timeout=opts.quiet_wait)
                r = measure_once(target, seconds)
                r.extra["waited"] = quiet.waited
                r.quiet, r.busy_before = quiet.quiet, quiet.busy
                return r

            r = measure_again_if_disturbed(once, meter, 2, repeated)
            assert isinstance(r, Round)
            return r

        def measure_once(target: str, seconds: int) -> Round:
            url, script, _, _ = targets[target]
            args = wrk_args(target)
            accounts = asyncio.run(scalar(dsn, "SELECT count(*) FROM wechat_account"))
            meter.start()
            t0 = time.monotonic()
            try:
                result, conns = run_wrk(url, seconds, opts.clients, script, args, sim_port)
            except WrkFailed as exc:
                # Seen once: wrk's start-up connect refused. Say so, then measure this round again.
                print(f"wrk failed, round measured again: {exc}", file=sys.stderr)
                time.sleep(2)
                meter.start()
                t0 = time.monotonic()
                result, conns = run_wrk(url, seconds, opts.clients, script, args, sim_port)
            elapsed = time.monotonic() - t0
            cpu = meter.stop()
            # Past the requests wrk left in flight too, so "first" openids are never reused.
            offset[target] += result["requests"] + 2 * opts.clients
            created = asyncio.run(scalar(dsn, "SELECT count(*) FROM wechat_account")) - accounts
            return Round(
                target,
                cpu=cpu,
                first_logins=created,
                sim_connections=conns,
                seconds=elapsed,
                **result,
            )

        # wrk refuses -d0s: no warm-up at all then.
        for target in targets if opts.warmup > 0 else ():
            measure(target, opts.warmup)
        for _ in range(opts.rounds):
            for target in targets:
                rounds.append(measure(target, opts.seconds))

        probe = asyncio.run(round_trips(database_url, opts.redis, 200))
        seq = {
            "bare /login": sequential_latency(targets["bare /login"][0], 40, "seq-bare"),
            "suban first": sequential_latency(login, 40, "seq-first"),
            # The same openids again: now their accounts exist.
            "suban repeat": sequential_latency(login, 40, "seq-first"),
        }

        client_lines = []
        for kind in CLIENTS:
            quiet_or_noted(f"WeChat client alone ({kind})")
            credentials = {k: env[k] for k in ("BENCH_WECHAT_APPID", "BENCH_WECHAT_SECRET")}
            client_lines.append(client_cost(kind, f"{sim}/wechat", opts.clients // 2, credentials))

        profile: dict[str, float] = {}
        profile_lines: list[str] = []
        if opts.profile_seconds:
            quiet_or_noted("profile")
            # Profile the busier worker while wrk loads both (this round is not counted).
            url, script, _, _ = targets["suban repeat"]
            raw = tmp / "suban-worker.pyspy.txt"
            prof = profile_busier_worker(
                servers["suban"].pid,
                opts.profile_seconds,
                raw,
                BUCKETS,
                lambda: run_wrk(
                    url,
                    opts.profile_seconds + 2,
                    opts.clients,
                    script,
                    wrk_args("suban repeat"),
                    sim_port,
                )[0],
            )
            profile, threads, samples, pid = prof.shares, prof.threads, prof.samples, prof.pid
            busy = prof.busy * opts.profile_seconds
            wrk_result = prof.load
            profile_lines = [
                f"  profile: py-spy 100 Hz, {opts.profile_seconds} s, one suban worker (pid {pid}) "
                f"under repeat-login load ({wrk_result['rps']:.0f} logins/s both workers); "
                f"worker CPU busy {busy / opts.profile_seconds:.0%}, {samples} samples; "
                "samples per thread: " + ", ".join(f"{name} {n}" for name, n in threads.items()),
                *(f"    {share:6.1%}  {name}" for name, share in profile.items()),
                "    heaviest frames of the client libraries (inclusive):",
                *(f"      {share:6.1%}  {frame}" for frame, share in top_frames(raw)),
            ]
    finally:
        tear_down(servers, opts.pg, opts.db, opts.redis)

    lines = report(opts, rounds, probe, seq, client_lines, profile_lines, not_quiet)
    if repeated:
        lines.insert(
            1, "  rounds measured again (other processes on the machine): " + ", ".join(repeated)
        )
    append_results("login.txt", "\n".join(lines))


def report(
    opts: argparse.Namespace,
    rounds: list[Round],
    probe: dict[str, Any],
    seq: dict[str, tuple[float, float]],
    client_lines: list[str],
    profile_lines: list[str],
    not_quiet: list[str],
) -> list[str]:
    by: dict[str, list[Round]] = collections.defaultdict(list)
    for r in rounds:
        by[r.target].append(r)
    med = {t: statistics.median(r.rps for r in rs) for t, rs in by.items()}
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    lines = [
        f"{stamp}  {os.cpu_count()} cores, wrk -t2 -c{opts.clients} -d{opts.seconds}s x "
        f"{opts.rounds} per target, alternating; jscode2session +{opts.latency_ms} ms; "
        f"{opts.openids} openids round-robin; suban 2 workers, PostgreSQL + Redis, production; "
        f"quiet wait <= {opts.quiet_wait:g} s; "
        f"code {code_version(['auth', 'wechat', 'miniapp_api'])}"
        + (f"; db params {opts.db_params}" if opts.db_params else "")
        + (f"; {opts.note}" if opts.note else ""),
    ]
    components = ("suban", "bare", "simulator", "postgres", "redis", "wrk", "other")
    for target, rs in by.items():
        lines += rate_lines(target, rs, 13)
        if target != "bare /healthz":
            lines.append(
                "                WeChat calls in flight, at least (Little: logins/s x latency) "
                + " ".join(f"{r.rps * opts.latency_ms / 1000:.0f}" for r in rs)
                + "; TCP connections open to the simulator "
                + " ".join(str(r.sim_connections) for r in rs)
            )
        if target.startswith("suban"):
            lines.append(
                "                accounts created / logins completed (a round's last requests "
                "finish after wrk stops) " + " ".join(f"{r.first_logins}/{r.requests}" for r in rs)
            )
        lines.append(cpu_line(rs, components, " " * 16))
    lines += disturbed_lines(rounds)
    busy = [f"{r.target} ({r.busy_before:.0%} busy)" for r in rounds if not r.quiet] + not_quiet
    if busy:
        lines.append(
            f"  NOT QUIET: {sum(not r.quiet for r in rounds)} of {len(rounds)} rounds, and "
            f"{len(not_quiet)} other measurements, started on a busy machine after the "
            f"--quiet-wait bound of {opts.quiet_wait:g} s: {', '.join(busy)}"
        )
    b, h = med["bare /login"], med["bare /healthz"]
    lines.append(
        f"  ratios: bare /login / bare /healthz {b / h:.3f}; "
        + "; ".join(
            f"{t} / bare /login {med[t] / b:.2f}, / bare /healthz {med[t] / h:.3f}"
            for t in ("suban first", "suban repeat")
        )
        + "; target 1000 logins/s: "
        + ("met" if min(med["suban first"], med["suban repeat"]) >= 1000 else "missed")
    )
    for case, p in probe.items():
        lines.append(
            f"  per {case} login (in-process, stub code exchange): {p['sql_per_login']:.1f} SQL "
            f"round trips ({', '.join(f'{k} {v:g}' for k, v in p['sql'].items())}); "
            f"{p['redis_trips_per_login']:.1f} Redis round trips "
            f"({' '.join(f'{k}' for k in p['redis_cmds'])}); "
            f"CPU {p['cpu_us']:.0f} us, wall {p['wall_us']:.0f} us"
        )
    lines.append(
        "  one client at a time, median (min) ms: "
        + "; ".join(f"{t} {m:.1f} ({lo:.1f})" for t, (m, lo) in seq.items())
    )
    lines.append(
        f"  WeChat client alone (bench/wechat_client.py, one process, uvloop, simulator "
        f"+{opts.latency_ms} ms):"
    )
    lines.extend(client_lines)
    lines.extend(profile_lines)
    return lines


if __name__ == "__main__":
    main()
