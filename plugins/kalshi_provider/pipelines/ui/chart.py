"""Render the hourly values as self-contained SVG line charts, each with its legend.

Hand-written SVG, drawn on the server (``docs/adr/0007-chart-rendering.md`` says why): round money
ticks, time ticks in the reader's zone, a legend per panel, and the values of every line at an
hour when the pointer rests on it (CSS ``:hover`` / ``:focus`` on a column per hour: no script).
Lines are told apart by colour *and* dash pattern, so a grey-scale print or a colour-blind reader
still can. Every name from the warehouse is escaped; labels are formatted from exact values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from kalshi_provider.pipelines.ui.axes import MoneyScale, moment_label, money_scale, time_ticks

WIDTH, HEIGHT = 900, 360
LEFT, RIGHT, TOP, BOTTOM = 90, 20, 20, 50
#: Okabe and Ito's palette: told apart by colour-blind readers too.
COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000", "#999999"]
#: Dash patterns, told apart in grey scale: the n-th pattern of a panel goes with its n-th colour
#: for shards, and a line's figure (total solid, balance dashed) on the accounts' panel.
DASHES = ("", "7 4", "2 3", "9 3 2 3", "4 4", "1 5")
BALANCE_DASH = DASHES[1]
#: A line with more points than this draws no dot per point (the dots would merge into a smear).
MOST_DOTS = 120
_GRID_LINE = ' class="grid" stroke="#e4e4e4"'
_ZERO_LINE = ' class="grid zero" stroke="#777" stroke-dasharray="4 4"'  # where a value turns negative
#: Most lines a value box lists: 16 rows of 16 px fill the 290-pixel plot.
MOST_TIP_ROWS = 15
_CHAR_WIDTH = 6.7  # pixels per character of the 12px tooltip font, for sizing its box


@dataclass(frozen=True)
class Line:
    """One line of a panel.

    :param label: What the legend and the tooltip call it (plain text; escaped when drawn).
    :param attributes: ``data-*`` attributes naming it in the SVG (plain text values).
    :param points: (hour, exact dollars), ordered by hour.
    """

    label: str
    colour: str
    dash: str
    points: list[tuple[datetime, Decimal]]
    attributes: dict[str, str] = field(default_factory=dict)
    css_class: str = "line"


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def account_lines(totals: Sequence[dict[str, Any]], balances: Sequence[dict[str, Any]]) -> list[Line]:
    """Per account, in its own colour: the total resting order value (solid) and the balance
    (dashed), from a chart window's ``totals`` and ``balances`` rows."""
    total_points = _by_key(
        totals, ("account",), lambda r: Decimal(r["total_resting_order_value_cents"]) / 100
    )
    balance_points = _by_key(balances, ("account",), lambda r: r["balance_dollars"])
    lines = []
    for index, (account,) in enumerate(sorted(set(total_points) | set(balance_points))):
        if (account,) in total_points:
            lines.append(
                Line(
                    f"{account} · resting order value",
                    colour(index),
                    "",
                    total_points[(account,)],
                    {"data-account": account},
                    "series",
                )
            )
        if (account,) in balance_points:
            lines.append(
                Line(
                    f"{account} · balance",
                    colour(index),
                    BALANCE_DASH,
                    balance_points[(account,)],
                    {"data-balance-account": account},
                    "balance",
                )
            )
    return lines


def shard_lines(rows: Sequence[dict[str, Any]], value: str) -> list[Line]:
    """A line per account and exchange shard of one of Kalshi's per-shard figures (``value``, a
    column of a window's ``balance_minus_resting`` rows), each in its own colour and dash pattern; hours where
    the figure is unknown (NULL) break the line."""
    known = [row for row in rows if row[value] is not None]
    series = _by_key(known, ("account", "exchange_index"), lambda r: r[value])
    return [
        Line(
            f"{account} · shard {shard}",
            colour(index),
            DASHES[shard % len(DASHES)],
            points,
            {"data-shard-account": account, "data-shard": str(shard), "data-figure": value},
            "shard",
        )
        for index, ((account, shard), points) in enumerate(sorted(series.items()))
    ]


def _by_key(rows: Iterable[dict[str, Any]], key: tuple[str, ...], value: Any) -> dict[tuple, list]:
    series: dict[tuple, list[tuple[datetime, Decimal]]] = {}
    for row in rows:
        series.setdefault(tuple(row[name] for name in key), []).append((row["snapshot_hour"], value(row)))
    return {k: sorted(points) for k, points in series.items()}


