"""The time zone the chart shows its times in.

The page is drawn on the server, but the zone is the reader's: Airflow 3's UI keeps the zone the
user picked in the browser's local storage (key ``timezone``, JSON-encoded, on 3.0-3.3), and
without a choice the UI shows the browser's zone. A script on the page reads the same and asks
again with ``?tz=<zone>&tz_from=airflow|browser`` when the page shows another zone
(:data:`FOLLOW_THE_UI_ZONE`). A zone name is checked before use; one this server does not know
falls back to UTC and the page says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: What an IANA zone name looks like ("America/New_York", "Etc/GMT+5", "UTC"): no path tricks.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]{0,30}(/[A-Za-z0-9_+\-]{1,30}){0,2}")
UTC = "UTC"

ZoneSource = Literal["airflow", "browser"]


@dataclass(frozen=True)
class ShownZone:
    zone: ZoneInfo
    explanation: str  # what the page says about where the zone comes from

    @property
    def name(self) -> str:
        return self.zone.key


def shown_zone(asked: str | None, source: ZoneSource | None) -> ShownZone:
    """The zone to draw in for ``?tz=asked`` (``source`` says where the page's script found it)."""
    if not asked:
        return ShownZone(ZoneInfo(UTC), "UTC (no zone chosen: this page follows your Airflow UI's)")
    zone = _known_zone(asked)
    if zone is None:
        return ShownZone(
            ZoneInfo(UTC), f"UTC: this server does not know the zone {asked[:64]!r} (its tz database)"
        )
    origin = {
        "airflow": "the zone chosen in your Airflow UI",
        "browser": "your browser's zone (none chosen in the Airflow UI)",
    }.get(source or "", "the zone in this page's address")
    return ShownZone(zone, origin)


def _known_zone(name: str) -> ZoneInfo | None:
    if not _ZONE_NAME.fullmatch(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


#: Reads the zone the Airflow UI uses (see the module's docstring) and asks for the page again in
#: it when the page shows another. ``tz`` in the address already naming it stops the loop, even
#: when the server fell back to UTC.
FOLLOW_THE_UI_ZONE = """
(() => {
  const shown = document.documentElement.dataset.zone;
  let wanted = null, from = "airflow";
  try {
    const stored = localStorage.getItem("timezone");
    if (stored) { try { wanted = JSON.parse(stored); } catch (notJson) { wanted = stored; } }
  } catch (storageRefused) { wanted = null; }
  if (typeof wanted !== "string" || !wanted) {
    wanted = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    from = "browser";
  }
  const url = new URL(location.href);
  if (wanted !== shown && url.searchParams.get("tz") !== wanted) {
    url.searchParams.set("tz", wanted);
    url.searchParams.set("tz_from", from);
    location.replace(url.toString());
  }
})();
"""
