"""The whole benchmark suite in one command, short mode, and one summary table.

    flock /tmp/suban-bench.lock .venv/bin/python bench/suite.py     # ~15 minutes

Runs, one after another, each as its own process (each starts its own servers: ``suban serve``
with 2 workers in production mode on PostgreSQL + Redis db 13, and the bare Sanic route of
bench/bare_app.py with 2 workers, measured in alternation in the same run):

- bench/hall.py ``--with-healthz``: ``/healthz``, hall status, booking (throughput and the
  exactness race), WebSocket fan-out to 2,000 subscribers;
- bench/filing.py: progress lookup and submission create;
- bench/login.py: mini-program login with +50 ms simulated WeChat latency.

Short mode: ``--seconds 5 --rounds 3`` per script (``--profile-seconds 5``: each script
profiles a worker under the loads whose target it missed, or as it always does), and
``--quiet-wait 10``: each script waits at most that long for a nearly idle machine before a
round, then measures anyway (a machine shared with test runs may never be idle; bench/login.py
alone would otherwise wait up to 300 s a round). Each script appends its full report to its own
bench/results/*.txt; this one reads their printed reports, appends the summary to
bench/results/suite.txt and writes it into bench/README.md between ``<!-- suite:start -->`` and
``<!-- suite:end -->``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, append_results, code_version

PACKAGES = ["auth", "forms", "hall", "miniapp_api", "wechat", "wecom"]
START, END = "<!-- suite:start -->", "<!-- suite:end -->"


@dataclass
class Row:
    case: str
    suban: str = "—"
    bare: str = "—"
    ratio: str = "—"
    cpu_ratio: str = "—"
    p99: str = "—"
    target: str = "—"
    met: str = "—"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def median_of(report: str, target: str) -> tuple[float, float] | None:
    """(median req/s, median p99 ms) of ``target`` in a report of harness.rate_lines (the last
    one if the report holds several)."""
    found = re.findall(
        rf"^  {re.escape(target)}\s+req/s [\d ]+ median (\d+)\n.*?p99 ms ([\d. ]+)",
        report,
        re.MULTILINE,
    )
    if not found:
        return None
    rps, p99s = found[-1]
    return float(rps), statistics.median(float(x) for x in p99s.split())


def cpu_us(report: str, target: str, component: str) -> float | None:
    """Median CPU µs per request of ``component`` in ``target``'s rounds (harness.cpu_line)."""
    found = re.findall(
        rf"^  {re.escape(target)}\s+req/s(?:.*\n){{1,4}}?\s+CPU us/request ([^;]*);",
        report,
        re.MULTILINE,
    )
    if not found:
        return None
    parts = dict(part.rsplit(" ", 1) for part in found[-1].split(", "))
    return float(parts[component]) if component in parts else None


def disturbed(report: str) -> str:
    """A note when other processes took much of the machine in the script's rounds, or when
    rounds started on a busy machine after the quiet wait ran out (bench/login.py says so)."""
    notes = []
    found = re.search(r"DISTURBED: .*\(median (\d+)%\)", report)
    if found:
        notes.append(f"disturbed: others took a median {found.group(1)}% of the busy CPU")
    busy = re.search(r"NOT QUIET: (\d+) of (\d+) rounds", report)
    if busy and busy.group(1) != "0":
        notes.append(f"{busy.group(1)} of {busy.group(2)} rounds started on a busy machine")
    return f" ({'; '.join(notes)})" if notes else ""


def last_report(name: str) -> str:
    """The newest report in bench/results/``name`` (each starts with its ISO timestamp)."""
    path = ROOT / "bench" / "results" / name
    text = path.read_text() if path.exists() else ""
    return re.split(r"^(?=\d{4}-\d\d-\d\dT)", text, flags=re.MULTILINE)[-1]