def legend(lines: Sequence[Line]) -> str:
    """The panel's legend: each line's colour and dash pattern, and its name."""
    items = "".join(
        f'<li><svg width="36" height="10" aria-hidden="true">'
        f'<line x1="0" y1="5" x2="36" y2="5" stroke="{line.colour}" stroke-width="2.5"{_dash(line.dash)}/>'
        f"</svg> {escape(line.label)}</li>"
        for line in lines
    )
    return f'<ul class="legend">{items}</ul>' if items else '<p class="note">No line in this window.</p>'


def render_panel(
    lines: Sequence[Line],
    start: datetime,
    end: datetime,
    *,
    zone: ZoneInfo,
    aria: str,
    bucket_hours: int = 1,
) -> str:
    """The panel's SVG: lines over hours ``start`` to ``end`` (aware), dollars on y from 0 (or
    below); gaps (missing hours, or buckets of ``bucket_hours`` without a point) break a line."""
    scale = money_scale([value for line in lines for _, value in line.points])
    span = (end - start).total_seconds() or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return LEFT + (moment - start).total_seconds() / span * plot_w

    def y(value: Decimal) -> float:
        return TOP + plot_h - float((value - scale.low) / (scale.high - scale.low)) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" font-size="12" role="img" '
        f'aria-label="{escape(aria)}">',
        *_money_axis(scale, y, plot_w),
        *_time_axis(start, end, zone, x),
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbb"/>',
    ]
    for line in lines:
        dots = len(line.points) <= MOST_DOTS
        for segment in _contiguous(line.points, start, bucket_hours):
            coords = " ".join(f"{x(moment):.1f},{y(value):.1f}" for moment, value in segment)
            attributes = "".join(f' {name}="{escape(value)}"' for name, value in line.attributes.items())
            parts.append(
                f'<polyline class="{line.css_class}"{attributes} points="{coords}" fill="none" '
                f'stroke="{line.colour}" stroke-width="2"{_dash(line.dash)}/>'
            )
            if dots or len(segment) == 1:  # a lone point has no line: always its dot
                parts.extend(
                    f'<circle cx="{x(m):.1f}" cy="{y(v):.1f}" r="2.5" fill="{line.colour}"/>'
                    for m, v in segment
                )
    parts.extend(_hover_columns(lines, start, bucket_hours, zone, x, y))
    parts.append("</svg>")
    return "\n".join(parts)


def _money_axis(scale: MoneyScale, y: Any, plot_w: int) -> list[str]:
    parts = []
    for tick in scale.ticks:
        at = y(tick)
        zero = tick == 0 and scale.low < 0
        style = _ZERO_LINE if zero else _GRID_LINE
        parts.append(f'<line{style} x1="{LEFT}" x2="{LEFT + plot_w}" y1="{at:.1f}" y2="{at:.1f}"/>')
        parts.append(
            f'<text class="y-tick" x="{LEFT - 8}" y="{at + 4:.1f}" text-anchor="end">'
            f"{scale.label(tick)}</text>"
        )
    return parts


def _time_axis(start: datetime, end: datetime, zone: ZoneInfo, x: Any) -> list[str]:
    parts = []
    for tick in time_ticks(start, end, zone):
        at = x(tick.moment)
        parts.append(
            f'<line class="grid" x1="{at:.1f}" x2="{at:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM + 4}" '
            'stroke="#e4e4e4"/>'
        )
        texts = [text for text in (tick.time_label, tick.date_label) if text]
        # Centred under the tick, but never past the drawing's right edge ("Sat 5 Dec" is ~60 px).
        anchor = "end" if at + 36 > WIDTH else "middle"
        for row, text in enumerate(texts):
            parts.append(
                f'<text class="x-tick" data-moment="{tick.moment.isoformat()}" x="{at:.1f}" '
                f'y="{HEIGHT - BOTTOM + 18 + 14 * row}" text-anchor="{anchor}">'
                f"{escape(text)}</text>"
            )
    return parts


