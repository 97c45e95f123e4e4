"""The comfort index as an SVG chart: expected arrivals per day-slot across the month, each
slot a point and each stretch of the curve coloured by its level. Drawn here rather than with a
plotting library: a few hundred elements, and no font files or native code on the server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from hall.comfort import LEVELS

LEVEL_COLOURS: dict[str, str] = {"较少": "#2e9d5b", "适中": "#f0a202", "较多": "#d64545"}
FONT_FAMILY = "PingFang SC, Microsoft YaHei, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif"
WIDTH, HEIGHT = 960, 420
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 24, 56, 64
_GAP = 6.0  # pixels between two days' curves


def _number(value: float) -> str:
    return f"{value:.1f}"


def _text(x: float, y: float, content: str, **attrs: str) -> str:
    extra = "".join(
        f" {name.rstrip('_').replace('_', '-')}={quoteattr(v)}" for name, v in attrs.items()
    )
    return f'<text x="{_number(x)}" y="{_number(y)}"{extra}>{escape(content)}</text>'


def _nice_top(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 10.0
    step = 10 ** max(0, len(str(int(value))) - 1)
    for factor in (1, 2, 2.5, 5, 10):
        if value <= step * factor:
            return float(step * factor)
    return float(step * 10)


def render_comfort_svg(publication: Mapping[str, Any], *, title: str) -> str:
    """The chart of a publication in API.md's shape (``month``, ``days`` with their slots)."""
    days: Sequence[Mapping[str, Any]] = publication.get("days", [])
    open_days = [d for d in days if d.get("slots")]
    points = sum(len(d["slots"]) for d in open_days)
    peak = max((float(s["expected"]) for d in open_days for s in d["slots"]), default=0.0)
    top = _nice_top(peak)
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM
    step = (plot_w - _GAP * max(0, len(open_days) - 1)) / max(1, points)

    def y_of(value: float) -> float:
        return _TOP + plot_h * (1 - value / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family={quoteattr(FONT_FAMILY)} font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        _text(_LEFT, 24, title, font_size="16", font_weight="bold", fill="#222222"),
    ]
    for tick in range(5):
        value = top * tick / 4
        y = y_of(value)
        parts.append(
            f'<line x1="{_LEFT}" y1="{_number(y)}" x2="{WIDTH - _RIGHT}" y2="{_number(y)}" '
            'stroke="#e5e5e5" stroke-width="1"/>'
        )
        parts.append(_text(_LEFT - 6, y + 4, f"{value:g}", text_anchor="end", fill="#666666"))
    parts.append(
        _text(
            16,
            _TOP + plot_h / 2,
            "预计到厅人数",
            text_anchor="middle",
            fill="#444444",
            transform=f"rotate(-90 16 {_number(_TOP + plot_h / 2)})",
            class_="axis-title",
        )
    )
    parts.append(
        _text(
            _LEFT + plot_w / 2,
            HEIGHT - 12,
            "日期",
            text_anchor="middle",
            fill="#444444",
            class_="axis-title",
        )
    )
    x = float(_LEFT)
    for day in open_days:
        slots = day["slots"]
        start_x = x
        previous: tuple[float, float] | None = None
        for slot in slots:
            level = str(slot["level"])
            colour = LEVEL_COLOURS.get(level, "#888888")
            cx, cy = x + step / 2, y_of(float(slot["expected"]))
            if previous is not None:
                parts.append(
                    f'<line x1="{_number(previous[0])}" y1="{_number(previous[1])}" '
                    f'x2="{_number(cx)}" y2="{_number(cy)}" stroke="{colour}" stroke-width="2"/>'
                )
            label = f"{day['date']} {slot['start']}–{slot['end']} {slot['expected']} {level}"
            parts.append(
                f'<circle class="slot" cx="{_number(cx)}" cy="{_number(cy)}" r="2" '
                f'fill="{colour}"><title>{escape(label)}</title></circle>'
            )
            previous = (cx, cy)
            x += step
        day_label = str(day["date"])[-2:].lstrip("0")
        parts.append(
            _text(
                (start_x + x) / 2,
                HEIGHT - _BOTTOM + 16,
                day_label,
                text_anchor="middle",
                fill="#666666",
                class_="day",
            )
        )
        x += _GAP
    legend_x = WIDTH - _RIGHT - 3 * 72
    for index, level in enumerate(LEVELS):
        lx = legend_x + index * 72
        parts.append(
            f'<rect class="legend" x="{lx}" y="14" width="14" height="14" '
            f'fill="{LEVEL_COLOURS[level]}"/>'
        )
        parts.append(_text(lx + 20, 26, level, fill="#333333"))
    parts.append("</svg>")
    return "\n".join(parts)
