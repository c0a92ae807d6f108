"""Where the chart's axes put their ticks, and what the labels say.

Money: round steps of 1, 2 or 5 times a power of ten, so a reader sees $5,000 and $10,000, never
$8,485. Time: ticks on round wall-clock hours or midnights *of the reader's zone* (daylight
saving included), labelled in that zone, with the date whenever it changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from zoneinfo import ZoneInfo

#: Most money ticks on an axis (about five intervals read well on a 290-pixel plot).
MONEY_INTERVALS = 5
#: Tick steps of the time axis, finest first; a step of a day or more falls on midnights.
TIME_STEPS_HOURS = (1, 2, 3, 6, 12, 24, 48, 72, 168, 336)
#: Most time labels on an axis (each is about 80 pixels wide on a 790-pixel plot).
MAX_TIME_LABELS = 10


@dataclass(frozen=True)
class MoneyScale:
    low: Decimal
    high: Decimal
    step: Decimal

    @property
    def ticks(self) -> list[Decimal]:
        count = int((self.high - self.low) / self.step)
        return [self.low + self.step * index for index in range(count + 1)]

    def label(self, dollars: Decimal) -> str:
        """``$5,000`` (or ``$2.50`` when the step is below a dollar); negative as ``-$5,000``."""
        places = max(0, -self.step.normalize().as_tuple().exponent)  # type: ignore[operator]
        places = 2 if places else 0
        sign = "-" if dollars < 0 else ""
        return f"{sign}${abs(dollars):,.{places}f}"


def money_scale(values: list[Decimal]) -> MoneyScale:
    """A scale from 0 (or below, for negative values) to just above the largest value, in a round
    step of 1, 2 or 5 times a power of ten."""
    low, high = min([Decimal(0), *values]), max([Decimal(0), *values])
    if high == low:
        high = low + 1
    raw = (high - low) / MONEY_INTERVALS
    exponent = math.floor(math.log10(raw))
    step = next(
        candidate for candidate in (Decimal(m).scaleb(exponent) for m in (1, 2, 5, 10)) if candidate >= raw
    )
    return MoneyScale(
        (low / step).to_integral_value(ROUND_FLOOR) * step,
        (high / step).to_integral_value(ROUND_CEILING) * step,
        step,
    )


@dataclass(frozen=True)
class TimeTick:
    moment: datetime  # aware, UTC
    time_label: str  # "14:00", or "" on a tick of a day or more
    date_label: str  # "Tue 24 Nov", or "" when the previous tick had the same date


def time_ticks(start: datetime, end: datetime, zone: ZoneInfo) -> list[TimeTick]:
    """Ticks between ``start`` and ``end`` (aware) on round wall-clock times of ``zone``: the finest
    step of :data:`TIME_STEPS_HOURS` giving at most :data:`MAX_TIME_LABELS` labels."""
    hours = max((end - start) / timedelta(hours=1), 1)
    step = next((s for s in TIME_STEPS_HOURS if hours / s <= MAX_TIME_LABELS), TIME_STEPS_HOURS[-1])
    moments = _wall_clock_ticks(start, end, zone, step)
    ticks, previous = [], None
    for moment in moments:
        local = moment.astimezone(zone)
        day = local.date()
        ticks.append(
            TimeTick(
                moment.astimezone(timezone.utc),
                "" if step >= 24 else f"{local:%H:%M}",
                "" if day == previous else f"{local:%a} {local.day} {local:%b}",
            )
        )
        previous = day
    return ticks


def _wall_clock_ticks(start: datetime, end: datetime, zone: ZoneInfo, step: int) -> list[datetime]:
    """The instants in [start, end] at which ``zone``'s clocks show a multiple of ``step`` hours
    (``step`` < 24, a divisor of 24), or midnight of every ``step // 24``-th day."""
    first, last = start.astimezone(zone), end.astimezone(zone)
    if step < 24:
        wall = datetime.combine(first.date(), time(first.hour - first.hour % step))
        every = timedelta(hours=step)
    else:
        days = step // 24
        day = first.date()
        wall = datetime.combine(day - timedelta(days=(day - date(2000, 1, 3)).days % days), time())
        every = timedelta(days=days)
    found: list[datetime] = []
    while wall <= last.replace(tzinfo=None) + every:
        moment = wall.replace(tzinfo=zone)
        if start <= moment <= end and (not found or moment > found[-1]):
            found.append(moment)
        wall += every
    return found


def moment_label(moment: datetime, zone: ZoneInfo) -> str:
    """``Tue 24 Nov 2026 14:00 EST``: a point's time in the reader's zone, for its tooltip and table."""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} {local.tzname()}"
