"""What the warehouse's columns hold, and the check of a reading against them before anything of it
is written: a value that does not fit fails the load naming the value and the column, instead of
an engine's error half way (or MySQL cutting it short). Kalshi's formats are the reading's own
check; longer notes are cut, not refused (the whole text is in the load's log).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kalshi_provider.pipelines.warehouse.warehouse_errors import InvalidSnapshotError
from kalshi_provider.readings import AccountReading

#: Dollars are NUMERIC(24, 6): six decimal places (as Kalshi's fixed-point strings carry), and
#: 18 digits before the point.
DOLLAR_SCALE = 6
DOLLAR_PRECISION = 24
DOLLAR_QUANTUM = Decimal(1).scaleb(-DOLLAR_SCALE)
#: Every stored dollar amount is smaller than this in magnitude.
MAX_DOLLARS = Decimal(10) ** (DOLLAR_PRECISION - DOLLAR_SCALE)
#: BIGINT (cents, Unix seconds) and INTEGER (exchange shards, try numbers).
MIN_BIGINT, MAX_BIGINT = -(2**63), 2**63 - 1
MAX_INTEGER = 2**31 - 1
#: Longest text the key columns hold (the account, the DAG id; VARCHAR on MySQL/MariaDB): Airflow's
#: own limit for connection, DAG and run ids (ID_LEN).
ID_LENGTH = 250
#: Longest breakdown problem, refusal or note stored; a longer one is cut.
PROBLEM_LENGTH = 1000
#: Longest base URL a history row names as its source.
SOURCE_LENGTH = 2048
#: Longest reading a history row holds as JSON: a reading comes from answers of at most 64 KiB,
#: and its JSON is of the same order; MySQL/MariaDB get MEDIUMTEXT for it (TEXT holds 64 KiB).
READING_JSON_LENGTH = 1024 * 1024


def unstorable(reading: AccountReading, *, dag_id: str | None, try_number: int | None) -> list[str]:
    """What of ``reading`` (and the load's own values) the columns cannot hold, one line each."""
    problems = []
    for what, text, longest in (
        ("the account", reading.account, ID_LENGTH),
        ("dag_id", dag_id, ID_LENGTH),
        ("the source", reading.source, SOURCE_LENGTH),
    ):
        if text is not None and len(text) > longest:
            problems.append(f"{what} has {len(text)} characters; its column holds {longest}")
    for what, number, low, high in _numbers(reading, try_number):
        if number is not None and not low <= number <= high:
            problems.append(f"{what} {number} is outside {low}..{high}, what its column holds")
    for what, amount in _amounts(reading):
        if abs(amount) >= MAX_DOLLARS or amount != amount.quantize(DOLLAR_QUANTUM):
            problems.append(
                f"{what} {amount} does not fit NUMERIC({DOLLAR_PRECISION}, {DOLLAR_SCALE}) exactly (less "
                f"than 10**{DOLLAR_PRECISION - DOLLAR_SCALE} in magnitude, {DOLLAR_SCALE} decimal places)"
            )
    return problems


def refuse_unstorable(reading: AccountReading, *, dag_id: str | None, try_number: int | None) -> None:
    """Raise :class:`InvalidSnapshotError` naming every value of the load its columns cannot hold."""
    problems = unstorable(reading, dag_id=dag_id, try_number=try_number)
    if problems:
        raise InvalidSnapshotError(
            f"Nothing was stored for {reading.account[:ID_LENGTH]!r}: the warehouse's columns cannot hold "
            + "; ".join(problems)
        )


def _numbers(reading: AccountReading, try_number: int | None) -> list[tuple[str, Any, int, int]]:
    found: list[tuple[str, Any, int, int]] = [
        ("the fetch's try number", reading.try_number, 0, MAX_INTEGER),
        ("the load's try number", try_number, 0, MAX_INTEGER),
    ]
    value = reading.resting_order_value
    if value is not None:
        found.append(("the total's cents", value.total_cents, MIN_BIGINT, MAX_BIGINT))
        found += [("an exchange_index", shard.exchange_index, 0, MAX_INTEGER) for shard in value.breakdown]
    balance = reading.balance.value if reading.balance is not None else None
    if balance is not None:
        for what, number in (
            ("the balance's cents", balance.balance_cents),
            ("the portfolio value's cents", balance.portfolio_value_cents),
            ("the balance's updated_ts", balance.updated_ts),
        ):
            found.append((what, number, MIN_BIGINT, MAX_BIGINT))
        found += [("an exchange_index", shard.exchange_index, 0, MAX_INTEGER) for shard in balance.breakdown]
    listed = reading.subaccounts.value if reading.subaccounts is not None else None
    for row in listed.rows if listed is not None else ():
        found.append(
            (f"subaccount {row.subaccount_number}'s updated_ts", row.updated_ts, MIN_BIGINT, MAX_BIGINT)
        )
        found.append(("a subaccount's exchange_index", row.exchange_index, 0, MAX_INTEGER))
    return found


def _amounts(reading: AccountReading) -> list[tuple[str, Decimal]]:
    found = []
    value = reading.resting_order_value
    if value is not None:
        found += [(f"shard {s.exchange_index}'s resting order value", s.dollars) for s in value.breakdown]
    balance = reading.balance.value if reading.balance is not None else None
    if balance is not None:
        found.append(("the balance's dollars", balance.balance_dollars))
        found += [(f"shard {s.exchange_index}'s balance", s.dollars) for s in balance.breakdown]
    listed = reading.subaccounts.value if reading.subaccounts is not None else None
    for row in listed.rows if listed is not None else ():
        found.append((f"subaccount {row.subaccount_number}'s balance", row.balance_dollars))
    return found
