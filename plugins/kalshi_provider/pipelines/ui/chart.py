"""Render the hourly values as self-contained SVG line charts (no JavaScript, no CDN).

Two charts: the total resting order value per account, and the free margin per account and
exchange shard (its balance minus the value of its resting orders), which may be negative. Every
name from the warehouse is escaped; the numbers are drawn from exact values (the drawing itself
needs no more than a float's precision).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Any

WIDTH, HEIGHT = 900, 360
LEFT, RIGHT, TOP, BOTTOM = 90, 20, 20, 50
COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"]


def series_by_account(rows: list[dict[str, Any]]) -> dict[str, list[tuple[datetime, int]]]:
    """The total resting order value (cents) per account and hour, from totals rows (a chart
    window's ``totals``, or ``read_snapshots``)."""
    series: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for row in rows:
        series[row["account"]].append((row["snapshot_hour"], row["total_resting_order_value_cents"]))
    return {account: sorted(points) for account, points in sorted(series.items())}


def margin_by_shard(margins: list[dict[str, Any]]) -> dict[tuple[str, int], list[tuple[datetime, Decimal]]]:
    """The known free margin (dollars) per (account, exchange shard) and hour, from free margin rows
    (a chart window's ``margins``); hours where it is unknown (NULL) are left out, so the line
    breaks there."""
    series: dict[tuple[str, int], list[tuple[datetime, Decimal]]] = defaultdict(list)
    for row in margins:
        if row["shard_balance_minus_resting_dollars"] is not None:
            key = (row["account"], row["exchange_index"])
            series[key].append((row["snapshot_hour"], row["shard_balance_minus_resting_dollars"]))
    return {key: sorted(points) for key, points in sorted(series.items())}


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


#: Dash pattern per exchange shard (modulo 4) in the free margin chart; shard 0 is solid.
DASHES = ("", "6 3", "2 3", "8 3 2 3")


@dataclass(frozen=True)
class _Line:
    css_class: str
    attributes: str  # escaped data-* attributes naming the line
    stroke: str
    dash: str
    points: list[tuple[datetime, float]]


def render_svg(
    series: dict[str, list[tuple[datetime, int]]], start: datetime, end: datetime, *, bucket_hours: int = 1
) -> str:
    """One line per account, hours on x, dollars on y from 0; gaps (missing hours, or buckets of
    ``bucket_hours`` without a point) break the line."""
    lines = [
        _Line(
            "series",
            f'data-account="{escape(account)}"',
            colour(index),
            "",
            [(m, c / 100) for m, c in points],
        )
        for index, (account, points) in enumerate(series.items())
    ]
    return _plot(lines, start, end, bucket_hours, aria="Total resting order value per account")


def render_margin_svg(
    series: dict[tuple[str, int], list[tuple[datetime, Decimal]]],
    start: datetime,
    end: datetime,
    *,
    bucket_hours: int = 1,
) -> str:
    """One line per account and shard (the account's colour, a dash pattern per shard); a dashed
    line marks $0 when the free margin turns negative."""
    accounts = sorted({account for account, _ in series})
    lines = [
        _Line(
            "margin",
            f'data-margin-account="{escape(account)}" data-shard="{shard}"',
            colour(accounts.index(account)),
            DASHES[shard % len(DASHES)],
            [(moment, float(dollars)) for moment, dollars in points],
        )
        for (account, shard), points in series.items()
    ]
    return _plot(lines, start, end, bucket_hours, aria="Free margin per account and exchange shard")


def _plot(lines: Sequence[_Line], start: datetime, end: datetime, bucket_hours: int, *, aria: str) -> str:
    values = [value for line in lines for _, value in line.points]
    low, high = min([0.0, *values]), max([0.0, *values])
    if high == low:
        high = low + 1.0  # an empty or flat chart still has a scale
    span = (end - start).total_seconds() or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return LEFT + (moment - start).total_seconds() / span * plot_w

    def y(value: float) -> float:
        return TOP + plot_h - (value - low) / (high - low) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(aria)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
    ]
    if low < 0:
        parts.append(
            f'<line class="zero" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
            'stroke="#999" stroke-dasharray="4 4"/>'
        )
    for step in range(5):
        value = low + (high - low) * step / 4
        parts.append(
            f'<text x="{LEFT - 8}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="12">'
            f"{_money(value)}</text>"
        )
    for moment, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text x="{x(moment):.1f}" y="{HEIGHT - 20}" text-anchor="{anchor}" font-size="12">'
            f"{moment:%Y-%m-%d %H:00} UTC</text>"
        )
    for line in lines:
        dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        for segment in _contiguous(line.points, start, bucket_hours):
            coords = " ".join(f"{x(moment):.1f},{y(value):.1f}" for moment, value in segment)
            parts.append(
                f'<polyline class="{line.css_class}" {line.attributes} points="{coords}" '
                f'fill="none" stroke="{line.stroke}" stroke-width="2"{dash}/>'
            )
            parts.extend(
                f'<circle cx="{x(m):.1f}" cy="{y(v):.1f}" r="2.5" fill="{line.stroke}"/>' for m, v in segment
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _money(dollars: float) -> str:
    sign = "-" if dollars < 0 else ""
    return f"{sign}${abs(dollars):,.0f}"


def _contiguous(
    points: list[tuple[datetime, float]], start: datetime, bucket_hours: int
) -> list[list[tuple[datetime, float]]]:
    """Runs of points in consecutive buckets (hours when ``bucket_hours`` is 1; buckets line up with
    00:00 UTC of ``start``'s day)."""
    origin = start.replace(hour=0, minute=0, second=0, microsecond=0)

    def bucket(moment: datetime) -> int:
        return (moment - origin) // timedelta(hours=bucket_hours)

    segments: list[list[tuple[datetime, float]]] = []
    for point in points:
        if segments and bucket(point[0]) - bucket(segments[-1][-1][0]) == 1:
            segments[-1].append(point)
        else:
            segments.append([point])
    return segments
