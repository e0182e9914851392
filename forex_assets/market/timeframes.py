"""The eleven chart timeframes and how a session-clock timestamp maps to its bar."""

from __future__ import annotations

from enum import StrEnum

import polars as pl

from forex_assets.market.fx_calendar import FxCalendar


class Timeframe(StrEnum):
    """Chart timeframes in MetaTrader naming; values are the names users type."""

    M1 = "M1"
    M3 = "M3"
    M5 = "M5"
    M15 = "M15"
    M30 = "M30"
    H1 = "H1"
    H2 = "H2"
    H4 = "H4"
    D1 = "D1"
    W1 = "W1"
    MN1 = "MN1"

    @property
    def every(self) -> str:
        """The polars duration string of one bar."""
        return _EVERY[self]

    @property
    def nominal_minutes(self) -> int:
        """Bar length in minutes (30 days for MN1); used for sizing, never for boundaries."""
        return _NOMINAL_MINUTES[self]

    @property
    def asset_name(self) -> str:
        return self.value.lower()

    @classmethod
    def parse(cls, raw: str) -> Timeframe:
        try:
            return cls(raw.upper())
        except ValueError:
            raise ValueError(
                f"timeframe={raw!r} is not one of {', '.join(t.value for t in cls)}; "
                "use MetaTrader names such as 'M5' or 'H4'."
            ) from None


_EVERY = {
    Timeframe.M1: "1m",
    Timeframe.M3: "3m",
    Timeframe.M5: "5m",
    Timeframe.M15: "15m",
    Timeframe.M30: "30m",
    Timeframe.H1: "1h",
    Timeframe.H2: "2h",
    Timeframe.H4: "4h",
    Timeframe.D1: "1d",
    Timeframe.W1: "1w",
    Timeframe.MN1: "1mo",
}
_NOMINAL_MINUTES = {
    Timeframe.M1: 1,
    Timeframe.M3: 3,
    Timeframe.M5: 5,
    Timeframe.M15: 15,
    Timeframe.M30: 30,
    Timeframe.H1: 60,
    Timeframe.H2: 120,
    Timeframe.H4: 240,
    Timeframe.D1: 1440,
    Timeframe.W1: 7 * 1440,
    Timeframe.MN1: 30 * 1440,
}


def bar_open_session(session: pl.Expr, timeframe: Timeframe, calendar: FxCalendar) -> pl.Expr:
    """The session-clock open of the bar containing each session-clock timestamp."""
    if timeframe is Timeframe.W1 and calendar.week_starts_on_sunday:
        # polars weeks start on Monday; shift so that Sunday lands on the week's first day.
        one_day = pl.duration(days=1)
        return (session + one_day).dt.truncate("1w") - one_day
    return session.dt.truncate(timeframe.every)


def bar_close_session(open_session: pl.Expr, timeframe: Timeframe) -> pl.Expr:
    """The session-clock close (exclusive end) of bars given their session-clock opens."""
    return open_session.dt.offset_by(timeframe.every)
