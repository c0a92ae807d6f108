"""The history: one row per reading a load was given, and what became of it. Only ever inserted.

Each answer (the total, the balance) gets its row whether or not it became the hour's row: its
values as JSON with exact decimal strings, its outcome, and a note saying why when there is
something to say. Nothing here updates or deletes a history row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from kalshi_provider.endpoints import (
    BALANCE_ENDPOINT,
    STATUS_ENDPOINT,
    SUBACCOUNT_BALANCES_ENDPOINT,
    TOTAL_ENDPOINT,
)
from kalshi_provider.pipelines.warehouse.bounds import PROBLEM_LENGTH, READING_JSON_LENGTH
from kalshi_provider.pipelines.warehouse.hour_rows import StoredHour, insert_rows
from kalshi_provider.pipelines.warehouse.warehouse_errors import InvalidSnapshotError
from kalshi_provider.readings import AccountReading

#: What became of a reading, as its history row says.
HOUR_ROW = "hour_row"  # it is the hour's row (at the load's commit)
EARLIER_KEPT = "earlier_kept"  # the hour holds an earlier observation of the same endpoint
NOT_IN_HOUR = "not_in_hour"  # observed outside the run's hour, or too late: not stored for it
NOT_PERMITTED = "not_permitted"  # Kalshi refused the call: the total (no FCM member), the
# subaccounts (a key restricted to one subaccount)
LEFT_OUT = "left_out"  # Kalshi's answer was not its documented body: nothing to store
#: Kalshi's exchange said it was not active (maintenance) after a call failed: nothing was read.
#: The row's endpoint is ``/exchange/status``, its note the reason and Kalshi's estimated resume
#: time, its reading_json ``{"reason", "observed_at", "estimated_resume_time"}``.
EXCHANGE_PAUSED = "exchange_paused"


@dataclass(frozen=True)
class Load:
    """Who wrote the history rows, and when."""

    dag_run_id: str | None
    dag_id: str | None
    try_number: int | None
    recorded_at: datetime


def previous_total_outcome(history: Table, reading: AccountReading) -> ColumnElement[Any]:
    """The outcome of the account's latest reading of the total before this one (a scalar subquery):
    a refusal is reported once, the first time, or the first after the account had FCM access."""
    return previous_outcome(history, reading.account, TOTAL_ENDPOINT, reading.observed_at)


def previous_outcome(history: Table, account: str, endpoint: str, before: datetime) -> ColumnElement[Any]:
    """The outcome of the account's latest reading of ``endpoint`` observed before ``before`` (a
    scalar subquery), so a refusal is reported once."""
    return (
        select(history.c.outcome)
        .where(
            history.c.account == account,
            history.c.endpoint == endpoint,
            history.c.observed_at < before,
        )
        .order_by(history.c.observed_at.desc())
        .limit(1)
        .scalar_subquery()
    )


def newly_not_permitted(previous_outcome: str | None) -> bool:
    """Whether a refusal is news: the account's previous reading was permitted, or there was none."""
    return previous_outcome != NOT_PERMITTED


def insert_history(
    conn: Connection,
    history: Table,
    reading: AccountReading,
    hour: datetime,
    kept: Mapping[str, StoredHour | None],
    late: Mapping[str, str],
    load: Load,
) -> None:
    """Insert one history row per reading in ``reading``, in one statement.

    :param kept: Per endpoint, what the hour's table held after the write (None: nothing stored).
    :param late: Per endpoint, why its reading was not stored for the hour.
    """
    rows = [
        row
        | {
            "dag_run_id": load.dag_run_id,
            "dag_id": load.dag_id,
            "fetch_try_number": reading.try_number,
            "load_try_number": load.try_number,
            "recorded_at": load.recorded_at,
            "reading_id": str(uuid.uuid4()),
        }
        for row in history_rows(reading, hour, kept, late)
    ]
    insert_rows(conn, history, rows)


