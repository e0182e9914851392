"""The FX trading calendar: when a trading day ends, when the week opens and closes.

Spot FX trades around the clock from Sunday 17:00 to Friday 17:00 New York time, and the
industry closes its daily bar at 17:00 New York (DST-aware), so a week has five daily bars.
Everything here works on a *session clock*: a naive wall clock whose midnight is the
configured daily close. With the New York close that clock is New York local time + 7 h
(the "GMT+2/+3 with US DST" server time most MetaTrader brokers run), so trading days,
H2/H4 boundaries, weeks and months are plain calendar truncations on that clock and stay
correct across both the US and the European DST switches.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import polars as pl

NEW_YORK = "America/New_York"
# New York 17:00 + 7 h = 00:00 of the next trading day.
NEW_YORK_CLOSE_SHIFT_HOURS = 7


class DayClose(StrEnum):
    """Where a daily bar ends."""

    NEW_YORK_17 = "new_york_17"
    UTC_MIDNIGHT = "utc_midnight"


@dataclass(frozen=True)
class FxCalendar:
    """Session-clock conversions for one daily-close convention.

    The weekend closure is a market fact (Friday 17:00 to Sunday 17:00 New York) and does
    not depend on where the daily bar is cut; only bar boundaries do.
    """

    day_close: DayClose = DayClose.NEW_YORK_17

    def to_session_clock(self, utc: pl.Expr) -> pl.Expr:
        """UTC timestamps -> naive session-clock timestamps (midnight = daily close)."""
        if self.day_close is DayClose.UTC_MIDNIGHT:
            return utc.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return _new_york_session_clock(utc)

    def from_session_clock(self, session: pl.Expr) -> pl.Expr:
        """Naive session-clock timestamps -> UTC.

        Bar boundaries on the New York clock never fall inside the Sunday 01:00-03:00 DST
        switch (the market is closed then), so the ambiguity choice never matters for them.
        """
        if self.day_close is DayClose.UTC_MIDNIGHT:
            return session.dt.replace_time_zone("UTC")
        return (
            (session - pl.duration(hours=NEW_YORK_CLOSE_SHIFT_HOURS))
            .dt.replace_time_zone(NEW_YORK, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC")
        )

    @property
    def week_starts_on_sunday(self) -> bool:
        """FX weeks open on Sunday evening: Monday 00:00 on the New York clock, Sunday in UTC."""
        return self.day_close is DayClose.UTC_MIDNIGHT


def _new_york_session_clock(utc: pl.Expr) -> pl.Expr:
    return utc.dt.convert_time_zone(NEW_YORK).dt.replace_time_zone(None) + pl.duration(
        hours=NEW_YORK_CLOSE_SHIFT_HOURS
    )


def in_weekend_closure(utc: pl.Expr) -> pl.Expr:
    """True for instants between Friday 17:00 and Sunday 17:00 New York time.

    On the New York session clock the closure is exactly Saturday and Sunday, which keeps
    the test DST-correct without a table of switch dates.
    """
    return _new_york_session_clock(utc).dt.weekday() >= 6
