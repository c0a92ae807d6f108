"""The SVG chart: one line per account, broken where an hour is missing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from kalshi_provider.pipelines.ui.chart import render_svg, series_by_account

START = datetime(2026, 11, 24, 0, tzinfo=timezone.utc)
SVG = "{http://www.w3.org/2000/svg}"


def row(account, hour, cents):
    return {
        "account": account,
        "snapshot_hour": START + timedelta(hours=hour),
        "total_resting_order_value_cents": cents,
    }


def test_one_polyline_per_contiguous_run_per_account():
    rows = [row("a", 0, 100), row("a", 1, 200), row("a", 3, 300), row("b<script>", 0, 50)]
    svg = ET.fromstring(render_svg(series_by_account(rows), START, START + timedelta(hours=3)))
    lines = svg.findall(f"{SVG}polyline")
    assert [line.get("data-account") for line in lines] == ["a", "a", "b<script>"]  # escaped in XML
    assert [len(line.get("points").split()) for line in lines] == [2, 1, 1]
    # The highest value touches the top of the plot; zero would sit on the bottom edge.
    tops = [float(point.split(",")[1]) for point in lines[1].get("points").split()]
    assert tops == [20.0]


def test_empty_series_still_renders_axes():
    svg = ET.fromstring(render_svg({}, START, START + timedelta(hours=23)))
    assert svg.findall(f"{SVG}polyline") == []
    assert any("2026-11-24 00:00 UTC" in (text.text or "") for text in svg.findall(f"{SVG}text"))


def test_the_free_margin_chart_has_a_line_per_account_and_shard_and_a_zero_line_when_negative():
    from decimal import Decimal

    from kalshi_provider.pipelines.ui.chart import margin_by_shard, render_margin_svg

    def margins(account, hour, values):
        return [
            {
                "account": account,
                "exchange_index": index,
                "snapshot_hour": START + timedelta(hours=hour),
                "shard_balance_minus_resting_dollars": None if value is None else Decimal(value),
            }
            for index, value in values.items()
        ]

    rows = [
        *margins("a", 0, {0: "10", 1: "-5"}),
        *margins("a", 1, {0: "20", 1: None}),  # unknown: the shard's line breaks
        *margins("b&c", 1, {2: "-15.5"}),
    ]
    svg = ET.fromstring(render_margin_svg(margin_by_shard(rows), START, START + timedelta(hours=1)))
    lines = svg.findall(f"{SVG}polyline")
    assert [(line.get("data-margin-account"), line.get("data-shard")) for line in lines] == [
        ("a", "0"),
        ("a", "1"),
        ("b&c", "2"),
    ]
    assert [len(line.get("points").split()) for line in lines] == [2, 1, 1]
    assert [line.get("stroke-dasharray") for line in lines] == [None, "6 3", "2 3"]  # a pattern per shard
    (zero,) = svg.findall(f"{SVG}line")
    lowest = max(float(p.split(",")[1]) for p in lines[2].get("points").split())
    assert float(zero.get("y1")) < lowest == 20 + 290  # -$15.50 sits on the bottom edge, $0 above it
