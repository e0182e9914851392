"""What clock a file's timestamps are on, and how to bring them to UTC.

Bar files rarely say. HistData writes fixed EST (UTC-5, no DST); Dukascopy writes GMT or
an explicit offset per row; MetaTrader writes broker server time, which at most brokers is
New York + 7 h (GMT+2 in winter, GMT+3 in summer) so that the week has five daily bars.
A spec is one of:

- ``UTC`` (also ``GMT``, ``Z``)
- a fixed offset: ``+02:00``, ``-0500``, ``UTC+2``, ``GMT-5``
- an IANA zone: ``Europe/London``, ``America/New_York``
- ``NY+7``: the New York close server clock described above
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import available_timezones

import polars as pl

from forex_assets.market.fx_calendar import DayClose, FxCalendar

NEW_YORK_CLOSE_SERVER = "NY+7"
_OFFSET_RE = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_UTC_NAMES = {"UTC", "GMT", "Z", "ETC/UTC", "UTC+0", "GMT+0", "+00:00"}


@dataclass(frozen=True)
class SourceTimezone:
    """A parsed timezone spec; `offset_minutes` for fixed offsets, else `zone`."""

    spec: str
    offset_minutes: int | None = None
    zone: str | None = None

    def to_utc(self, naive: pl.Expr) -> pl.Expr:
        """Naive local timestamps -> UTC; local times that do not exist become null."""
        if self.spec == NEW_YORK_CLOSE_SERVER:
            return FxCalendar(DayClose.NEW_YORK_17).from_session_clock(naive)
        if self.zone is not None:
            return naive.dt.replace_time_zone(
                self.zone, ambiguous="earliest", non_existent="null"
            ).dt.convert_time_zone("UTC")
        return (naive - pl.duration(minutes=self.offset_minutes or 0)).dt.replace_time_zone("UTC")


def parse_timezone(spec: str) -> SourceTimezone:
    """Parse a timezone spec (see the module docstring), explaining what is accepted."""
    text = spec.strip()
    if text.upper() in _UTC_NAMES:
        return SourceTimezone("UTC", offset_minutes=0)
    if text.upper().replace(" ", "") in {"NY+7", "NEWYORK+7", "NY_CLOSE"}:
        return SourceTimezone(NEW_YORK_CLOSE_SERVER)
    match = _OFFSET_RE.match(text)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if minutes >= 60 or hours * 60 + minutes > 14 * 60:
            raise ValueError(f"timezone={spec!r}: offsets must lie within -14:00..+14:00.")
        total = (hours * 60 + minutes) * (1 if sign == "+" else -1)
        return SourceTimezone(f"{sign}{hours:02d}:{minutes:02d}", offset_minutes=total)
    if text in available_timezones():
        return SourceTimezone(text, zone=text)
    raise ValueError(
        f"timezone={spec!r} is not understood; use 'UTC', a fixed offset such as '+02:00', "
        "an IANA zone such as 'Europe/London', or 'NY+7' for the usual MetaTrader server "
        "clock (New York time + 7 h)."
    )
