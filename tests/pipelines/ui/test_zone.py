"""The zone named in the chart's address: used when this server knows it, else UTC, said aloud."""

from __future__ import annotations

import pytest

from kalshi_provider.pipelines.ui.zone import shown_zone


def test_a_known_zone_is_shown_and_where_it_came_from_is_said():
    assert shown_zone("America/New_York", "airflow").name == "America/New_York"
    assert "chosen in your Airflow UI" in shown_zone("America/New_York", "airflow").explanation
    assert "browser's zone" in shown_zone("Asia/Kolkata", "browser").explanation
    assert shown_zone(None, None).name == "UTC"


@pytest.mark.parametrize(
    "asked",
    ["Mars/Olympus_Mons", "../../../etc/passwd", "/usr/share/zoneinfo/UTC", "America/New_York\x00", "a" * 64],
)
def test_a_zone_this_server_does_not_know_falls_back_to_utc_saying_so(asked):
    shown = shown_zone(asked, "airflow")
    assert shown.name == "UTC"
    assert shown.explanation.startswith("UTC: this server does not know the zone")