def history_rows(
    reading: AccountReading, hour: datetime, kept: Mapping[str, StoredHour | None], late: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The history rows of ``reading`` without who wrote them: its values, and what became of it."""
    if reading.exchange_paused is not None:
        return [exchange_paused_row(reading, hour)]
    value = reading.resting_order_value
    if value is None:
        outcome, note, values = NOT_PERMITTED, reading.not_permitted, {"not_permitted": reading.not_permitted}
    else:
        outcome, note = _outcome(kept.get(TOTAL_ENDPOINT), late.get(TOTAL_ENDPOINT))
        note = note or value.breakdown_problem
        values = {
            "total_cents": value.total_cents,
            "breakdown": [[entry.exchange_index, str(entry.dollars)] for entry in value.breakdown],
            "breakdown_problem": value.breakdown_problem,
        }
    rows = [
        _row(reading, TOTAL_ENDPOINT, reading.observed_at, hour, outcome, note, values)
        | {"total_resting_order_value_cents": None if value is None else value.total_cents}
    ]
    if reading.balance is not None:
        found = reading.balance.value
        if found is None:
            outcome, note, values = LEFT_OUT, reading.balance.problem, {"problem": reading.balance.problem}
        else:
            outcome, note = _outcome(kept.get(BALANCE_ENDPOINT), late.get(BALANCE_ENDPOINT))
            note = note or found.breakdown_problem
            values = found.to_xcom()
        rows.append(
            _row(reading, BALANCE_ENDPOINT, reading.balance.observed_at, hour, outcome, note, values)
            | {
                "balance_cents": None if found is None else found.balance_cents,
                "portfolio_value_cents": None if found is None else found.portfolio_value_cents,
            }
        )
    if reading.subaccounts is not None:
        rows.append(_subaccounts_row(reading, hour, kept, late))
    return rows


def exchange_paused_row(reading: AccountReading, hour: datetime) -> dict[str, Any]:
    """The one history row of a fetch that stopped because Kalshi's exchange was paused."""
    pause = reading.exchange_paused
    assert pause is not None
    return _row(
        reading, STATUS_ENDPOINT, pause.observed_at, hour, EXCHANGE_PAUSED, pause.describe(), pause.to_xcom()
    )


def _subaccounts_row(
    reading: AccountReading, hour: datetime, kept: Mapping[str, StoredHour | None], late: Mapping[str, str]
) -> dict[str, Any]:
    """The subaccounts' history row: they are stored with the hour's balance row, or not at all."""
    found = reading.subaccounts
    assert found is not None
    if found.not_permitted is not None:
        outcome, note, values = NOT_PERMITTED, found.not_permitted, {"not_permitted": found.not_permitted}
    elif found.value is None:
        outcome, note, values = LEFT_OUT, found.problem, {"problem": found.problem}
    else:
        values = {"subaccount_balances": found.value.to_xcom()}
        stored_with = kept.get(SUBACCOUNT_BALANCES_ENDPOINT)
        if SUBACCOUNT_BALANCES_ENDPOINT in late:
            outcome, note = NOT_IN_HOUR, late[SUBACCOUNT_BALANCES_ENDPOINT]
        elif stored_with is None:
            outcome = LEFT_OUT
            note = (
                "Kalshi's answer names no exchange_index, which the table keys on"
                if any(row.exchange_index is None for row in found.value.rows)
                else "stored with the hour's balance row, and this reading's balance was not stored"
            )
        else:
            outcome, note = _outcome(stored_with, None)
    return _row(reading, SUBACCOUNT_BALANCES_ENDPOINT, found.observed_at, hour, outcome, note, values)


def _outcome(kept: StoredHour | None, late: str | None) -> tuple[str, str | None]:
    if late is not None or kept is None:
        return NOT_IN_HOUR, late
    if kept.held:
        return HOUR_ROW, None
    return EARLIER_KEPT, (
        f"the hour holds an earlier observation ({kept.observed_at.isoformat()}, run {kept.dag_run_id})"
    )


def _row(
    reading: AccountReading,
    endpoint: str,
    observed_at: datetime,
    hour: datetime,
    outcome: str,
    note: str | None,
    values: dict[str, Any],
) -> dict[str, Any]:
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    if len(text) > READING_JSON_LENGTH:
        raise InvalidSnapshotError(
            f"the reading of {endpoint} is {len(text)} characters as JSON; its history column holds "
            f"{READING_JSON_LENGTH}"
        )
    return {
        "account": reading.account,
        "endpoint": endpoint,
        "source": reading.source,
        "observed_at": observed_at,
        "snapshot_hour": hour,
        "outcome": outcome,
        "became_hour_row": outcome == HOUR_ROW,
        "total_resting_order_value_cents": None,
        "balance_cents": None,
        "portfolio_value_cents": None,
        "reading_json": text,
        "note": None if note is None else note[:PROBLEM_LENGTH],
    }
