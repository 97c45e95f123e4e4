"""What the load scripts share: CPU accounting from /proc, wrk, starting and stopping the servers
under test, the bench database and Redis db, py-spy, and the report's common lines.

bench/login.py and bench/filing.py use it; nothing of the service imports it.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- CPU accounting from /proc


@dataclass
class Proc:
    pid: int
    ppid: int
    pgid: int
    comm: str
    cmdline: str
    ticks: int


def processes() -> list[Proc]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        found.append(Proc(int(entry), int(fields[1]), int(fields[2]), comm, cmdline, ticks))
    return found


def machine_ticks() -> tuple[int, int]:
    """(busy, all) jiffies of the whole machine; steal counts as busy (someone used the core)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


class CpuMeter:
    """CPU seconds per component between ``start`` and ``stop``."""

    def __init__(self, groups: dict[str, int], database: str) -> None:
        self.groups = groups  # name -> process group id
        self.database = database

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = collections.defaultdict(float)
        self._foreign: dict[int, tuple[str, int]] = {}
        for p in processes():
            name = next((n for n, g in self.groups.items() if p.pgid == g), None)
            if name is None and p.comm == "postgres" and f" {self.database} " in p.cmdline:
                name = "postgres"
            elif name is None and p.comm.startswith("redis-server"):
                name = "redis"
            if name is not None:
                out[name] += p.ticks / TICKS
            elif p.pid != os.getpid():
                self._foreign[p.pid] = ((p.cmdline or p.comm)[:70].strip(), p.ticks)
        busy, total = machine_ticks()
        out["machine"] = busy / TICKS
        out["machine_all"] = total / TICKS
        own = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["wrk"] = own.ru_utime + own.ru_stime
        return out

    def start(self) -> None:
        self._before = self.sample()
        self._foreign_before = self._foreign

    def stop(self) -> dict[str, float]:
        after = self.sample()
        grown = {
            label: (ticks - self._foreign_before.get(pid, (label, ticks))[1]) / TICKS
            for pid, (label, ticks) in self._foreign.items()
        }
        self.top_foreign = sorted(((v, k) for k, v in grown.items() if v >= 0.2), reverse=True)[:3]
        used = {k: after.get(k, 0.0) - self._before.get(k, 0.0) for k in after}
        known = sum(v for k, v in used.items() if k not in ("machine", "machine_all"))
        used["other"] = max(0.0, used["machine"] - known)
        return used


@dataclass(frozen=True)
class Quiet:
    """What waiting for a nearly idle machine came to."""

    waited: float  # seconds
    quiet: bool  # False: ``timeout`` passed with the machine still busy
    busy: float  # the machine's busy share in the last second sampled


def wait_for_quiet(limit: float = 0.15, timeout: float = 300) -> Quiet:
    """Wait until the machine is nearly idle (busy below ``limit`` for a second), ``timeout``
    seconds at most: this machine is shared, and a test run beside the benchmark takes half of
    it. One second is always sampled, so the answer says whether it was quiet."""
    t0 = time.monotonic()
    while True:
        busy0, all0 = machine_ticks()
        time.sleep(1)
        busy1, all1 = machine_ticks()
        busy = (busy1 - busy0) / max(all1 - all0, 1)
        waited = time.monotonic() - t0
        if busy < limit or waited >= timeout:
            return Quiet(waited, busy < limit, busy)


def wait_quiet(limit: float = 0.15, timeout: float = 300) -> float:
    """:func:`wait_for_quiet`, for callers that only need the seconds waited."""
    return wait_for_quiet(limit, timeout).waited


