"""The database and Redis half of a login, in this process, today's code against two cheaper ways
of doing the same thing: where bench/login.py says the time goes to Tortoise + asyncpg, this says
how much of it a change would give back. No HTTP, no WeChat call (a stub exchange answers at once).

    .venv/bin/python bench/login_db.py [--seconds 5] [--concurrency 100]

Variants, each with first logins (new openids) and repeat logins (seeded accounts):

- ``current``: ``auth.login.login_with_wechat`` as it is (get_or_create, save, Person lookup when
  linked, audit insert, session in Redis), Tortoise's asyncpg pool as configured today;
- ``no-reset``: the same code on a pool whose connections skip asyncpg's reset query
  (``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;``) on every release,
  half of the statements of a repeat login;
- ``one-statement``: account upsert, audit insert and the person's verification read as one
  PostgreSQL statement (``INSERT .. ON CONFLICT .. RETURNING`` in a CTE), then the same Redis
  session, on the no-reset pool.

CONCURRENCY logins run at once (one worker's share of bench/login.py's 200 clients). Reported per
variant and case: logins/s of this one process, its CPU per login, and the CPU per login of the
PostgreSQL backends and of redis-server (from /proc). Creates and drops its own database
(``suban_bench_login_db``), uses Redis db 13 (flushed before and after). Results are printed and
appended to bench/results/login.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from login import CpuMeter, admin_sql, flush_redis, seed_accounts  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

ONE_STATEMENT = """
WITH acc AS (
    INSERT INTO wechat_account (openid, unionid, created_at, last_login_at)
    VALUES ($1, $2, $3, $3)
    ON CONFLICT (openid) DO UPDATE
        SET last_login_at = EXCLUDED.last_login_at,
            unionid = COALESCE(EXCLUDED.unionid, wechat_account.unionid)
    RETURNING id, person_id
), ev AS (
    INSERT INTO audit_event (at, actor_kind, actor_id, action, target, outcome, request_id, details)
    SELECT $3, 'mp', acc.id::text, 'mp.login', 'account:' || acc.id, 'ok', $4, '{}'
    FROM acc
)
SELECT acc.id, acc.person_id, p.verified_at IS NOT NULL AS verified
FROM acc LEFT JOIN person p ON p.id = acc.person_id
"""


def tortoise_config(database_url: str, *, reset: bool) -> dict[str, Any]:
    from miniapp_api.database import tortoise_config as app_config

    config = app_config(database_url)
    if reset:
        return config
    import asyncpg

    class NoResetConnection(asyncpg.Connection):  # type: ignore[misc]
        # asyncpg still rolls back an open transaction on release (Connection._reset).
        def get_reset_query(self) -> str:
            return ""

    url = urlsplit(database_url)
    config["connections"]["default"] = {
        "engine": "tortoise.backends.asyncpg",
        "credentials": {
            "host": url.hostname,
            "port": url.port or 5432,
            "user": url.username,
            "password": url.password,
            "database": url.path.lstrip("/"),
            "connection_class": NoResetConnection,
        },
    }
    return config


class Exchanger:
    async def code2session(self, code: str) -> Any:
        from wechat.miniprogram import LoginSession

        openid = code.removeprefix("sim:")
        return LoginSession(openid=openid, session_key="x", unionid=f"u-{openid}")


async def run_variant(
    variant: str, database_url: str, redis_url: str, prefix: str, seconds: float, concurrency: int
) -> tuple[int, float, float, float]:
    import redis.asyncio as redis_asyncio
    from tortoise import Tortoise, connections

    from auth.login import login_with_wechat
    from auth.sessions import SessionStore

    await Tortoise.init(
        config=tortoise_config(database_url, reset=variant == "current"),
        _enable_global_fallback=True,
    )
    client = redis_asyncio.Redis.from_url(redis_url, max_connections=64)
    sessions = SessionStore(client)
    exchanger = Exchanger()

    async def one_statement(openid: str) -> None:
        now = datetime.datetime.now(datetime.UTC)
        rows = await connections.get("default").execute_query_dict(
            ONE_STATEMENT, [openid, f"u-{openid}", now, "bench"]
        )
        await sessions.create("mp", rows[0]["id"], rows[0]["person_id"])

    async def current(openid: str) -> None:
        await login_with_wechat(f"sim:{openid}", wechat=exchanger, sessions=sessions)

    login = one_statement if variant == "one-statement" else current
    done = 0
    counter = iter(range(10**9))

    async def caller(until: float) -> None:
        nonlocal done
        while time.monotonic() < until:
            await login(f"{prefix}-{next(counter) % 20000:08d}")
            done += 1

    try:
        # A short warm-up fills the pools and asyncpg's statement caches.
        await asyncio.gather(*(caller(time.monotonic() + 1) for _ in range(concurrency)))
        # The pool's backends live until close_connections: measured while they are there.
        meter = CpuMeter({}, urlsplit(database_url).path.lstrip("/"))
        done, cpu0 = 0, time.process_time()
        meter.start()
        await asyncio.gather(*(caller(time.monotonic() + seconds) for _ in range(concurrency)))
        cpu = time.process_time() - cpu0
        servers = meter.stop()
    finally:
        await client.aclose()
        await Tortoise.close_connections()
    return done, cpu, servers.get("postgres", 0.0), servers.get("redis", 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="suban_bench_login_db")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # one measurement, in a child
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.redis.rstrip("/").endswith("/14"):
        raise SystemExit("Redis db 14 belongs to the test suite; pick another (--redis)")
    database_url = f"{opts.pg}/{opts.db}"
    if opts.variant:
        import uvloop

        result = uvloop.run(
            run_variant(
                opts.variant, database_url, opts.redis, opts.prefix, opts.seconds, opts.concurrency
            )
        )
        print(*result)
        return

    drop = f'DROP DATABASE IF EXISTS "{opts.db}" WITH (FORCE)'
    asyncio.run(admin_sql(opts.pg, drop, f'CREATE DATABASE "{opts.db}"'))
    flush_redis(opts.redis)
    env = os.environ | {"SUBAN_DATABASE_URL": database_url, "SUBAN_VAR_DIR": tempfile.mkdtemp()}
    bindir = Path(sys.executable).parent
    lines = [
        f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}  login_db.py: "
        f"the DB + Redis half of a login in one process (uvloop), {opts.concurrency} at once, "
        f"{opts.seconds:g} s per line; CPU us per login"
    ]
    try:
        subprocess.run([bindir / "suban", "migrate"], env=env, check=True, capture_output=True)
        asyncio.run(seed_accounts(database_url, "repeat", 20000))
        for variant in ("current", "no-reset", "one-statement"):
            for case in ("first", "repeat"):
                # Every first-login line gets openids of its own.
                prefix = f"first{variant}" if case == "first" else "repeat"
                cmd = [sys.executable, __file__, "--variant", variant, "--prefix", prefix]
                cmd += ["--seconds", str(opts.seconds), "--concurrency", str(opts.concurrency)]
                cmd += ["--pg", opts.pg, "--db", opts.db, "--redis", opts.redis]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                done_text, *cpu_text = out.split()[-4:]
                done = int(done_text)
                own, pg, rd = (float(x) / done * 1e6 for x in cpu_text)
                lines.append(
                    f"  {variant:13s} {case:6s} {done / opts.seconds:6.0f} logins/s; "
                    f"this process {own:5.0f}, PostgreSQL {pg:5.0f}, Redis {rd:4.0f}; "
                    f"sum {own + pg + rd:5.0f}"
                )
                print(lines[-1], flush=True)
    finally:
        asyncio.run(admin_sql(opts.pg, drop))
        flush_redis(opts.redis)
    text = "\n".join(lines)
    with (ROOT / "bench" / "results" / "login.txt").open("a") as out:
        out.write(text + "\n")


if __name__ == "__main__":
    main()
