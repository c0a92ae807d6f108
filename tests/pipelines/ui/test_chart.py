"""The SVG panels: lines broken where an hour is missing, round ticks, times in the reader's zone,
a legend and a value box per hour, Kalshi's per-shard figures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from kalshi_provider.pipelines.ui.axes import money_scale, time_ticks
from kalshi_provider.pipelines.ui.chart import account_lines, legend, render_panel, shard_lines

START = datetime(2026, 11, 24, 0, tzinfo=timezone.utc)
UTC = ZoneInfo("UTC")
SVG = "{http://www.w3.org/2000/svg}"


def total(account, hour, cents):
    return {
        "account": account,
        "snapshot_hour": START + timedelta(hours=hour),
        "total_resting_order_value_cents": cents,
    }


def balance(account, hour, dollars):
    return {
        "account": account,
        "snapshot_hour": START + timedelta(hours=hour),
        "balance_dollars": Decimal(dollars),
    }


def panel(lines, hours, zone=UTC):
    return ET.fromstring(render_panel(lines, START, START + timedelta(hours=hours), zone=zone, aria="test"))


def texts(svg, css_class):
    return [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == css_class]


def test_one_polyline_per_contiguous_run_and_the_balance_dashed_in_the_accounts_colour():
    rows = [total("a", 0, 100), total("a", 1, 200), total("a", 3, 300), total("b<script>", 0, 50)]
    lines = account_lines(rows, [balance("a", 0, "4.5"), balance("a", 1, "5")])
    svg = panel(lines, 3)
    polylines = list(svg.iter(f"{SVG}polyline"))
    assert [(p.get("class"), p.get("data-account") or p.get("data-balance-account")) for p in polylines] == [
        ("series", "a"),
        ("series", "a"),
        ("balance", "a"),
        ("series", "b<script>"),  # escaped in the XML, read back as text
    ]
    assert [len(p.get("points").split()) for p in polylines] == [2, 1, 2, 1]
    assert polylines[2].get("stroke") == polylines[0].get("stroke") != polylines[3].get("stroke")
    assert polylines[2].get("stroke-dasharray") and not polylines[0].get("stroke-dasharray")


def test_money_ticks_are_round_steps_of_one_two_or_five():
    # The old axis split 0..max in four: $8,485 showed as $2,121, $4,243, $6,364, $8,485.
    assert money_scale([Decimal("8485")]).ticks == [Decimal(v) for v in (0, 2000, 4000, 6000, 8000, 10000)]
    assert money_scale([Decimal("-15.5"), Decimal("20")]).ticks == [Decimal(v) for v in (-20, -10, 0, 10, 20)]
    scale = money_scale([Decimal("0.37")])
    assert [scale.label(t) for t in scale.ticks] == ["$0.00", "$0.10", "$0.20", "$0.30", "$0.40"]
    svg = panel(account_lines([total("a", 0, 848_500)], []), 23)
    assert texts(svg, "y-tick") == ["$0", "$2,000", "$4,000", "$6,000", "$8,000", "$10,000"]


def test_the_time_axis_has_enough_labels_on_round_hours_of_the_readers_zone():
    utc = time_ticks(START, START + timedelta(hours=23), UTC)
    assert [t.time_label for t in utc] == [
        "00:00",
        "03:00",
        "06:00",
        "09:00",
        "12:00",
        "15:00",
        "18:00",
        "21:00",
    ]
    assert [t.date_label for t in utc][:2] == ["Tue 24 Nov", ""]  # the date where it changes
    # Kolkata is UTC+5:30: its round hours fall on half past a UTC hour.
    kolkata = time_ticks(START, START + timedelta(hours=23), ZoneInfo("Asia/Kolkata"))
    assert kolkata[0].moment == datetime(2026, 11, 24, 0, 30, tzinfo=timezone.utc)  # 06:00 there
    assert [t.time_label for t in kolkata][:2] == ["06:00", "09:00"]
    # 30 days: a label every third local midnight, across New York's change of clocks (1 Nov 2026).
    york = ZoneInfo("America/New_York")
    month = time_ticks(
        datetime(2026, 10, 20, tzinfo=timezone.utc), datetime(2026, 11, 19, tzinfo=timezone.utc), york
    )
    assert 8 <= len(month) <= 10 and all(t.moment.astimezone(york).hour == 0 for t in month)
    assert {t.moment.astimezone(timezone.utc).hour for t in month} == {4, 5}  # EDT, then EST


def test_a_value_box_per_hour_names_each_line_and_its_exact_value():
    lines = account_lines([total("a", 0, 123456), total("a", 1, 5)], [balance("a", 1, "4250.505")])
    svg = panel(lines, 1, ZoneInfo("America/New_York"))
    hours = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "hour"]
    assert [g.get("data-moment") for g in hours] == [
        START.isoformat(),
        (START + timedelta(hours=1)).isoformat(),
    ]
    assert [t.text for t in hours[1].iter(f"{SVG}text")] == [
        "Mon 23 Nov 2026 20:00 EST",
        "a · resting order value: $0.05",
        "a · balance: $4,250.50",  # half-even to the cent
    ]


def test_kalshis_per_shard_figures_each_in_its_own_colour_and_pattern_with_a_legend():
    def shard_row(account, hour, index, dollars):
        return {
            "account": account,
            "exchange_index": index,
            "snapshot_hour": START + timedelta(hours=hour),
            "shard_balance_dollars": None if dollars is None else Decimal(dollars),
        }

    rows = [
        shard_row("a", 0, 0, "10"),
        shard_row("a", 0, 1, "-5"),
        shard_row("a", 1, 0, "20"),
        shard_row("a", 1, 1, None),  # unknown: the shard's line breaks
        shard_row("b&c", 1, 2, "-15.5"),
    ]
    lines = shard_lines(rows, "shard_balance_dollars")
    assert [line.label for line in lines] == ["a · shard 0", "a · shard 1", "b&c · shard 2"]
    assert len({line.colour for line in lines}) == len({line.dash for line in lines}) == 3
    svg = panel(lines, 1)
    polylines = list(svg.iter(f"{SVG}polyline"))
    assert [(p.get("data-shard-account"), p.get("data-shard")) for p in polylines] == [
        ("a", "0"),
        ("a", "1"),
        ("b&c", "2"),
    ]
    assert [len(p.get("points").split()) for p in polylines] == [2, 1, 1]
    (zero,) = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "grid zero"]
    lowest = max(float(p.split(",")[1]) for p in polylines[2].get("points").split())
    assert float(zero.get("y1")) < lowest  # -$15.50 sits below the dashed $0 line
    items = ET.fromstring(legend(lines)).findall("li")
    assert ["".join(item.itertext()).strip() for item in items] == [
        "a · shard 0",
        "a · shard 1",
        "b&c · shard 2",
    ]
    assert [item.find("svg/line").get("stroke-dasharray") for item in items] == [
        line.dash or None for line in lines
    ]


def test_an_empty_panel_still_has_axes_and_says_it_has_no_line():
    svg = panel([], 23)
    assert list(svg.iter(f"{SVG}polyline")) == []
    assert texts(svg, "y-tick")[0] == "$0.00" and texts(svg, "x-tick")[0] == "00:00"
    assert "No line" in legend([])


def test_a_value_box_lists_at_most_fifteen_lines_and_says_how_many_there_are():
    """Twenty accounts' boxes would overflow the plot (and the page): the first fifteen, said so."""
    rows = [total(f"acct_{n:02d}", 0, 100 * n) for n in range(20)]
    svg = panel(account_lines(rows, []), 1)
    (hour,) = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "hour"]
    lines = [t.text for t in hour.iter(f"{SVG}text")]
    assert lines[0].endswith("(first 15 of 20 lines)") and len(lines) == 16
    assert lines[-1] == "acct_14 · resting order value: $14.00"
