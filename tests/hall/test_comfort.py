"""The comfort index: beats the naive baseline, tertile levels, the publication's shape, its
storage and the month-end job, and the SVG chart."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date, datetime, time
from functools import cache
from typing import Any

import pytest

from auth.clock import ZONE
from hall.comfort import (
    LEVELS,
    ComfortModel,
    MonthInvalid,
    build_publication,
    fit,
    get_publication,
    level_of,
    parse_month,
    predict_month,
    publication_view,
    publish_comfort_index,
    publish_due,
)
from hall.comfort_backtest import backtest, count_arrivals
from hall.comfort_svg import FONT_FAMILY, LEVEL_COLOURS, render_comfort_svg
from hall.halls import upsert_hall
from hall.history import DEFAULT_OPEN_HOURS, generate_history, load_history
from hall.models import ComfortPublication
from tests.conftest import LiveServer

CATEGORIES = ["invoice", "filing", "registration", "consulting"]
SVG = "{http://www.w3.org/2000/svg}"


@cache
def _counts() -> dict[tuple[date, time], int]:
    return count_arrivals(
        generate_history(
            categories=CATEGORIES, start=date(2023, 1, 2), end=date(2024, 4, 30), seed=11
        )
    )


@cache
def _model() -> ComfortModel:
    return fit(
        {k: n for k, n in _counts().items() if k[0] <= date(2024, 2, 29)}, DEFAULT_OPEN_HOURS
    )


def test_the_model_beats_the_naive_baseline_on_a_small_backtest() -> None:
    # 14 months to train, 2 to test (the bench runs 2 years and 1).
    result = backtest(_counts(), train_to=date(2024, 2, 29))
    assert result.test_from == date(2024, 3, 1)
    assert result.days_scored >= 35
    assert result.model_slot_mape < result.baseline_slot_mape
    assert result.model_day_mape < result.baseline_day_mape
    assert result.model_slot_mape < 0.25
    assert "naive baseline" in result.table()


def test_levels_are_tertiles_of_the_months_predictions() -> None:
    days, cuts = predict_month(_model(), 2024, 4, DEFAULT_OPEN_HOURS)
    slots = [s for d in days for s in d["slots"]]
    levels = Counter(s["level"] for s in slots)
    assert set(levels) == set(LEVELS)
    for level in LEVELS:
        assert abs(levels[level] / len(slots) - 1 / 3) < 0.05
    for s in slots:
        assert s["level"] == level_of(s["expected"], cuts)
    busiest = max(slots, key=lambda s: s["expected"])
    quietest = min(slots, key=lambda s: s["expected"])
    assert (busiest["level"], quietest["level"]) == ("较多", "较少")
    # Other quantiles, other cut points: 0.5/0.9 leaves a tenth 较多.
    days, _ = predict_month(_model(), 2024, 4, DEFAULT_OPEN_HOURS, quantiles=(0.5, 0.9))
    levels = Counter(s["level"] for d in days for s in d["slots"])
    assert abs(levels["较多"] / len(slots) - 0.1) < 0.03


def test_the_deadline_week_is_predicted_busier_than_the_month_end() -> None:
    days, _ = predict_month(_model(), 2024, 4, DEFAULT_OPEN_HOURS)
    total = {d["date"]: sum(s["expected"] for s in d["slots"]) for d in days}
    assert total["2024-04-18"] > 1.3 * total["2024-04-25"]


def test_level_of_and_parse_month() -> None:
    assert [level_of(v, [10.0, 20.0]) for v in (5, 10, 15, 25)] == ["较少", "较少", "适中", "较多"]
    assert parse_month("2026-12") == (2026, 12)
    for bad in ("2026-13", "2026-1", "26-01", "2026/01", "abcd-ef", "2026-00"):
        with pytest.raises(MonthInvalid):
            parse_month(bad)


def test_the_publication_has_api_md_shape() -> None:
    publication = build_publication(_model(), _counts(), 2024, 5, DEFAULT_OPEN_HOURS)
    assert publication["month"] == "2024-05"
    assert publication["levels"] == ["较少", "适中", "较多"]
    assert [d["date"] for d in publication["days"]] == [f"2024-05-{d:02d}" for d in range(1, 32)]
    by_date = {d["date"]: d["slots"] for d in publication["days"]}
    assert by_date["2024-05-01"] == []  # Labour Day
    assert by_date["2024-05-11"] != []  # a Saturday made a working day
    first = by_date["2024-05-06"][0]
    assert set(first) == {"start", "end", "expected", "level"}
    assert (first["start"], first["end"]) == ("09:00", "09:30")
    assert [s["start"] for s in by_date["2024-05-06"]][5:7] == ["11:30", "13:00"]
    trend = publication["trend"]
    assert [t["month"] for t in trend][-3:] == ["2024-03", "2024-04", "2024-05"]
    assert all(set(t) == {"month", "expected_total"} for t in trend)
    # Past months are what arrived.
    april = sum(n for (d, _), n in _counts().items() if d.month == 4 and d.year == 2024)
    assert trend[-2]["expected_total"] == april
    assert publication["model_info"]["rows"] > 0


async def test_publish_stores_one_publication_per_month_and_the_job_fills_the_next(
    live: LiveServer,
) -> None:
    hall_id = f"c{uuid.uuid4().hex[:10]}"
    await upsert_hall(
        hall_id, "测试厅", "某路 1 号", list(DEFAULT_OPEN_HOURS), [("invoice", "发票")]
    )
    await load_history(
        hall_id,
        generate_history(
            categories=CATEGORIES, start=date(2024, 1, 2), end=date(2024, 6, 29), seed=3
        ),
    )
    now = datetime(2024, 6, 30, 20, 0, tzinfo=ZONE)
    published = await publish_comfort_index(hall_id, 2024, 7, now=now, published_by="staff:1")
    stored = await get_publication(hall_id, "2024-07")
    assert stored is not None
    view = publication_view(stored)
    assert set(view) == {"month", "published_at", "levels", "days", "trend"}
    assert view["days"] == published["days"]
    assert stored.published_by == "staff:1"
    await publish_comfort_index(hall_id, 2024, 7, now=now, published_by="staff:2")
    assert await ComfortPublication.filter(hall_id=hall_id, month="2024-07").count() == 1
    # The month-end job: next month (August) is missing on 07-31, so it is published; then
    # nothing is due until it is stale.
    last_day = datetime(2024, 7, 31, 8, 0, tzinfo=ZONE)
    done = await publish_due(last_day)
    assert (hall_id, "2024-08") in done
    assert (hall_id, "2024-08") not in await publish_due(last_day)


def _svg(publication: dict[str, Any], title: str) -> ET.Element:
    return ET.fromstring(render_comfort_svg(publication, title=title))  # noqa: S314 - our own output


def test_the_svg_is_valid_with_levels_labels_and_a_point_per_slot() -> None:
    publication = build_publication(_model(), _counts(), 2024, 4, DEFAULT_OPEN_HOURS)
    root = _svg(publication, "荔湾 <测试> & “厅”")
    assert root.tag == f"{SVG}svg"
    assert root.get("font-family") == FONT_FAMILY
    slots = [s for d in publication["days"] for s in d["slots"]]
    circles = root.findall(f".//{SVG}circle")
    assert len(circles) == len(slots)
    colours = Counter(c.get("fill") for c in circles)
    assert set(colours) == set(LEVEL_COLOURS.values())
    for circle, slot in zip(circles, slots, strict=True):
        assert circle.get("fill") == LEVEL_COLOURS[slot["level"]]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "日期" in texts
    assert "预计到厅人数" in texts
    assert {"较少", "适中", "较多"} <= set(texts)
    assert "荔湾 <测试> & “厅”" in texts
    legend = root.findall(f".//{SVG}rect[@class='legend']")
    assert [r.get("fill") for r in legend] == [LEVEL_COLOURS[level] for level in LEVELS]
    # A label per open day.
    open_days = sum(1 for d in publication["days"] if d["slots"])
    assert len([t for t in root.iter(f"{SVG}text") if t.get("class") == "day"]) == open_days