def run_script(name: str, args: list[str], log: Path) -> tuple[str, str]:
    """Run bench/``name`` with ``args``; (its stdout, a failure note or '')."""
    print(f"suite: {name} {' '.join(args)}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    with log.open("w") as err:
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / name), *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            check=False,
        )
    took = time.monotonic() - t0
    print(f"suite: {name} done in {took:.0f} s (exit {done.returncode})", file=sys.stderr)
    failed = "" if done.returncode == 0 else f"exit {done.returncode}, see {log}"
    return done.stdout, failed


def ratio_row(case: str, report: str, target: str, bare: str, goal: float) -> Row:
    got, base = median_of(report, target), median_of(report, bare)
    if got is None or base is None:
        return Row(case, met="no result")
    ratio = got[0] / base[0]
    mine, bare_cpu = cpu_us(report, target, "suban"), cpu_us(report, bare, "bare")
    return Row(
        case,
        f"{got[0]:.0f}/s",
        f"{base[0]:.0f}/s",
        f"{ratio:.2f}×",
        f"{bare_cpu / mine:.2f}× ({mine:.0f} vs {bare_cpu:.0f} µs)" if mine and bare_cpu else "—",
        f"{got[1]:.1f}",
        f"≥ {goal:.2f}×",
        "met" if ratio >= goal else "**missed**" + disturbed(report),
    )


def hall_rows(report: str) -> list[Row]:
    rows = [
        ratio_row("`/healthz` (wrk -c64)", report, "healthz", "bare /healthz", 0.9),
        ratio_row(
            "hall status `GET /api/v1/halls/liwan/status`", report, "status", "bare /healthz", 0.6
        ),
    ]
    book = ratio_row("booking `POST /api/v1/mp/appointments`", report, "book", "bare /healthz", 0)
    race = re.search(
        r"race: (\d+) people at once on a slot of capacity (\d+):.*: (EXACT|NOT EXACT)$",
        report,
        re.MULTILINE,
    )
    book.target = "exact capacity (throughput reported)"
    book.met = "no result"
    if race:
        people, capacity = race.group(1), race.group(2)
        book.target = f"{people} racing for capacity {capacity} → exactly {capacity}"
        book.met = "met (exact)" if race.group(3) == "EXACT" else "**missed** (not exact)"
    rows.append(book)
    ws = re.search(
        r"WebSocket fan-out: (\d+) subscribers.*missed (\d+), closed early (.*)\n"
        r"\s+latency POST -> receipt ms: p50 (\d+)\s+p95 (\d+)\s+p99 (\d+)\s+max (\d+)",
        report,
    )
    if ws:
        p99 = float(ws.group(6))
        ok = p99 < 1000 and ws.group(2) == "0" and ws.group(3) == "0"
        rows.append(
            Row(
                f"WebSocket fan-out, {ws.group(1)} subscribers",
                suban=f"p50/p95/max {ws.group(4)}/{ws.group(5)}/{ws.group(7)} ms; "
                f"missed {ws.group(2)}",
                p99=ws.group(6),
                target="p99 < 1000 ms, none missed",
                met="met" if ok else "**missed**",
            )
        )
    else:
        rows.append(Row("WebSocket fan-out", met="no result"))
    return rows


def filing_rows(report: str) -> list[Row]:
    progress = ratio_row(
        "progress lookup `GET /api/v1/progress`", report, "progress", "bare /healthz", 0.3
    )
    create = ratio_row("submission create, 64 clients", report, "create", "bare /healthz", 0)
    create.target = "p99 < 50 ms"
    p99 = median_of(report, "create")
    if p99 is not None:
        create.met = "met" if p99[1] < 50 else "**missed** (known; CPU ceiling, see Filing)"
    return [progress, create]


