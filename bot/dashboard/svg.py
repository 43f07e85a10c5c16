"""Charts drawn on the server as inline SVG: nothing to load, nothing to build.

The drawings hold numbers, dates and data labels (area names) only; every word around them
(titles, legends) is in the page's template. Sizes are in a 360-wide view box, about a phone's
width, and scale with the page (``width="100%"``).
"""
from __future__ import annotations

import math
from datetime import date
from typing import Sequence

from markupsafe import Markup, escape

WIDTH = 360
FOUND, CLOSED = "#d9480f", "#2b8a3e"


def nice_max(value: int) -> int:
    """A round top for the axis: 1, 2, 5, 10, 20, 50, ... at least ``value``."""
    if value <= 0:
        return 1
    power = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover


def weekly_bars(weeks: Sequence[dict]) -> Markup:
    """Found and closed per week, side by side: ``weeks`` as ``{"start", "found", "closed"}``."""
    height, left, right, top, bottom = 200, 28, 6, 10, 34
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    top_value = nice_max(max([w["found"] for w in weeks] + [w["closed"] for w in weeks] + [0]))
    slot = plot_w / max(len(weeks), 1)
    bar = max(2.0, slot * 0.34)
    parts = [f'<svg class="chart chart-weekly" role="img" viewBox="0 0 {WIDTH} {height}" '
             f'width="100%" xmlns="http://www.w3.org/2000/svg">']
    for tick in (0, top_value // 2, top_value) if top_value % 2 == 0 else (0, top_value):
        y = top + plot_h - plot_h * tick / top_value
        parts.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#dee2e6" stroke-width="1"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" fill="#495057" '
                     f'text-anchor="end">{tick}</text>')
    for i, week in enumerate(weeks):
        x0 = left + i * slot + (slot - 2 * bar) / 2
        for j, (name, color) in enumerate((("found", FOUND), ("closed", CLOSED))):
            value = week[name]
            h = plot_h * value / top_value
            day: date = week["start"]
            parts.append(f'<rect class="bar {name}" x="{x0 + j * bar:.1f}" '
                         f'y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{color}" data-value="{value}"><title>'
                         f'{day.month}/{day.day}: {value}</title></rect>')
        if (len(weeks) - 1 - i) % 2 == 0 or len(weeks) <= 6:  # the latest week always
            label = f"{week['start'].month}/{week['start'].day}"
            parts.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - bottom + 16}" '
                         f'font-size="10" fill="#495057" text-anchor="middle">{label}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def area_bars(rows: Sequence[tuple[str, int]]) -> Markup:
    """Horizontal bars, one per area (label, count), in the order given."""
    row_h, left, right, top = 26, 112, 34, 4
    height = top * 2 + row_h * max(len(rows), 1)
    plot_w = WIDTH - left - right
    top_value = max([n for _, n in rows] + [1])
    parts = [f'<svg class="chart chart-areas" role="img" viewBox="0 0 {WIDTH} {height}" '
             f'width="100%" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value) in enumerate(rows):
        y = top + i * row_h
        w = plot_w * value / top_value
        parts.append(f'<text x="{left - 6}" y="{y + row_h / 2 + 4:.1f}" font-size="12" '
                     f'fill="#212529" text-anchor="end">{escape(_clip(label))}</text>'
                     f'<rect class="bar area" x="{left}" y="{y + 4}" width="{w:.1f}" '
                     f'height="{row_h - 8}" rx="2" fill="#1971c2" data-value="{value}">'
                     f'<title>{escape(label)}: {value}</title></rect>'
                     f'<text x="{left + w + 4:.1f}" y="{y + row_h / 2 + 4:.1f}" '
                     f'font-size="12" fill="#212529">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _clip(label: str, limit: int = 8) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"
