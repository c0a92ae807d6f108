"""The one reading record: exact values only, and a lossless, self-checking trip through XCom."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from kalshi_provider.readings import (
    AccountReading,
    InvalidReadingError,
    RestingOrderValue,
    ShardAmount,
)

OBSERVED = datetime(2026, 9, 1, 12, 0, 7, 123456, tzinfo=timezone.utc)


def _reading(**value) -> AccountReading:
    fields = {"total_cents": 5000, "breakdown": (ShardAmount(0, "30.5"), ShardAmount(2, Decimal("19.5")))}
    fields.update(value)
    return AccountReading("kalshi_default", OBSERVED, RestingOrderValue(**fields))


def test_xcom_round_trip_is_lossless_through_json():
    """What Airflow does between the fetch and the load task: JSON in its metadata DB."""
    reading = _reading(breakdown_problem=None)
    payload = json.loads(json.dumps(reading.to_xcom()))
    assert AccountReading.from_xcom(payload) == reading
    assert payload["resting_order_value"]["breakdown"] == [
        {"exchange_index": 0, "dollars": "30.500000"},
        {"exchange_index": 2, "dollars": "19.500000"},
    ]


def test_a_kept_total_with_a_dropped_breakdown_survives_the_trip():
    reading = _reading(breakdown=(), breakdown_problem="balance '1e999' is not storable")
    assert AccountReading.from_xcom(json.loads(json.dumps(reading.to_xcom()))) == reading


def test_observed_at_is_kept_in_utc():
    plus_two = timezone(timedelta(hours=2))
    reading = AccountReading("a", OBSERVED.astimezone(plus_two), RestingOrderValue(1))
    assert reading.observed_at == OBSERVED and reading.observed_at.tzinfo == timezone.utc
    assert reading.to_xcom()["observed_at"] == "2026-09-01T12:00:07.123456+00:00"


@pytest.mark.parametrize("cents", [-1, 2**63, True, 12.0, "100", None])
def test_totals_are_whole_cents_a_bigint_holds(cents):
    with pytest.raises(InvalidReadingError, match="total_resting_order_value"):
        RestingOrderValue(cents)


@pytest.mark.parametrize(
    ("dollars", "message"),
    [
        ("1.2345678", "more than 6 decimal places"),
        (0.1, "must be a decimal string"),
        ("NaN", "finite"),
        ("1e18", r"does not fit Numeric\(24, 6\)"),
        ("x" * 65, "at most 64 characters"),
    ],
)
def test_shard_amounts_are_exact_or_refused(dollars, message):
    with pytest.raises(InvalidReadingError, match=message):
        ShardAmount(0, dollars)


def test_a_repeated_exchange_index_is_refused():
    with pytest.raises(InvalidReadingError, match="repeats an exchange_index"):
        RestingOrderValue(1, (ShardAmount(1, "1"), ShardAmount(1, "2")))


def _tampered(change) -> dict:
    payload = _reading().to_xcom()
    change(payload)
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "not a reading made by AccountReading.to_xcom"),
        ("kalshi_default", "not a reading made by AccountReading.to_xcom"),
        (_tampered(lambda p: p.pop("account")), "not a reading made by AccountReading.to_xcom"),
        (_tampered(lambda p: p["resting_order_value"].pop("breakdown")), "not a reading made by"),
        (_tampered(lambda p: p.update(account="")), "account must be a non-empty"),
        (_tampered(lambda p: p.update(observed_at="2026-09-01T12:00:00")), "timezone-aware"),
        (_tampered(lambda p: p["resting_order_value"].update(total_cents=1.5)), "whole number of cents"),
        (
            _tampered(lambda p: p["resting_order_value"]["breakdown"][0].update(dollars="0.0000001")),
            "more than 6 decimal places",
        ),
    ],
)
def test_from_xcom_checks_what_it_is_given(payload, message):
    """An XCom can be edited by hand or come from an older version: it is re-checked, not trusted."""
    with pytest.raises(InvalidReadingError, match=message):
        AccountReading.from_xcom(payload)
