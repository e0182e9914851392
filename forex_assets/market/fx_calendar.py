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

import numpy as np
import polars as pl

from forex_assets.market.sessions import MINUTES_PER_DAY, US_PER_HOUR, US_PER_MINUTE, utc_offsets_us

NEW_YORK = "America/New_York"
# New York 17:00 + 7 h = 00:00 of the next trading day.
NEW_YORK_CLOSE_SHIFT_HOURS = 7
US_PER_DAY = MINUTES_PER_DAY * US_PER_MINUTE
# Trading days are numbered from the epoch: day 0, 1970-01-01, was a Thursday.
EPOCH_WEEKDAY = 3
# The FX week: Monday 00:00 to Saturday 00:00 on the New York session clock.
WEEK_MINUTES = 5 * MINUTES_PER_DAY


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

    def trading_day(self, utc_us: np.ndarray) -> np.ndarray:
        """Trading day (days since 1970-01-01 on the session clock) of int64 UTC microseconds.

        With the New York close, 16:59 New York on a Tuesday is Tuesday and 17:01 is
        Wednesday, in summer and winter time alike; 17:00:00 itself is the session clock's
        midnight and starts the next day. Every day-keyed rule (daily loss, trades per day,
        swap nights, daily returns) counts days with this, so they all cut where the bars do.
        """
        utc_us = np.asarray(utc_us, dtype=np.int64)
        if self.day_close is DayClose.UTC_MIDNIGHT:
            return utc_us // US_PER_DAY
        session = (
            utc_us + utc_offsets_us(utc_us, NEW_YORK) + NEW_YORK_CLOSE_SHIFT_HOURS * US_PER_HOUR
        )
        return session // US_PER_DAY

    def day_open_us(self, day: np.ndarray) -> np.ndarray:
        """UTC microseconds at which each trading day (as `trading_day` numbers it) opens."""
        midnight = pl.Series("session", np.asarray(day, dtype=np.int64) * US_PER_DAY)
        frame = midnight.cast(pl.Datetime("us")).to_frame()
        return (
            frame.select(self.from_session_clock(pl.col("session")).dt.epoch("us"))
            .to_series()
            .to_numpy()
        )

    @property
    def week_starts_on_sunday(self) -> bool:
        """FX weeks open on Sunday evening: Monday 00:00 on the New York clock, Sunday in UTC."""
        return self.day_close is DayClose.UTC_MIDNIGHT


# The industry convention, for callers that are not told the configured close.
DEFAULT_CALENDAR = FxCalendar()


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


def weekday(day: np.ndarray) -> np.ndarray:
    """Weekday (Monday = 0) of trading-day numbers as `FxCalendar.trading_day` gives them."""
    return (np.asarray(day, dtype=np.int64) + EPOCH_WEEKDAY) % 7


def trading_month(day: np.ndarray) -> np.ndarray:
    """Month index ``year x 12 + month - 1`` of trading-day numbers: a trading day's month
    is its session-clock date's, so Friday's New York close belongs to Friday's month."""
    dates = np.asarray(day, dtype=np.int64).astype("datetime64[D]")
    return dates.astype("datetime64[M]").astype(np.int64) + 1970 * 12


def week_minutes(utc_us: int) -> tuple[float, float]:
    """(minutes since the FX week opened, minutes until it closes) at one UTC instant; the
    second is negative over the weekend. The week is a market fact (Sunday 17:00 to Friday
    17:00 New York), whatever the configured day close."""
    offset = int(utc_offsets_us(np.array([utc_us], dtype=np.int64), NEW_YORK)[0])
    session_us = utc_us + offset + NEW_YORK_CLOSE_SHIFT_HOURS * US_PER_HOUR
    day, within = divmod(session_us, US_PER_DAY)
    since_open = int(weekday(day)) * MINUTES_PER_DAY + within / US_PER_MINUTE
    return since_open, WEEK_MINUTES - since_open
