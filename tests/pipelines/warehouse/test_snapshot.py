"""Validation of Snapshot and BreakdownEntry: refuse doubtful values before any SQL runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_provider.exceptions import KalshiError
from kalshi_provider.pipelines.warehouse import BreakdownEntry, InvalidSnapshotError, Snapshot

HOUR = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def _snapshot(**overrides):
    values = {
        "account": "acct",
        "snapshot_hour": HOUR,
        "total_resting_order_value_cents": 1,
        "observed_at": HOUR,
        "dag_run_id": None,
    }
    values.update(overrides)
    return Snapshot(**values)


def test_datetimes_are_normalised_to_utc():
    plus_two = timezone(timedelta(hours=2))
    snapshot = _snapshot(
        snapshot_hour=datetime(2026, 3, 1, 14, tzinfo=plus_two),
        observed_at=datetime(2026, 3, 1, 14, 7, tzinfo=plus_two),
    )
    assert snapshot.snapshot_hour == HOUR and snapshot.snapshot_hour.tzinfo == timezone.utc
    assert snapshot.observed_at == HOUR + timedelta(minutes=7)
    assert snapshot.observed_at.tzinfo == timezone.utc
    assert snapshot.key == ("acct", HOUR)


@pytest.mark.parametrize("field", ["snapshot_hour", "observed_at"])
def test_naive_datetimes_are_refused(field):
    with pytest.raises(InvalidSnapshotError, match=f"{field} must be timezone-aware"):
        _snapshot(**{field: datetime(2026, 3, 1, 12)})


@pytest.mark.parametrize(
    "hour",
    [
        HOUR + timedelta(minutes=1),
        HOUR + timedelta(seconds=1),
        HOUR + timedelta(microseconds=1),
        datetime(2026, 3, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
)
def test_snapshot_hour_must_be_on_a_utc_hour(hour):
    with pytest.raises(InvalidSnapshotError, match="exactly on a UTC hour"):
        _snapshot(snapshot_hour=hour)


@pytest.mark.parametrize("cents", [0, 1, 2**63 - 1])
def test_cents_in_range_are_accepted(cents):
    assert _snapshot(total_resting_order_value_cents=cents).total_resting_order_value_cents == cents


@pytest.mark.parametrize("cents", [-1, 2**63, True, False, 1.0, "100", Decimal(1), None])
def test_bad_cents_are_refused(cents):
    with pytest.raises(InvalidSnapshotError, match="total_resting_order_value_cents"):
        _snapshot(total_resting_order_value_cents=cents)


@pytest.mark.parametrize("account", ["", None, 7])
def test_account_must_be_a_non_empty_string(account):
    with pytest.raises(InvalidSnapshotError, match="account"):
        _snapshot(account=account)


def test_dag_run_id_must_be_text_or_none():
    with pytest.raises(InvalidSnapshotError, match="dag_run_id"):
        _snapshot(dag_run_id=42)


def test_errors_belong_to_the_provider_family_and_are_value_errors():
    with pytest.raises(ValueError) as caught:
        _snapshot(total_resting_order_value_cents=-1)
    assert isinstance(caught.value, KalshiError)


def test_breakdown_becomes_a_tuple_and_rejects_other_items():
    entries = [BreakdownEntry(0, Decimal("1.5")), BreakdownEntry(1, Decimal("2"))]
    assert _snapshot(breakdown=entries).breakdown == tuple(entries)
    with pytest.raises(InvalidSnapshotError, match="BreakdownEntry"):
        _snapshot(breakdown=[{"exchange_index": 0, "balance": "1.5"}])
    with pytest.raises(InvalidSnapshotError, match="BreakdownEntry"):
        _snapshot(breakdown=5)


def test_breakdown_refuses_a_repeated_exchange_index():
    with pytest.raises(InvalidSnapshotError, match="repeats an exchange_index"):
        _snapshot(breakdown=(BreakdownEntry(0, Decimal(1)), BreakdownEntry(0, Decimal(2))))


@pytest.mark.parametrize(
    ("given_value", "stored"),
    [
        (Decimal("1.5"), Decimal("1.500000")),
        ("0.000001", Decimal("0.000001")),
        ("-12.340000", Decimal("-12.340000")),
        (Decimal("1.2300000000"), Decimal("1.230000")),  # trailing zeros lose nothing
        (7, Decimal("7.000000")),
        ("999999999999999999.999999", Decimal("999999999999999999.999999")),
    ],
)
def test_balances_are_exact(given_value, stored):
    balance = BreakdownEntry(0, given_value).balance_dollars
    assert balance == stored and balance.as_tuple().exponent == -6


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Decimal("0.0000001"), "more than 6 decimal places"),
        ("1.2345678", "more than 6 decimal places"),
        (0.1, "must be a Decimal"),
        (True, "must be a Decimal"),
        ("abc", "not a decimal number"),
        (Decimal("NaN"), "must be finite"),
        (Decimal("Infinity"), "must be finite"),
        (Decimal("1e18"), r"does not fit Numeric\(24, 6\)"),
    ],
)
def test_inexact_or_unstorable_balances_are_refused(bad, message):
    with pytest.raises(InvalidSnapshotError, match=message):
        BreakdownEntry(0, bad)


@pytest.mark.parametrize("index", [True, 1.0, "1", 2**31, -(2**31) - 1])
def test_exchange_index_must_be_an_int32(index):
    with pytest.raises(InvalidSnapshotError, match="exchange_index"):
        BreakdownEntry(index, Decimal(1))


@given(st.decimals(min_value=-(10**17), max_value=10**17, places=6, allow_nan=False))
def test_any_six_place_balance_is_kept_unchanged(value):
    assert BreakdownEntry(0, value).balance_dollars == value


@given(st.decimals(min_value=-1000, max_value=1000, places=9, allow_nan=False))
def test_a_balance_is_refused_exactly_when_rounding_would_change_it(value):
    if value == value.quantize(Decimal("0.000001")):
        assert BreakdownEntry(0, value).balance_dollars == value
    else:
        with pytest.raises(InvalidSnapshotError):
            BreakdownEntry(0, value)
