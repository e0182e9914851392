"""The session clock and weekend closure, across both US DST switches."""

import polars as pl
import pytest

from forex_assets.market.fx_calendar import DayClose, FxCalendar, in_weekend_closure
from forex_assets_tests.conftest import utc


def _eval(expr: pl.Expr, times) -> list:
    return pl.DataFrame({"t": times}).select(expr.alias("out")).get_column("out").to_list()


@pytest.mark.parametrize(
    ("instant", "closed"),
    [
        (utc(2024, 1, 12, 21, 59), False),  # Friday 16:59 EST
        (utc(2024, 1, 12, 22, 0), True),  # Friday 17:00 EST
        (utc(2024, 1, 14, 21, 59), True),  # Sunday 16:59 EST
        (utc(2024, 1, 14, 22, 0), False),  # Sunday 17:00 EST
        (utc(2024, 7, 12, 20, 59), False),  # Friday 16:59 EDT
        (utc(2024, 7, 12, 21, 0), True),  # Friday 17:00 EDT
        (utc(2024, 7, 14, 20, 59), True),
        (utc(2024, 7, 14, 21, 0), False),
        (utc(2024, 3, 10, 20, 59), True),  # Sunday of the spring-forward switch
        (utc(2024, 3, 10, 21, 0), False),
        (utc(2024, 11, 3, 21, 59), True),  # Sunday of the fall-back switch
        (utc(2024, 11, 3, 22, 0), False),
    ],
)
def test_weekend_closure_follows_new_york_dst(instant, closed):
    assert _eval(in_weekend_closure(pl.col("t")), [instant]) == [closed]


@pytest.mark.parametrize("day_close", list(DayClose))
def test_session_clock_round_trips(day_close):
    calendar = FxCalendar(day_close)
    times = [
        utc(2024, 3, 8, 21, 0),
        utc(2024, 3, 11, 13, 37),
        utc(2024, 11, 4, 2, 0),
        utc(2024, 6, 30, 23, 59),
    ]
    back = _eval(calendar.from_session_clock(calendar.to_session_clock(pl.col("t"))), times)
    assert back == times


def test_new_york_close_is_session_midnight():
    calendar = FxCalendar(DayClose.NEW_YORK_17)
    # 17:00 New York is 22:00 UTC in winter and 21:00 UTC in summer.
    winter, summer = _eval(
        calendar.to_session_clock(pl.col("t")), [utc(2024, 1, 9, 22, 0), utc(2024, 7, 9, 21, 0)]
    )
    assert (winter.hour, winter.minute, winter.day) == (0, 0, 10)
    assert (summer.hour, summer.minute, summer.day) == (0, 0, 10)
