"""Freshness and quality rules for the hourly tables: missing hours, implausible jumps, left-out
breakdowns, a total without a balance (a key without FCM access is not missing totals).

The rules read the warehouse only and return problems the check task turns into a failure, so
Airflow's failure handling (UI, notifiers) alerts. Every outside text in the report (an account id
from the params, Kalshi's reason) goes through :func:`shown`: one bounded line without live markup.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise
from typing import Any


@dataclass(frozen=True)
class QualityRules:
    window_hours: int = 24
    #: Minutes after an hour starts before that hour's row is expected (the load runs at :00).
    grace_minutes: int = 15
    #: Largest allowed change from one hour to the next, either way: the larger of the two values
    #: may be at most ``1 + max_change_percent / 100`` times the smaller (500 %: a rise to more than
    #: 6x, or a fall to less than 1/6). A ratio, because a fall measured as ``|new - old| / old``
    #: never exceeds 100 %, so a drop to $0 would never be flagged.
    max_change_percent: float = 500.0

    def __post_init__(self) -> None:
        if not 1 <= self.window_hours <= 24 * 90:
            raise ValueError(f"window_hours must be 1 to 2160, got {self.window_hours}")
        if not 0 <= self.grace_minutes < 60:
            raise ValueError(f"grace_minutes must be 0 to 59, got {self.grace_minutes}")
        if self.max_change_percent <= 0:
            raise ValueError(f"max_change_percent must be positive, got {self.max_change_percent}")


#: Most characters of one outside text an alert shows; the whole of a breakdown's reason is in the
#: warehouse and the load task's log.
SHOWN_LENGTH = 200


def shown(text: str) -> str:
    """Outside text as an alert may carry it: one line of at most ``SHOWN_LENGTH`` characters, with
    no markup a notification would act on.

    Notifiers pass the report on unchanged: Slack reads ``<!channel>``, ``<https://…|label>`` and
    ``&`` entities in a message's text, and an HTML mail reads tags. Slack's escaping of ``&``, ``<``
    and ``>`` (HTML's too) leaves both only text. Line breaks, other control and format characters
    (a bidi override, say) become spaces, so a text cannot start a line of its own in the report.
    """
    flat = " ".join("".join(" " if unicodedata.category(char)[0] == "C" else char for char in text).split())
    if len(flat) > SHOWN_LENGTH:
        flat = flat[: SHOWN_LENGTH - 1] + "…"
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Problem:
    """One problem of one account. ``account`` and ``reason`` come from outside (the DAG's params,
    Kalshi's answers); ``detail`` is this module's own text."""

    account: str
    # "no_rows" | "missing_hours" | "jump" | "breakdown_left_out" | "balance_missing"
    # | "balance_breakdown_left_out" | "balance_below_floor" | "subaccount_gone" | "subaccount_new";
    # a notice (no alert): "kalshi_maintenance"
    kind: str
    detail: str
    reason: str | None = None
    #: The hours a missing-hours problem is about (``no_rows``, ``missing_hours``), for
    #: :func:`separate_maintenance`.
    hours: tuple[datetime, ...] = ()

    def __str__(self) -> str:
        """The problem as the report shows it: one line, its outside texts through :func:`shown`."""
        because = "" if self.reason is None else f": {shown(self.reason)}"
        return f"{shown(self.account)}: {self.detail}{because}"


def expected_hours(now: datetime, rules: QualityRules) -> list[datetime]:
    """The hours in the window whose rows should exist by ``now``."""
    last = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    if now - last < timedelta(minutes=rules.grace_minutes):
        last -= timedelta(hours=1)
    return [last - timedelta(hours=offset) for offset in reversed(range(rules.window_hours))]


def find_problems(
    rows: Iterable[dict[str, Any]],
    accounts: Iterable[str],
    now: datetime,
    rules: QualityRules,
    balances: Iterable[dict[str, Any]] = (),
) -> list[Problem]:
    """Check each account's rows in the window: every expected hour present, no big jumps, every
    hour's breakdown stored (rows carry ``breakdown_problem`` when read with the breakdown), and
    with ``balances`` (``read_balances`` rows) every hour's balance.

    An hour counts as present with a total, or with a balance row saying Kalshi did not permit
    the total (a key without FCM access). Hours before an account's first row in the window are
    not counted as missing, so a new account or a new deployment is not reported for the time
    before it started; likewise for balances before an account's first balance row.
    """
    hours = expected_hours(now, rules)
    by_account: dict[str, dict[datetime, int]] = {account: {} for account in accounts}
    left_out: dict[str, dict[datetime, str]] = {account: {} for account in by_account}
    balance_hours: dict[str, set[datetime]] = {account: set() for account in by_account}
    not_permitted: dict[str, set[datetime]] = {account: set() for account in by_account}
    balance_left_out: dict[str, dict[datetime, str]] = {account: {} for account in by_account}
    for row in rows:
        if row["account"] in by_account:
            by_account[row["account"]][row["snapshot_hour"]] = row["total_resting_order_value_cents"]
            if row.get("breakdown_problem"):
                left_out[row["account"]][row["snapshot_hour"]] = row["breakdown_problem"]
    for row in balances:
        if row["account"] in by_account:
            balance_hours[row["account"]].add(row["snapshot_hour"])
            if row.get("total_refusal_reason"):
                not_permitted[row["account"]].add(row["snapshot_hour"])
            if row.get("breakdown_problem"):
                balance_left_out[row["account"]][row["snapshot_hour"]] = row["breakdown_problem"]
    problems: list[Problem] = []
    for account, values in by_account.items():
        counted = set(values) | not_permitted[account]
        present = [hour for hour in hours if hour in counted]
        if not present:
            problems.append(
                Problem(
                    account, "no_rows", f"no rows in the last {rules.window_hours} hours", hours=tuple(hours)
                )
            )
            continue
        missing = [hour for hour in hours if hour >= present[0] and hour not in counted]
        if missing:
            problems.append(
                Problem(
                    account, "missing_hours", f"missing hours {_hour_list(missing)}", hours=tuple(missing)
                )
            )
        problems.extend(_jumps(account, [hour for hour in present if hour in values], values, rules))
        problems.extend(
            _left_out(account, "breakdown_left_out", "breakdown left out (total stored)", left_out, hours)
        )
        with_balance = sorted(hour for hour in hours if hour in balance_hours[account])
        if with_balance:
            unbalanced = [
                hour for hour in present if hour >= with_balance[0] and hour not in balance_hours[account]
            ]
            if unbalanced:
                problems.append(
                    Problem(account, "balance_missing", f"no balance for hours {_hour_list(unbalanced)}")
                )
        problems.extend(
            _left_out(
                account,
                "balance_breakdown_left_out",
                "balance breakdown left out (balance stored)",
                balance_left_out,
                hours,
            )
        )
    return problems


def subaccount_changes(
    subaccount_rows: Iterable[dict[str, Any]], accounts: Iterable[str], now: datetime, rules: QualityRules
) -> list[Problem]:
    """A subaccount listed in an hour and absent from the next hour that lists any (``gone``), or
    listed for the first time after an hour that listed others (``new``): a firm's money moved to
    or from a subaccount nobody watches. ``subaccount_rows`` are ``read_subaccounts`` rows; an hour
    without any (the key may not list them, the answer was left out) compares with none."""
    hours = set(expected_hours(now, rules))
    listed: dict[str, dict[datetime, set[int]]] = {account: {} for account in accounts}
    for row in subaccount_rows:
        if row["account"] in listed and row["snapshot_hour"] in hours:
            listed[row["account"]].setdefault(row["snapshot_hour"], set()).add(row["subaccount_number"])
    problems = []
    for account, by_hour in listed.items():
        for before, after in pairwise(sorted(by_hour)):
            for kind, numbers, what in (
                ("subaccount_gone", by_hour[before] - by_hour[after], "no longer listed"),
                ("subaccount_new", by_hour[after] - by_hour[before], "newly listed"),
            ):
                if numbers:
                    problems.append(
                        Problem(
                            account,
                            kind,
                            f"subaccount(s) {', '.join(map(str, sorted(numbers)))} {what} at "
                            f"{after:%Y-%m-%d %H:00} UTC (compared with {before:%Y-%m-%d %H:00} UTC)",
                        )
                    )
    return problems


def _left_out(
    account: str, kind: str, what: str, notes: dict[str, dict[datetime, str]], hours: list[datetime]
) -> list[Problem]:
    without = sorted(hour for hour in notes[account] if hour in hours)
    if not without:
        return []
    return [Problem(account, kind, f"{what} for hours {_hour_list(without)}", notes[account][without[-1]])]


def _jumps(
    account: str, hours: list[datetime], values: dict[datetime, int], rules: QualityRules
) -> Iterator[Problem]:
    for before, after in pairwise(hours):
        if after - before != timedelta(hours=1):
            continue  # a gap is reported as missing hours, not as a jump
        old, new = values[before], values[after]
        # Zero counts as one cent, so a fall to (or a rise from) nothing has a finite ratio.
        low, high = sorted((max(old, 1), max(new, 1)))
        factor = high / low
        limit = 1 + rules.max_change_percent / 100
        if factor > limit:
            way = "rose" if new > old else "fell"
            yield Problem(
                account,
                "jump",
                f"value {way} from {old} to {new} cents between {before:%Y-%m-%d %H:00} and "
                f"{after:%H:00} UTC (a factor of {factor:,.1f}; max_change_percent "
                f"{rules.max_change_percent:g}% allows {limit:g}x either way)",
            )


def _hour_list(hours: list[datetime]) -> str:
    shown = ", ".join(f"{hour:%Y-%m-%d %H:00}" for hour in hours[:6])
    more = f" and {len(hours) - 6} more" if len(hours) > 6 else ""
    return f"{shown}{more} UTC"


def report(
    problems: list[Problem], notices: Sequence[Problem] = (), schedule_problem: str | None = None
) -> str:
    """The text the check fails with, and so what its notifiers send: one line per problem, then
    the notices (Kalshi maintenance, not alerted on their own) and, when Kalshi's schedule could
    not be read, that missing hours were judged without it."""
    lines = [f"Kalshi resting order value: {len(problems)} data quality problem(s)"]
    lines += [f"- {problem}" for problem in problems]
    lines += [f"- (no alert) {notice}" for notice in notices]
    if schedule_problem is not None:  # a note on the report, not a problem of its own
        lines.append(
            f"Kalshi's maintenance schedule was unavailable, so missing hours count as outages: "
            f"{shown(schedule_problem)}"
        )
    return "\n".join(lines)


# -- Kalshi's maintenance: a missing hour inside a published window is no outage -------------------

#: What the report calls an hour missing inside one of Kalshi's published maintenance windows.
MAINTENANCE = "Kalshi maintenance"


def inside_maintenance(hour: datetime, windows: Iterable[Any]) -> bool:
    """Whether the whole of ``hour`` (``[hour, hour + 1 h)``) lies inside one window (objects with
    aware ``start`` and ``end``, as ``exchange_status.MaintenanceWindow``).

    Only a whole hour counts: an hour partly outside every window had time in which Kalshi answered
    and the run could read it (the load takes any answer inside the hour), so missing it is an outage.
    """
    end = hour + timedelta(hours=1)
    return any(window.start <= hour and end <= window.end for window in windows)


def separate_maintenance(
    problems: Iterable[Problem], windows: Sequence[Any]
) -> tuple[list[Problem], list[Problem]]:
    """Split missing-hours problems on Kalshi's maintenance windows: (problems that alert, notices).

    A missing hour wholly inside a window becomes a ``kalshi_maintenance`` notice; the rest of the
    account's missing hours stay a problem. ``no_rows`` stays a problem unless every hour it covers
    is inside a window (its hours inside one are a notice either way). Every other problem passes
    unchanged.
    """
    kept: list[Problem] = []
    notices: list[Problem] = []
    for problem in problems:
        if problem.kind not in ("no_rows", "missing_hours") or not problem.hours:
            kept.append(problem)
            continue
        paused = [hour for hour in problem.hours if inside_maintenance(hour, windows)]
        other = [hour for hour in problem.hours if hour not in paused]
        if paused:
            notices.append(
                Problem(
                    problem.account,
                    "kalshi_maintenance",
                    f"{MAINTENANCE}: no rows for hours {_hour_list(paused)}, inside Kalshi's published "
                    "maintenance windows",
                    hours=tuple(paused),
                )
            )
        if problem.kind == "no_rows" and other:
            kept.append(problem)
        elif other:
            kept.append(
                Problem(
                    problem.account, "missing_hours", f"missing hours {_hour_list(other)}", hours=tuple(other)
                )
            )
    return kept, notices


# -- balance floors: a risk team's minimum per account and shard --------------------------------------

#: An account id in the floors: an Airflow connection id, the characters and length Airflow allows.
CONN_ID_RULE = r"^[\w#!()\-.:/\\]{1,250}$"
_CONN_ID = re.compile(CONN_ID_RULE)
#: Most accounts the floors may name; a shard is an exchange index from 0 to ``MAX_FLOOR_SHARD``.
MAX_FLOOR_ACCOUNTS = 500
MAX_FLOOR_SHARD = 63


class InvalidFloorsError(ValueError):
    """The ``balance_floors`` param is not ``{account: {shard: "dollars"}}``; says what to fix."""


def parse_balance_floors(value: Any) -> dict[str, dict[int, Decimal]]:
    """Check the ``balance_floors`` param: ``{"kalshi_default": {"0": "25000.00", "2": "1000"}}``.

    Accounts are Airflow connection ids, shards exchange indexes 0 to 63 (JSON keys are text),
    floors exact dollar amounts with at most six decimal places, as decimal strings or whole
    numbers: a JSON number with a fraction (a float) is refused, never rounded.

    :raises InvalidFloorsError: naming the entry that is wrong.
    """
    from kalshi_provider.readings import InvalidReadingError, exact_dollars

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidFloorsError(f"balance_floors must be an object of accounts, got {type(value).__name__}")
    if len(value) > MAX_FLOOR_ACCOUNTS:
        raise InvalidFloorsError(f"balance_floors names {len(value)} accounts; at most {MAX_FLOOR_ACCOUNTS}")
    floors: dict[str, dict[int, Decimal]] = {}
    for account, shards in value.items():
        if not isinstance(account, str) or not _CONN_ID.fullmatch(account):
            raise InvalidFloorsError(
                f"balance_floors: {shown(str(account))!r} is not an account (an Airflow connection id)"
            )
        if not isinstance(shards, dict) or not 0 < len(shards) <= MAX_FLOOR_SHARD + 1:
            raise InvalidFloorsError(
                f"balance_floors[{account!r}] must be an object of 1 to {MAX_FLOOR_SHARD + 1} shards, "
                'e.g. {"0": "25000.00"}'
            )
        floors[account] = {}
        for shard, floor in shards.items():
            index = _floor_shard(shard, account)
            if index in floors[account]:
                raise InvalidFloorsError(f"balance_floors[{account!r}] names shard {index} twice")
            if type(floor) is int:
                floor = str(floor)
            try:
                floors[account][index] = exact_dollars(floor, f"balance_floors[{account!r}][{index}]")
            except InvalidReadingError as err:
                raise InvalidFloorsError(
                    f'{err} (write a floor as a decimal string, e.g. "25000.00")'
                ) from None
    return floors


def _floor_shard(shard: Any, account: str) -> int:
    text = shard if isinstance(shard, str) else None
    if (
        text is None
        or not text.isascii()
        or not text.isdigit()
        or len(text) > 2
        or int(text) > MAX_FLOOR_SHARD
    ):
        raise InvalidFloorsError(
            f"balance_floors[{account!r}]: {shown(str(shard))!r} is not a shard (an exchange index, 0 to "
            f"{MAX_FLOOR_SHARD})"
        )
    return int(text)


def balance_floor_problems(
    balances: Iterable[dict[str, Any]], floors: dict[str, dict[int, Decimal]], hours: Sequence[datetime]
) -> list[Problem]:
    """Hours in ``hours`` whose available balance on a shard (Kalshi's own per-shard ``balance``, the
    ``_bal_shard`` table, as ``read_balances`` gives it in ``breakdown``) is below the account's floor
    for that shard. A balance that is absent (no balance row, no entry for the shard) is not below:
    missing balances are reported by the other rules. One problem per account, its latest breach first
    in the detail."""
    checked = set(hours)
    breaches: dict[str, list[tuple[datetime, int, Decimal, Decimal]]] = {}
    for row in balances:
        account_floors = floors.get(row["account"])
        if not account_floors or row["snapshot_hour"] not in checked:
            continue
        for entry in row.get("breakdown") or ():
            floor = account_floors.get(entry["exchange_index"])
            amount = entry.get("shard_balance_dollars")
            if floor is not None and amount is not None and amount < floor:
                breaches.setdefault(row["account"], []).append(
                    (row["snapshot_hour"], entry["exchange_index"], amount, floor)
                )
    problems = []
    for account, found in breaches.items():
        found.sort(reverse=True)
        shown_breaches = "; ".join(
            f"{hour:%Y-%m-%d %H:00} UTC shard {shard}: ${amount:,} below ${floor:,}"
            for hour, shard, amount, floor in found[:6]
        )
        more = f" and {len(found) - 6} more" if len(found) > 6 else ""
        problems.append(
            Problem(
                account, "balance_below_floor", f"available balance below its floor: {shown_breaches}{more}"
            )
        )
    return problems
