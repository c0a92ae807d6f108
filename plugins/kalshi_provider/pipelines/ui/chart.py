"""Render the hourly values as a self-contained SVG line chart (no JavaScript, no CDN)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from html import escape
from typing import Any

WIDTH, HEIGHT = 900, 360
LEFT, RIGHT, TOP, BOTTOM = 90, 20, 20, 50
COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"]


def series_by_account(rows: list[dict[str, Any]]) -> dict[str, list[tuple[datetime, int]]]:
    series: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for row in rows:
        series[row["account"]].append((row["snapshot_hour"], row["total_resting_order_value_cents"]))
    return {account: sorted(points) for account, points in sorted(series.items())}


def render_svg(series: dict[str, list[tuple[datetime, int]]], start: datetime, end: datetime) -> str:
    """One line per account, hours on x, dollars on y; gaps (missing hours) break the line."""
    top_value = max((value for points in series.values() for _, value in points), default=0) or 100
    span = (end - start).total_seconds() or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return LEFT + (moment - start).total_seconds() / span * plot_w

    def y(cents: int) -> float:
        return TOP + plot_h - cents / top_value * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Total resting order value per account">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
    ]
    for step in range(5):
        cents = top_value * step / 4
        parts.append(
            f'<text x="{LEFT - 8}" y="{y(cents) + 4:.1f}" text-anchor="end" font-size="12">'
            f"${cents / 100:,.0f}</text>"
        )
    for moment, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text x="{x(moment):.1f}" y="{HEIGHT - 20}" text-anchor="{anchor}" font-size="12">'
            f"{moment:%Y-%m-%d %H:00} UTC</text>"
        )
    for index, (account, points) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        for segment in _contiguous(points):
            coords = " ".join(f"{x(moment):.1f},{y(value):.1f}" for moment, value in segment)
            parts.append(
                f'<polyline class="series" data-account="{escape(account)}" points="{coords}" '
                f'fill="none" stroke="{colour}" stroke-width="2"/>'
            )
            parts.extend(
                f'<circle cx="{x(m):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>' for m, v in segment
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _contiguous(points: list[tuple[datetime, int]]) -> list[list[tuple[datetime, int]]]:
    segments: list[list[tuple[datetime, int]]] = []
    for point in points:
        if segments and (point[0] - segments[-1][-1][0]).total_seconds() == 3600:
            segments[-1].append(point)
        else:
            segments.append([point])
    return segments
