"""/healthz of ``suban serve --workers 2`` against a bare Sanic route, measured in the same run.

These machines are noisy (2 shared cores, steal time), so both servers are measured in alternation,
ROUNDS times, with wrk, and two ratios are reported:

- throughput: median requests/s of suban over that of the bare route (the issue's number), and
- CPU per request: server CPU time (user + system of the whole process group, from /proc) divided by
  the requests wrk completed. It moves much less with the neighbours' load than requests/s do.

    .venv/bin/python bench/healthz.py [--seconds 10] [--rounds 5]

Needs wrk (apt-get install wrk) and a real Redis on 127.0.0.1:6379 (two workers need one).
Results are printed and appended to bench/results/healthz.txt.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, TICKS, fresh_stores, start, suban_env, tear_down


def group_cpu_seconds(pgid: int) -> float:
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def wrk(url: str, seconds: int) -> tuple[float, int]:
    out = subprocess.run(
        ["wrk", "-t2", "-c100", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="suban_bench_healthz")
    opts = parser.parse_args()
    bindir = Path(sys.executable).parent
    tmp = Path(tempfile.mkdtemp(prefix="suban-bench-"))
    # As deployed: production mode refuses SQLite, so PostgreSQL + Redis like the other benches.
    # No simulator runs: /healthz never calls WeChat.
    env = suban_env(pg=opts.pg, db=opts.db, redis=opts.redis, var_dir=tmp, sim_port=8103, port=8102)
    fresh_stores(opts.pg, opts.db, opts.redis)
    subprocess.run([bindir / "suban", "migrate"], env=env, check=True, capture_output=True)
    servers = {
        "bare": start(
            [sys.executable, "bench/bare_app.py", "--port", "8101", "--workers", "2"],
            env,
            "http://127.0.0.1:8101/healthz",
            tmp / "bare.log",
        ),
        "suban": start(
            [str(bindir / "suban"), "serve"], env, "http://127.0.0.1:8102/healthz", tmp / "s.log"
        ),
    }
    ports = {"bare": 8101, "suban": 8102}
    rps: dict[str, list[float]] = {"bare": [], "suban": []}
    cpu: dict[str, list[float]] = {"bare": [], "suban": []}
    try:
        for _ in range(opts.rounds):
            for name, proc in servers.items():
                before = group_cpu_seconds(proc.pid)
                r, done = wrk(f"http://127.0.0.1:{ports[name]}/healthz", opts.seconds)
                used = group_cpu_seconds(proc.pid) - before
                rps[name].append(r)
                cpu[name].append(used / done * 1e6)
    finally:
        tear_down(servers, opts.pg, opts.db, opts.redis)
    med = {n: statistics.median(v) for n, v in rps.items()}
    med_cpu = {n: statistics.median(v) for n, v in cpu.items()}
    lines = [
        f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}  "
        f"{os.cpu_count()} cores, wrk -t2 -c100 -d{opts.seconds}s x {opts.rounds}, alternating",
        *(
            f"  {n:5s} req/s {' '.join(f'{x:.0f}' for x in rps[n])}  median {med[n]:.0f};  "
            f"CPU us/req {' '.join(f'{x:.1f}' for x in cpu[n])}  median {med_cpu[n]:.1f}"
            for n in ("bare", "suban")
        ),
        f"  throughput ratio suban/bare {med['suban'] / med['bare']:.2f} (target >= 0.90); "
        f"CPU-per-request ratio bare/suban {med_cpu['bare'] / med_cpu['suban']:.2f}",
    ]
    text = "\n".join(lines)
    print(text)
    results = ROOT / "bench" / "results" / "healthz.txt"
    results.parent.mkdir(exist_ok=True)
    with results.open("a") as out:
        out.write(text + "\n")


if __name__ == "__main__":
    main()