def _hover_columns(
    lines: Sequence[Line], start: datetime, bucket_hours: int, zone: ZoneInfo, x: Any, y: Any
) -> list[str]:
    """Per hour (or bucket) with a point: a transparent column that, hovered or focused, shows a
    guide line and a box with the hour and each line's value there."""
    origin = start.replace(hour=0, minute=0, second=0, microsecond=0)
    bucket = timedelta(hours=bucket_hours)
    columns: dict[int, list[tuple[Line, datetime, Decimal]]] = {}
    for line in lines:
        for moment, value in line.points:
            columns.setdefault((moment - origin) // bucket, []).append((line, moment, value))
    parts = []
    for index, entries in sorted(columns.items()):
        first = origin + index * bucket
        left = max(LEFT, x(first - timedelta(minutes=30)))
        right = min(WIDTH - RIGHT, x(first + bucket - timedelta(minutes=30)))
        moment = max(moment for _, moment, _ in entries)
        title = moment_label(moment, zone) + (f" (last of {bucket_hours} h)" if bucket_hours > 1 else "")
        guide = x(moment)
        marks = "".join(
            f'<circle cx="{guide:.1f}" cy="{y(value):.1f}" r="4" fill="white" stroke="{line.colour}" '
            'stroke-width="2"/>'
            for line, _, value in entries[:MOST_TIP_ROWS]
        )
        parts.append(
            f'<g class="hour" tabindex="0" data-moment="{moment.isoformat()}">'
            f'<rect class="hit" x="{left:.1f}" y="{TOP}" width="{max(right - left, 1):.1f}" '
            f'height="{HEIGHT - BOTTOM - TOP}" fill="transparent"/><g class="tip">'
            f'<line x1="{guide:.1f}" x2="{guide:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#555"/>'
            + marks
            + _tip_box(guide, title, [(line, value) for line, _, value in entries])
            + "</g></g>"
        )
    return parts


def _tip_box(guide: float, title: str, values: list[tuple[Line, Decimal]]) -> str:
    """The box beside the guide line (right of it, or left near the plot's right edge): the hour
    in bold, then each line's swatch, name and value, at most :data:`MOST_TIP_ROWS` of them (the
    box stays within the plot; the table and the CSV have every value)."""
    more = len(values) - MOST_TIP_ROWS
    values = values[:MOST_TIP_ROWS] if more > 0 else values
    rows = [f"{line.label}: {_dollars(value)}" for line, value in values]
    if more > 0:
        title += f" (first {MOST_TIP_ROWS} of {MOST_TIP_ROWS + more} lines)"
    width = 28 + _CHAR_WIDTH * max(len(text) for text in (title, *rows))
    height = 10 + 16 * (1 + len(rows))
    box_x = guide + 10 if guide + 10 + width <= WIDTH - RIGHT else max(2, guide - 10 - width)
    parts = [
        f'<rect x="{box_x:.1f}" y="{TOP + 4}" width="{width:.1f}" height="{height}" rx="4" fill="white" '
        'fill-opacity="0.95" stroke="#888"/>',
        f'<text x="{box_x + 8:.1f}" y="{TOP + 18}" font-weight="bold">{escape(title)}</text>',
    ]
    for row, ((line, _), text) in enumerate(zip(values, rows, strict=True), start=1):
        baseline = TOP + 18 + 16 * row
        parts.append(
            f'<line x1="{box_x + 6:.1f}" x2="{box_x + 20:.1f}" y1="{baseline - 4}" y2="{baseline - 4}" '
            f'stroke="{line.colour}" stroke-width="2.5"{_dash(line.dash)}/>'
            f'<text x="{box_x + 24:.1f}" y="{baseline}">{escape(text)}</text>'
        )
    return "".join(parts)


def _dollars(value: Decimal) -> str:
    """Exact dollars to the cent (sub-cent digits rounded half-even, as a ledger shows them)."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def _dash(dash: str) -> str:
    return f' stroke-dasharray="{dash}"' if dash else ""


def _contiguous(
    points: list[tuple[datetime, Decimal]], start: datetime, bucket_hours: int
) -> list[list[tuple[datetime, Decimal]]]:
    """Runs of points in consecutive buckets (hours when ``bucket_hours`` is 1; buckets line up with
    00:00 UTC of ``start``'s day)."""
    origin = start.replace(hour=0, minute=0, second=0, microsecond=0)

    def bucket(moment: datetime) -> int:
        return (moment - origin) // timedelta(hours=bucket_hours)

    segments: list[list[tuple[datetime, Decimal]]] = []
    for point in points:
        if segments and bucket(point[0]) - bucket(segments[-1][-1][0]) == 1:
            segments[-1].append(point)
        else:
            segments.append([point])
    return segments
