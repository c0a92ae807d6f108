"""Kalshi's exchange status and maintenance schedule, checked as hostile answers.

``GET /exchange/status`` says whether the exchange is up (``exchange_active`` is false during
maintenance) and when Kalshi expects it back; ``GET /exchange/schedule`` lists maintenance windows.
Neither needs a signature. The hook reads the status only after a signed call failed with a
retryable error: an inactive exchange then stops the run's signed requests
(:class:`ExchangePause`) instead of spending its retries on an exchange that is not there.

Kalshi writes its schedule "in ET": a window's date-time with an offset is taken as written, one
without is US Eastern time (``America/New_York``, daylight saving included; an ambiguous or
skipped wall time takes the offset before the change, ``fold=0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from kalshi_provider.display import shown
from kalshi_provider.exceptions import KalshiResponseError
from kalshi_provider.limits import MAX_MAINTENANCE_WINDOW_HOURS, MAX_MAINTENANCE_WINDOWS
from kalshi_provider.timestamps import aware_utc

EASTERN = ZoneInfo("America/New_York")
#: Longest date-time text read ("2026-12-10T08:00:00.000000+00:00" is 32 characters).
_MAX_DATETIME_LENGTH = 40
#: Longest reason a pause carries (the hook writes it; it holds no outside text but the call's label).
MAX_REASON_LENGTH = 500


@dataclass(frozen=True)
class ExchangeStatus:
    """``GET /exchange/status``: the top-level flags (shard 0's, per Kalshi's spec) and the
    estimated resume time, if Kalshi gave one."""

    exchange_active: bool
    trading_active: bool | None
    estimated_resume_time: datetime | None
    received_at: datetime | None = None


@dataclass(frozen=True)
class MaintenanceWindow:
    """One published maintenance window, in UTC; ``start <= moment < end`` is inside it."""

    start: datetime
    end: datetime

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether ``[start, end)`` lies wholly inside the window."""
        return self.start <= start and end <= self.end


@dataclass(frozen=True)
class ExchangePause:
    """Why a fetch stopped sending signed requests: Kalshi's exchange said it was not active.

    :param reason: What happened, in the hook's words (the failed call and Kalshi's flags).
    :param observed_at: When the status answer arrived (UTC).
    :param estimated_resume_time: Kalshi's ``exchange_estimated_resume_time``, if it gave one.
    """

    reason: str
    observed_at: datetime
    estimated_resume_time: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.reason, str) or not 0 < len(self.reason) <= MAX_REASON_LENGTH:
            raise ValueError(f"a pause's reason must be a text of 1 to {MAX_REASON_LENGTH} characters")
        object.__setattr__(self, "observed_at", aware_utc(self.observed_at, "the pause's observed_at"))
        if self.estimated_resume_time is not None:
            resume = aware_utc(self.estimated_resume_time, "the estimated resume time")
            object.__setattr__(self, "estimated_resume_time", resume)

    def to_xcom(self) -> dict[str, Any]:
        resume = self.estimated_resume_time
        return {
            "reason": self.reason,
            "observed_at": self.observed_at.isoformat(),
            "estimated_resume_time": None if resume is None else resume.isoformat(),
        }

    @classmethod
    def from_xcom(cls, payload: Any) -> ExchangePause:
        resume = payload.get("estimated_resume_time")
        return cls(
            reason=payload["reason"],
            observed_at=datetime.fromisoformat(payload["observed_at"]),
            estimated_resume_time=None if resume is None else datetime.fromisoformat(resume),
        )

    def describe(self) -> str:
        """One line for a log, an exception and the history's note."""
        resume = self.estimated_resume_time
        when = f"Kalshi's estimated resume time {resume:%Y-%m-%d %H:%M} UTC" if resume else "no resume time"
        return f"{self.reason} ({when})"


def parse_exchange_status(body: Any) -> ExchangeStatus:
    """Check the body of ``GET /exchange/status``; anything but Kalshi's documented shape is refused
    (a status that cannot be trusted never stops a run)."""
    if not isinstance(body, dict):
        raise KalshiResponseError(f"the exchange status is a JSON {type(body).__name__}, expected an object")
    active = body.get("exchange_active")
    if type(active) is not bool:
        raise KalshiResponseError("the exchange status has no true/false 'exchange_active'")
    trading = body.get("trading_active")
    if trading is not None and type(trading) is not bool:
        raise KalshiResponseError("the exchange status's 'trading_active' is not true/false")
    resume = body.get("exchange_estimated_resume_time")
    return ExchangeStatus(
        exchange_active=active,
        trading_active=trading,
        estimated_resume_time=None
        if resume is None
        else parse_datetime(resume, "exchange_estimated_resume_time", assume=timezone.utc),
    )


def parse_maintenance_windows(body: Any) -> tuple[MaintenanceWindow, ...]:
    """The maintenance windows of a ``GET /exchange/schedule`` body, in UTC, refusing the whole
    answer if one entry is not a believable window (see ``limits.MAX_MAINTENANCE_WINDOW_HOURS``)."""
    schedule = body.get("schedule") if isinstance(body, dict) else None
    windows = schedule.get("maintenance_windows") if isinstance(schedule, dict) else None
    if not isinstance(windows, list):
        raise KalshiResponseError("the exchange schedule has no 'schedule.maintenance_windows' list")
    if len(windows) > MAX_MAINTENANCE_WINDOWS:
        raise KalshiResponseError(
            f"the exchange schedule lists {len(windows)} maintenance windows; at most "
            f"{MAX_MAINTENANCE_WINDOWS} are read"
        )
    longest = timedelta(hours=MAX_MAINTENANCE_WINDOW_HOURS)
    parsed = []
    for number, entry in enumerate(windows, 1):
        if not isinstance(entry, dict):
            raise KalshiResponseError(f"maintenance window {number} is not an object")
        start = parse_datetime(entry.get("start_datetime"), f"window {number}'s start_datetime")
        end = parse_datetime(entry.get("end_datetime"), f"window {number}'s end_datetime")
        if not start < end <= start + longest:
            raise KalshiResponseError(
                f"maintenance window {number} ({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC) does "
                f"not end after it starts, within {MAX_MAINTENANCE_WINDOW_HOURS} hours"
            )
        parsed.append(MaintenanceWindow(start, end))
    return tuple(parsed)


def parse_datetime(value: Any, what: str, *, assume: Any = EASTERN) -> datetime:
    """An RFC 3339 date-time in UTC; one without an offset is taken in ``assume``'s zone."""
    if not isinstance(value, str) or not 10 <= len(value) <= _MAX_DATETIME_LENGTH:
        raise KalshiResponseError(f"{what} is not a date-time text")
    text = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise KalshiResponseError(f"{what} {shown(value, 40)!r} is not an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=assume)
    return moment.astimezone(timezone.utc)
