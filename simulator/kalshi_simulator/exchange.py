"""The exchange's own state: ``/exchange/status``, ``/exchange/schedule`` and maintenance.

One per simulator, shared by every account. Kalshi documents the shapes (spec 3.32.0) but not
what its portfolio endpoints answer while the exchange is inactive: that answer is the
simulator's choice (by default a 503 with Kalshi's wrapped error body), scriptable like a fault.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from kalshi_simulator.faults import Fault
from kalshi_simulator.state import DEFAULT_SHARES

#: Kalshi's schedule is "expressed in ET"; its weekly maintenance is "Every Thursday from 3:00 AM to
#: 5:00 AM ET" (docs.kalshi.com/getting_started/maintenance_and_pauses).
EASTERN = ZoneInfo("America/New_York")
_THURSDAY = 3
_MAINTENANCE_START, _MAINTENANCE_END = time(3, 0), time(5, 0)
#: How far back and ahead the default schedule reaches: past windows too, so a check of an hour
#: already gone (the quality DAG's) finds the window it fell in.
_DEFAULT_REACH = (timedelta(days=14), timedelta(days=28))
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_FLAGS = ("exchange_active", "trading_active", "intra_exchange_transfers_active")
#: What a signed (portfolio) request gets while the exchange is inactive, unless scripted.
DEFAULT_INACTIVE_ANSWER: dict[str, Any] = {
    "status": 503,
    "json": {
        "error": {
            "code": "service_unavailable",
            "message": "the exchange is under maintenance",
            "details": "",
        }
    },
}
_UPDATABLE = frozenset(
    {
        *_FLAGS,
        "maintenance",
        "exchange_index",
        "exchange_estimated_resume_time",
        "exchange_indexes",
        "index_statuses_available",
        "maintenance_windows",
        "standard_hours",
        "portfolio_while_inactive",
    }
)


@dataclass(frozen=True)
class ShardStatus:
    """One entry of ``exchange_index_statuses``."""

    exchange_index: int
    description: str
    exchange_active: bool = True
    trading_active: bool = True
    intra_exchange_transfers_active: bool = True


def _shard(index: int) -> ShardStatus:
    return ShardStatus(index, f"Exchange index {index}")


@dataclass(frozen=True)
class _State:
    shards: tuple[ShardStatus, ...]
    resume_time: str | None = None
    index_statuses_available: bool = True
    #: None: Kalshi's weekly Thursday window around the time of the answer.
    maintenance_windows: tuple[dict[str, str], ...] | None = None
    #: None: the default weekly schedule around the time of the answer.
    standard_hours: tuple[dict[str, Any], ...] | None = None
    inactive_answer: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(DEFAULT_INACTIVE_ANSWER))


class Exchange:
    """The exchange's status and schedule. Thread-safe; every change is all-or-nothing.

    The top-level flags of ``/exchange/status`` are shard 0's, as Kalshi's spec says ("The
    top-level fields above reflect the default exchange index (0)"), so shard 0 always exists.
    The simulator treats the exchange as inactive, and answers portfolio requests with
    ``portfolio_while_inactive``, while shard 0's ``exchange_active`` is false.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = _State(shards=tuple(_shard(index) for index in sorted(DEFAULT_SHARES)))

    # -- scripting ---------------------------------------------------------------------------

    def start_maintenance(
        self, resume_time: str | datetime | None = None, exchange_index: int | Iterable[int] | None = None
    ) -> None:
        """Take shards (default: all) out of service: every flag false. ``resume_time`` (an RFC
        3339 string or an aware datetime) sets the estimated resume time; None leaves it as is."""
        changes: dict[str, Any] = {"maintenance": True}
        if exchange_index is not None:
            changes["exchange_index"] = (
                exchange_index if isinstance(exchange_index, int) else list(exchange_index)
            )
        if resume_time is not None:
            changes["exchange_estimated_resume_time"] = (
                _rfc3339(resume_time) if isinstance(resume_time, datetime) else resume_time
            )
        self.update(**changes)

    def end_maintenance(self) -> None:
        """Every shard active again and no estimated resume time."""
        self.update(maintenance=False)

    def reset(self) -> None:
        """Back to the state of a new simulator: active, default schedule, default answers."""
        with self._lock:
            self._state = _State(shards=tuple(_shard(index) for index in sorted(DEFAULT_SHARES)))

    def update(self, **changes: Any) -> None:
        """Change the status or schedule; see ``simulator/README.md`` for the fields. Raises
        ValueError (nothing changed) on an unknown field or a bad value."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown exchange fields {sorted(unknown)}; known: {sorted(_UPDATABLE)}")
        flags = {name: changes[name] for name in _FLAGS if name in changes}
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false, got {value!r}")
        maintenance = changes.get("maintenance")
        if maintenance is not None:
            if not isinstance(maintenance, bool):
                raise ValueError(f"maintenance must be true or false, got {maintenance!r}")
            if flags:
                raise ValueError(f"'maintenance' sets {list(_FLAGS)} itself: give one or the other")
            flags = dict.fromkeys(_FLAGS, not maintenance)
        with self._lock:
            state = self._state
            if "exchange_indexes" in changes:
                state = dataclasses.replace(state, shards=_reshard(state.shards, changes["exchange_indexes"]))
            if flags:
                targets = _targets(changes.get("exchange_index"), state.shards)
                shards = tuple(
                    dataclasses.replace(shard, **flags) if shard.exchange_index in targets else shard
                    for shard in state.shards
                )
                state = dataclasses.replace(state, shards=shards)
            elif changes.get("exchange_index") is not None:
                raise ValueError("'exchange_index' says which shards the flags apply to: give a flag too")
            if "exchange_estimated_resume_time" in changes:
                resume = changes["exchange_estimated_resume_time"]
                state = dataclasses.replace(state, resume_time=_optional_datetime(resume, "resume time"))
            elif maintenance is False:
                state = dataclasses.replace(state, resume_time=None)
            if "index_statuses_available" in changes:
                available = changes["index_statuses_available"]
                if not isinstance(available, bool):
                    raise ValueError("index_statuses_available must be true or false")
                state = dataclasses.replace(state, index_statuses_available=available)
            if "maintenance_windows" in changes:
                windows = _windows(changes["maintenance_windows"])
                state = dataclasses.replace(state, maintenance_windows=windows)
            if "standard_hours" in changes:
                state = dataclasses.replace(state, standard_hours=_standard_hours(changes["standard_hours"]))
            if "portfolio_while_inactive" in changes:
                answer = _inactive_answer(changes["portfolio_while_inactive"])
                state = dataclasses.replace(state, inactive_answer=answer)
            self._state = state

    # -- what the server answers -------------------------------------------------------------

    def inactive_answer(self) -> Fault | None:
        """The answer for a signed request while the exchange is inactive; None while active or
        when scripted to answer normally."""
        state = self._state
        if state.shards[0].exchange_active:
            return None
        fault = Fault.from_dict(state.inactive_answer)
        return fault if fault.replaces_answer or fault.delay or fault.drop else None

    def status_body(self) -> dict[str, Any]:
        state = self._state
        primary = state.shards[0]
        body: dict[str, Any] = {
            "exchange_active": primary.exchange_active,
            "trading_active": primary.trading_active,
            "intra_exchange_transfers_active": primary.intra_exchange_transfers_active,
            "exchange_estimated_resume_time": state.resume_time,
        }
        if state.index_statuses_available:
            body["exchange_index_statuses"] = [dataclasses.asdict(shard) for shard in state.shards]
        return body

    def schedule_body(self, now: datetime) -> dict[str, Any]:
        """``{"schedule": {"standard_hours": [...], "maintenance_windows": [...]}}``; the defaults
        are computed around ``now`` (an aware datetime)."""
        state = self._state
        standard = state.standard_hours
        windows = state.maintenance_windows
        return {
            "schedule": {
                "standard_hours": copy.deepcopy(list(standard))
                if standard is not None
                else default_hours(now),
                "maintenance_windows": [dict(w) for w in windows]
                if windows is not None
                else weekly_windows(now),
            }
        }

    def to_dict(self, now: datetime) -> dict[str, Any]:
        """What the control API shows: both bodies and the inactive answer."""
        return {
            "status": self.status_body(),
            "schedule": self.schedule_body(now)["schedule"],
            "portfolio_while_inactive": copy.deepcopy(self._state.inactive_answer),
        }


# -- the default schedule ---------------------------------------------------------------------


def weekly_windows(now: datetime) -> list[dict[str, str]]:
    """Kalshi's documented weekly window, Thursday 03:00-05:00 ET, for every Thursday from two
    weeks before ``now`` to four weeks after, in UTC (so the daylight-saving shift shows)."""
    today = now.astimezone(EASTERN).date()
    windows = []
    for day in _days_around(today):
        if day.weekday() == _THURSDAY:
            start = datetime.combine(day, _MAINTENANCE_START, EASTERN)
            end = datetime.combine(day, _MAINTENANCE_END, EASTERN)
            windows.append({"start_datetime": _rfc3339(start), "end_datetime": _rfc3339(end)})
    return windows


def default_hours(now: datetime) -> list[dict[str, Any]]:
    """One weekly schedule over the same span as the windows: open all day, every day, except
    Thursday's maintenance window (the simulator's assumption; Kalshi publishes no example)."""
    today = now.astimezone(EASTERN).date()
    days = list(_days_around(today))
    all_day = [{"open_time": "00:00", "close_time": "24:00"}]
    thursday = [{"open_time": "00:00", "close_time": "03:00"}, {"open_time": "05:00", "close_time": "24:00"}]
    week = {name: copy.deepcopy(thursday if name == "thursday" else all_day) for name in _DAYS}
    return [
        {
            "start_time": _rfc3339(datetime.combine(days[0], time(0), EASTERN)),
            "end_time": _rfc3339(datetime.combine(days[-1] + timedelta(days=1), time(0), EASTERN)),
            **week,
        }
    ]


def _days_around(today: date) -> Iterable[date]:
    back, ahead = _DEFAULT_REACH
    for offset in range(-back.days, ahead.days + 1):
        yield today + timedelta(days=offset)


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a time must carry its UTC offset")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- validation -------------------------------------------------------------------------------


def _optional_datetime(value: Any, what: str) -> str | None:
    if value is None:
        return None
    return _datetime(value, what)


def _datetime(value: Any, what: str) -> str:
    """An RFC 3339 date-time with its offset, served as given."""
    if not isinstance(value, str) or not 19 <= len(value) <= 35 or value[10:11] not in ("T", "t"):
        raise ValueError(f"{what} must be an RFC 3339 date-time such as 2026-12-10T08:00:00Z, got {value!r}")
    try:
        parsed = parse_datetime(value)
    except ValueError:
        raise ValueError(f"{what} must be an RFC 3339 date-time, got {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{what} must carry its UTC offset (Z or +HH:MM), got {value!r}")
    return value


def parse_datetime(value: str) -> datetime:
    """``datetime.fromisoformat`` that takes a trailing ``Z`` on Python 3.10 too."""
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    return datetime.fromisoformat(value)


def _targets(exchange_index: Any, shards: tuple[ShardStatus, ...]) -> set[int]:
    known = {shard.exchange_index for shard in shards}
    if exchange_index is None:
        return known
    indexes = [exchange_index] if not isinstance(exchange_index, list) else exchange_index
    for index in indexes:
        if isinstance(index, bool) or not isinstance(index, int) or index not in known:
            raise ValueError(
                f"exchange_index must be one or a list of the shards {sorted(known)}, got {index!r}"
            )
    return set(indexes)


def _reshard(shards: tuple[ShardStatus, ...], indexes: Any) -> tuple[ShardStatus, ...]:
    if (
        not isinstance(indexes, list)
        or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= 999 for i in indexes)
        or len(set(indexes)) != len(indexes)
        or 0 not in indexes
    ):
        raise ValueError("exchange_indexes must be a list of distinct shard numbers (0-999) that includes 0")
    current = {shard.exchange_index: shard for shard in shards}
    return tuple(current.get(index) or _shard(index) for index in sorted(indexes))


def _windows(value: Any) -> tuple[dict[str, str], ...] | None:
    if value is None:
        return None
    shape = "a list of {'start_datetime': RFC 3339, 'end_datetime': RFC 3339}"
    if not isinstance(value, list):
        raise ValueError(f"maintenance_windows must be {shape} (or null for the weekly default)")
    windows = []
    for window in value:
        if not isinstance(window, Mapping) or set(window) != {"start_datetime", "end_datetime"}:
            raise ValueError(f"maintenance_windows must be {shape}, got {window!r}")
        start = _datetime(window["start_datetime"], "start_datetime")
        end = _datetime(window["end_datetime"], "end_datetime")
        if parse_datetime(end) <= parse_datetime(start):
            raise ValueError(f"a maintenance window must end after it starts: {start} to {end}")
        windows.append({"start_datetime": start, "end_datetime": end})
    return tuple(windows)


def _standard_hours(value: Any) -> tuple[dict[str, Any], ...] | None:
    """Served as given (a test may send odd sessions on purpose); only the outer shape is checked."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(week, Mapping) for week in value):
        raise ValueError("standard_hours must be a list of WeeklySchedule dicts (or null for the default)")
    return tuple(copy.deepcopy(dict(week)) for week in value)


def _inactive_answer(value: Any) -> dict[str, Any]:
    if value is None:
        return dict(DEFAULT_INACTIVE_ANSWER)
    if not isinstance(value, Mapping) or {"path", "times"} & set(value):
        raise ValueError(
            "portfolio_while_inactive must be a fault dict without 'path' or 'times' ({} answers normally)"
        )
    Fault.from_dict(value)  # the fault's own checks: fail now, not in the server thread
    return copy.deepcopy(dict(value))
