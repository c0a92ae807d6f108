"""What the history says of each reading, as a pure function: no database."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from kalshi_provider.endpoints import BALANCE_ENDPOINT, TOTAL_ENDPOINT
from kalshi_provider.pipelines.warehouse.history import history_rows
from kalshi_provider.pipelines.warehouse.hour_rows import INSERTED, KEPT, SAME, StoredHour
from tests.pipelines.warehouse.conftest import BASE_HOUR, make_balance, make_load


def _stored(state: str, minute: int = 5, run: str = "run-1") -> StoredHour:
    return StoredHour("acct-1", BASE_HOUR, BASE_HOUR + timedelta(minutes=minute), run, state)


def _summary(rows: list[dict]) -> list[tuple]:
    return [(row["endpoint"], row["outcome"], row["became_hour_row"], row["note"]) for row in rows]


def test_a_held_hour_and_an_earlier_one_kept():
    load = make_load(breakdown={0: "1.5"}, balance=make_balance(500, breakdown={0: "5"}))
    kept = {TOTAL_ENDPOINT: _stored(INSERTED), BALANCE_ENDPOINT: _stored(KEPT, 1, "scheduled__x")}
    rows = history_rows(load.reading, BASE_HOUR, kept, {})
    assert _summary(rows) == [
        (TOTAL_ENDPOINT, "hour_row", True, None),
        (
            BALANCE_ENDPOINT,
            "earlier_kept",
            False,
            f"the hour holds an earlier observation ({(BASE_HOUR + timedelta(minutes=1)).isoformat()}, "
            "run scheduled__x)",
        ),
    ]
    assert json.loads(rows[0]["reading_json"]) == {
        "total_cents": 100,
        "breakdown": [[0, "1.500000"]],
        "breakdown_problem": None,
    }
    assert (rows[0]["total_resting_order_value_cents"], rows[1]["balance_cents"]) == (100, 500)


def test_an_earlier_try_of_the_same_load_still_holds_the_hour():
    load = make_load()
    (row,) = history_rows(load.reading, BASE_HOUR, {TOTAL_ENDPOINT: _stored(SAME)}, {})
    assert (row["outcome"], row["became_hour_row"]) == ("hour_row", True)


def test_late_refused_and_left_out_readings_say_why():
    late = make_load(balance_problem="no 'balance_dollars'")
    rows = history_rows(late.reading, BASE_HOUR, {}, {TOTAL_ENDPOINT: "after that hour ended"})
    assert _summary(rows) == [
        (TOTAL_ENDPOINT, "not_in_hour", False, "after that hour ended"),
        (BALANCE_ENDPOINT, "left_out", False, "no 'balance_dollars'"),
    ]
    refused = make_load(not_permitted="403: only for FCM members", problem=None)
    (row,) = history_rows(refused.reading, BASE_HOUR, {}, {})
    assert (row["outcome"], row["note"], row["total_resting_order_value_cents"]) == (
        "not_permitted",
        "403: only for FCM members",
        None,
    )


def test_a_left_out_breakdown_is_the_note_of_a_stored_total_and_amounts_stay_exact():
    load = make_load(problem="7 decimal places in shard 2", balance=make_balance(1, "0.010001"))
    rows = history_rows(load.reading, BASE_HOUR, {TOTAL_ENDPOINT: _stored(INSERTED)}, {})
    assert rows[0]["note"] == "7 decimal places in shard 2" and rows[0]["outcome"] == "hour_row"
    assert Decimal(json.loads(rows[1]["reading_json"])["balance_dollars"]) == Decimal("0.010001")
    assert rows[1]["outcome"] == "not_in_hour"  # nothing stored for the hour: no balance was given a row
