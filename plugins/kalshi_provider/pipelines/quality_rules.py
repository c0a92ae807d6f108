"""Freshness and quality rules for the hourly tables: missing hours, implausible jumps, left-out breakdowns.

An account whose key may not read the total (not an FCM member: its balance rows say so) is not
missing its totals while its balance rows arrive; an hour with a total but no balance is reported.

The rules read the warehouse only; they report problems as a list the check task turns into a
failure, so Airflow's own failure handling (UI state, retries, notifiers) does the alerting. The
report reaches people through those notifiers (Slack, e-mail), so every text in it that comes from
outside (an account id from the DAG's params, Kalshi's reason for leaving a breakdown out) goes
through :func:`shown`: one bounded line without live markup.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
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
    # | "balance_breakdown_left_out" | "subaccount_gone" | "subaccount_new"
    kind: str
    detail: str
    reason: str | None = None

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
            problems.append(Problem(account, "no_rows", f"no rows in the last {rules.window_hours} hours"))
            continue
        missing = [hour for hour in hours if hour >= present[0] and hour not in counted]
        if missing:
            problems.append(Problem(account, "missing_hours", f"missing hours {_hour_list(missing)}"))
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


def report(problems: list[Problem]) -> str:
    """The text the check fails with, and so what its notifiers send: one line per problem."""
    lines = [f"Kalshi resting order value: {len(problems)} data quality problem(s)"]
    lines += [f"- {problem}" for problem in problems]
    return "\n".join(lines)