def login_rows(report: str) -> list[Row]:
    rows = []
    for target in ("suban first", "suban repeat"):
        row = ratio_row(
            f"login +50 ms WeChat, 200 clients ({target.split()[1]})",
            report,
            target,
            "bare /healthz",
            0,
        )
        got = median_of(report, target)
        row.target = "≥ 1,000/s"
        if got is not None:
            row.met = "met" if got[0] >= 1000 else "**missed** (known; see Login)"
        rows.append(row)
    return rows


def table(rows: list[Row], header: list[str]) -> str:
    out = [
        *header,
        "",
        "| case | suban | bare /healthz (same run) | throughput ratio | CPU/request ratio "
        "(server µs, suban vs bare) | p99 ms | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| {r.case} | {r.suban} | {r.bare} | {r.ratio} | {r.cpu_ratio} | {r.p99} | {r.target} "
        f"| {r.met} |"
        for r in rows
    ]
    return "\n".join(out)


def write_readme(text: str) -> None:
    readme = ROOT / "bench" / "README.md"
    current = readme.read_text()
    block = f"{START}\n{text}\n{END}"
    if START in current and END in current:
        before, rest = current.split(START, 1)
        current = before + block + rest.split(END, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile-seconds", type=int, default=5)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10,
        metavar="SECONDS",
        help="each script's bound on waiting for a nearly idle machine before a round",
    )
    parser.add_argument("--no-readme", action="store_true", help="results file only")
    parser.add_argument(
        "--from-results",
        action="store_true",
        help="run nothing: the table from the newest reports in bench/results/",
    )
    opts = parser.parse_args()
    short = ["--seconds", str(opts.seconds), "--rounds", str(opts.rounds)]
    prof = ["--profile-seconds", str(opts.profile_seconds)]
    quiet = ["--quiet-wait", f"{opts.quiet_wait:g}"]
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    began = datetime.datetime.now().astimezone()
    steps: list[tuple[str, list[str], Callable[[str], list[Row]]]] = [
        ("hall.py", [*short, *prof, *quiet, "--warmup", "2", "--with-healthz"], hall_rows),
        ("filing.py", [*short, *prof, *quiet, "--warmup", "3", "--pool", "3000"], filing_rows),
        ("login.py", [*short, *prof, *quiet, "--warmup", "3", "--openids", "5000"], login_rows),
    ]
    rows: dict[str, list[Row]] = {}
    for name, args, parse in steps:
        if opts.from_results:
            report, failed = last_report(name.replace(".py", ".txt")), ""
        else:
            report, failed = run_script(name, args, logs / f"suban-suite-{name}.log")
        rows[name] = parse(report)
        if failed:
            for row in rows[name]:
                row.met = f"failed ({failed})" if row.met == "no result" else row.met
    hall, filing, login = rows["hall.py"], rows["filing.py"], rows["login.py"]
    # The order: healthz, status, progress, login, create, booking, fan-out.
    ordered = [hall[0], hall[1], filing[0], *login, filing[1], hall[2], hall[3]]
    ended = datetime.datetime.now().astimezone()
    header = [
        (
            f"Rendered {ended:%Y-%m-%d %H:%M %Z} from the newest reports in bench/results/"
            if opts.from_results
            else f"Suite run {began:%Y-%m-%d %H:%M}–{ended:%H:%M %Z}: `bench/suite.py "
            f"--seconds {opts.seconds} --rounds {opts.rounds}`"
        )
        + f"; {os.cpu_count()} cores ({cpu_model()}), "
        f"shared with other sessions' test runs meanwhile (only ratios to the bare route of the "
        f"same script's run count); code {code_version(PACKAGES)}.",
        "suban: `suban serve`, 2 workers, production mode, PostgreSQL + Redis; bare: "
        "bench/bare_app.py, 2 workers; wrk -t2, 64 clients (login 200), rounds alternating. "
        "Full reports (CPU per request, profiles): bench/results/{hall,filing,login}.txt.",
    ]
    text = table(ordered, header)
    append_results("suite.txt", f"{began.isoformat(timespec='seconds')}\n{text}\n")
    if not opts.no_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
