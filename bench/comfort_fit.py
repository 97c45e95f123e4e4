"""The comfort index fit on three years of demo history (time and peak memory) and the backtest
(two years to train, the third to predict) beside the naive baseline.

    .venv/bin/python bench/comfort_fit.py   # writes bench/results/comfort.txt
"""

from __future__ import annotations

import platform
import resource
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

from hall.comfort import fit, predict_month
from hall.comfort_backtest import backtest, count_arrivals
from hall.history import DEFAULT_OPEN_HOURS, generate_history

CATEGORIES = ["invoice", "filing", "registration", "consulting"]
SEED = 6


def main() -> None:
    end = date.today() - timedelta(days=1)
    start = end - timedelta(days=round(365.25 * 3)) + timedelta(days=1)
    began = time.perf_counter()
    counts = count_arrivals(
        generate_history(categories=CATEGORIES, start=start, end=end, seed=SEED)
    )
    generated = time.perf_counter() - began
    tickets = sum(counts.values())

    tracemalloc.start()
    began = time.perf_counter()
    model = fit(counts, DEFAULT_OPEN_HOURS)
    nxt = end + timedelta(days=1)
    predict_month(model, nxt.year, nxt.month, DEFAULT_OPEN_HOURS)
    fitted = time.perf_counter() - began
    _current, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    train_to = start + timedelta(days=round(365.25 * 2)) - timedelta(days=1)
    result = backtest(counts, train_to)

    lines = [
        f"# comfort index fit and backtest ({date.today()}, {platform.python_version()}, "
        f"{platform.machine()})",
        f"history: {start} .. {end}, seed {SEED}, {tickets} tickets, "
        f"{len({d for d, _ in counts})} open days; generated + counted in {generated:.1f} s",
        f"fit on three years ({model.rows} day-slots, {len(model.info()['features'])} "  # type: ignore[arg-type]
        f"features) + predict a month: {fitted:.2f} s; peak traced allocation "
        f"{traced_peak / 2**20:.1f} MB; peak RSS of the whole process {rss_mb:.0f} MB "
        f"(history generation included); R² on log scale {model.r2_log:.3f}",
        "",
        "backtest: train on the first two years, predict the third",
        result.table(),
        "",
    ]
    text = "\n".join(lines)
    out = Path(__file__).parent / "results" / "comfort.txt"
    out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