# ---------------------------------------------------------------- wrk


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> dict[str, Any]:
    def num(pattern: str, default: str = "0") -> str:
        found = re.search(pattern, out)
        return found.group(1) if found else default

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(num(r"Requests/sec:\s+([\d.]+)")),
        "requests": int(num(r"(\d+) requests in")),
        "p50_ms": _ms(num(r"\s50%\s+([\d.]+\w+)", "0ms")),
        "p99_ms": _ms(num(r"\s99%\s+([\d.]+\w+)", "0ms")),
        "non2xx": int(num(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def count_connections(port: int) -> int:
    out = subprocess.run(
        ["ss", "-tnH", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return len(out.splitlines())


def run_wrk(
    url: str, seconds: int, clients: int, lua: Path | None, args: list[str], sim_port: int
) -> tuple[dict[str, Any], int]:
    cmd = ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if lua is not None:
        cmd += ["-s", str(lua)]
    cmd += [url, *(["--", *args] if args else [])]
    samples: list[int] = []

    def sample_connections() -> None:
        time.sleep(seconds / 2)
        samples.append(count_connections(sim_port))

    sampler = threading.Thread(target=sample_connections)
    sampler.start()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    sampler.join()
    if done.returncode != 0:
        raise WrkFailed(f"{' '.join(cmd)}: exit {done.returncode}: {done.stdout} {done.stderr}")
    return parse_wrk(done.stdout), samples[0] if samples else 0


class WrkFailed(RuntimeError):
    pass


@dataclass
class Round:
    """One wrk run against one target, with the CPU every component spent meanwhile."""

    target: str
    rps: float
    requests: int
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    cpu: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- processes under test


def start(args: list[str], env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    stop(proc)
    raise SystemExit(f"{args} did not come up:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the main process only (it stops its workers), SIGKILL the group if stuck."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def worker_pids(main_pid: int) -> list[int]:
    return [p.pid for p in processes() if p.ppid == main_pid and "spawn_main" in p.cmdline]


async def admin_sql(pg: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{pg}/postgres")
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def sql(dsn: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def scalar(dsn: str, query: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


Buckets = Sequence[tuple[str, tuple[str, ...]]]


def bucket_of(stack: str, buckets: Buckets) -> str:
    """The bucket (name, path markers) of a py-spy stack: the deepest frame that belongs to a
    known package decides (leaf first)."""
    for frame in reversed(stack.split(";")):
        for name, markers in buckets:
            if any(m in frame for m in markers):
                return name
    return "other (asyncio, stdlib, event loop)"


def profile_worker(
    pid: int, seconds: int, out: Path, buckets: Buckets
) -> tuple[dict[str, float], dict[str, int], int]:
    """py-spy ``pid`` for ``seconds`` (raw stacks into ``out``): the share of samples in each
    of ``buckets``, the samples per thread, and the samples in all."""
    py_spy = Path(sys.executable).parent / "py-spy"
    subprocess.run(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            "100",
            "--format",
            "raw",
            "--nonblocking",
            "--threads",
            "-o",
            str(out),
        ],
        capture_output=True,
        check=True,
    )
    counts: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        # With --threads the first frame is "thread (TID): NAME".
        threads[stack.split(";", 1)[0].partition(": ")[2] or "?"] += int(n)
        counts[bucket_of(stack, buckets)] += int(n)
        total += int(n)
    shares = {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}
    return shares, dict(threads), total


# ---------------------------------------------------------------- the server under test


def suban_env(
    *, pg: str, db: str, redis: str, var_dir: Path, sim_port: int, port: int
) -> dict[str, str]:
    """``suban serve`` as deployed (production mode, 2 workers) on the bench's own database and
    Redis db, a fresh PII key, the simulator as WeChat and WeCom."""
    key = base64.b64encode(os.urandom(32)).decode()
    sim = f"http://127.0.0.1:{sim_port}"
    # Production mode refuses the simulator's published credentials: fresh ones each run, handed
    # to the simulator too (it reads them from SIM_*, the same environment).
    wechat_secret, wecom_secret, token = (os.urandom(16).hex() for _ in range(3))
    aes_key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    return os.environ | {
        "SUBAN_ENV": "production",
        "SUBAN_SIMULATOR": "0",
        "SUBAN_WORKERS": "2",
        "SUBAN_HOST": "127.0.0.1",
        "SUBAN_PORT": str(port),
        "SUBAN_VAR_DIR": str(var_dir),
        "SUBAN_DATABASE_URL": f"{pg}/{db}",
        "SUBAN_REDIS_URL": redis,
        "SUBAN_PII_KEYS": f"v1:{key}",
        "SUBAN_WECHAT_APPID": "wx-sim-appid",
        "SUBAN_WECHAT_SECRET": wechat_secret,
        "SUBAN_WECHAT_API_BASE": f"{sim}/wechat",
        "SUBAN_WECOM_CORP_ID": "ww-sim-corp",
        "SUBAN_WECOM_SECRET": wecom_secret,
        "SUBAN_WECOM_AGENT_ID": "1000002",
        "SUBAN_WECOM_TOKEN": token,
        "SUBAN_WECOM_AES_KEY": aes_key,
        "SUBAN_WECOM_API_BASE": f"{sim}/wecom",
        "SIM_WECHAT_SECRET": wechat_secret,
        "SIM_WECOM_SECRET": wecom_secret,
        "SIM_CALLBACK_TOKEN": token,
        "SIM_CALLBACK_AES_KEY": aes_key,
    }


def refuse_test_redis(url: str) -> None:
    if url.rstrip("/").endswith("/14"):
        raise SystemExit("Redis db 14 belongs to the test suite; pick another (--redis)")


def code_version(paths: Sequence[str]) -> str:
    """The commit measured, and which files under ``paths`` differ from it (work in progress)."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run(
        [*git, "diff", "--name-only", "HEAD", "--", *paths], capture_output=True, text=True
    ).stdout.split()
    return head.stdout.strip() + (f" + uncommitted {' '.join(changed)}" if changed else "")


def append_results(name: str, text: str) -> None:
    """Print ``text`` and append it to bench/results/``name``."""
    print(text)
    results = ROOT / "bench" / "results" / name
    results.parent.mkdir(exist_ok=True)
    with results.open("a") as out:
        out.write(text + "\n")


# ---------------------------------------------------------------- report lines


class Measured(Protocol):
    requests: int
    cpu: dict[str, float]


class Timed(Protocol):
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int


def rate_lines(target: str, rounds: Sequence[Timed], width: int, digits: int = 0) -> list[str]:
    """Requests/s of every round and their median; p50 and p99 of every round, the median p99,
    and the errors. The second line is indented to align under the first's numbers."""
    med = statistics.median(r.rps for r in rounds)
    p99 = statistics.median(r.p99_ms for r in rounds)
    return [
        f"  {target:{width}s} req/s {' '.join(f'{r.rps:.0f}' for r in rounds)}  median {med:.0f}",
        " " * (width + 3)
        + "p50 ms "
        + " ".join(f"{r.p50_ms:.{digits}f}" for r in rounds)
        + "  p99 ms "
        + " ".join(f"{r.p99_ms:.{digits}f}" for r in rounds)
        + f"  (median p99 {p99:.{digits}f})  non-2xx {sum(r.non2xx for r in rounds)}  socket "
        f"errors {sum(r.socket_errors for r in rounds)}",
    ]


def cpu_line(rounds: Sequence[Measured], components: Sequence[str], indent: str) -> str:
    """Median CPU microseconds per request of each component over ``rounds``."""
    cpu = {
        c: statistics.median(r.cpu.get(c, 0.0) / max(r.requests, 1) * 1e6 for r in rounds)
        for c in components
    }
    util = statistics.median(r.cpu["machine"] / max(r.cpu["machine_all"], 1e-9) for r in rounds)
    return (
        f"{indent}CPU us/request "
        + ", ".join(f"{c} {v:.0f}" for c, v in cpu.items() if v >= 0.5)
        + f"; total {sum(cpu.values()):.0f}; machine busy {util:.0%}"
    )


def disturbed_lines(rounds: Sequence[Measured]) -> list[str]:
    # "other" is the machine's CPU outside the processes under test: kernel work on their behalf
    # (a few %), or someone else's load, which makes the run useless for absolute numbers.
    others = [r.cpu["other"] / max(r.cpu["machine"], 1e-9) for r in rounds]
    if max(others, default=0) <= 0.15:
        return []
    return [
        f"  DISTURBED: other processes used up to {max(others):.0%} of the machine's busy CPU "
        f"in a round (median {statistics.median(others):.0%}); compare this run with care"
    ]


# ---------------------------------------------------------------- measuring


def measure_again_if_disturbed(
    measure_once: Callable[[], Round],
    meter: CpuMeter,
    retries: int,
    repeated: list[str],
) -> Round:
    """A round in which other processes took over 15% of the machine's busy CPU is measured
    again, ``retries`` times at most; ``repeated`` collects which and who, for the report."""
    for attempt in range(retries + 1):
        r = measure_once()
        share = r.cpu["other"] / max(r.cpu["machine"], 1e-9)
        if share <= 0.15 or attempt == retries:
            return r
        who = "; ".join(f"{label} {sec:.1f} s" for sec, label in meter.top_foreign)
        print(f"{r.target}: other processes took {share:.0%} ({who}); again", file=sys.stderr)
        repeated.append(f"{r.target} {share:.0%} ({who or 'short-lived processes'})")
    raise AssertionError("unreachable")


@dataclass
class Profile:
    pid: int
    busy: float  # the worker's CPU share while profiled
    shares: dict[str, float]
    threads: dict[str, int]
    samples: int
    load: Any  # what ``load`` returned


def profile_busier_worker(
    main_pid: int, seconds: int, raw: Path, buckets: Buckets, load: Callable[[], Any]
) -> Profile:
    """py-spy the busier worker of ``main_pid`` for ``seconds`` while ``load`` (which must run
    ``seconds`` + 2 s) loads both; raw stacks into ``raw``."""
    workers = worker_pids(main_pid)
    before = {p.pid: p.ticks for p in processes()}
    holder: dict[str, Any] = {}
    loader = threading.Thread(target=lambda: holder.update(result=load()))
    loader.start()
    time.sleep(1)
    now = {p.pid: p.ticks for p in processes()}
    pid = max(workers, key=lambda w: now.get(w, 0) - before.get(w, 0))
    shares, threads, samples = profile_worker(pid, seconds, raw, buckets)
    busy = (next(p.ticks for p in processes() if p.pid == pid) - now.get(pid, 0)) / TICKS
    loader.join()
    return Profile(pid, busy / seconds, shares, threads, samples, holder.get("result"))


def fresh_stores(pg: str, db: str, redis: str) -> None:
    """The bench's own database, created empty, and its Redis db, flushed."""
    asyncio.run(
        admin_sql(pg, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)', f'CREATE DATABASE "{db}"')
    )
    flush_redis(redis)


def tear_down(servers: dict[str, subprocess.Popen[bytes]], pg: str, db: str, redis: str) -> None:
    """Stop the servers (newest first), drop the bench database, flush its Redis db."""
    for proc in reversed(list(servers.values())):
        stop(proc)
    try:
        asyncio.run(admin_sql(pg, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    finally:
        flush_redis(redis)
