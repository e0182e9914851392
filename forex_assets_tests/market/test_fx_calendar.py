"""The session clock and weekend closure, across both US DST switches."""

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forex_assets.market.fx_calendar import (
    DEFAULT_CALENDAR,
    DayClose,
    FxCalendar,
    in_weekend_closure,
    week_minutes,
    weekday,
)
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


def utc_us(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000


def day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def test_trading_day_follows_new_york_across_the_dst_switch():
    exits = np.array(
        [
            utc_us(2024, 3, 8, 21, 30),  # Friday 16:30 EST: Friday
            utc_us(2024, 3, 10, 21, 1),  # Sunday 17:01 EDT, the week's open: Monday
            utc_us(2024, 3, 11, 21, 30),  # Monday 17:30 EDT: Tuesday
        ]
    )
    expected = [date(2024, 3, 8), date(2024, 3, 11), date(2024, 3, 12)]
    assert DEFAULT_CALENDAR.trading_day(exits).tolist() == [day_number(d) for d in expected]


@pytest.mark.parametrize(
    ("instant", "since_open", "to_close"),
    [
        (utc_us(2024, 7, 14, 21, 0), 0.0, 7_200.0),  # Sunday 17:00 EDT: the week opens
        (utc_us(2024, 7, 15, 21, 0), 1_440.0, 5_760.0),  # Monday 17:00 EDT
        (utc_us(2024, 7, 12, 20, 59), 7_199.0, 1.0),  # Friday 16:59 EDT
        (utc_us(2024, 7, 13, 16, 0), 8_340.0, -1_140.0),  # Saturday 12:00 EDT: closed
        (utc_us(2024, 7, 14, 20, 59), 10_079.0, -2_879.0),  # Sunday 16:59 EDT: still closed
        (utc_us(2024, 1, 14, 22, 0), 0.0, 7_200.0),  # Sunday 17:00 EST
        (utc_us(2024, 1, 12, 21, 59), 7_199.0, 1.0),  # Friday 16:59 EST
        (utc_us(2024, 1, 10, 17, 30), 2 * 1_440 + 19.5 * 60, 7_200 - (2 * 1_440 + 19.5 * 60)),
    ],
)
def test_week_minutes_on_known_instants(instant, since_open, to_close):
    assert week_minutes(instant) == pytest.approx((since_open, to_close))


def test_weekday_numbers_monday_as_zero():
    assert weekday(
        np.array([day_number(date(1970, 1, 1)), day_number(date(2024, 7, 15))])
    ).tolist() == [3, 0]


@pytest.mark.parametrize("close", list(DayClose))
@given(st.integers(0, 4_000_000_000).map(lambda s: s * 1_000_000))
def test_each_day_opens_at_its_own_first_instant(close, instant):
    calendar = FxCalendar(close)
    day = calendar.trading_day(np.array([instant]))
    opens = calendar.day_open_us(day)
    assert opens[0] <= instant
    assert calendar.trading_day(opens).tolist() == day.tolist()
    assert calendar.trading_day(opens - 1).tolist() == (day - 1).tolist()


def test_utc_midnight_days_are_utc_dates():
    instant = utc_us(
        2024, 7, 12, 23, 30
    )  # Friday 19:30 New York, after the close: Saturday on the New York clock
    assert DEFAULT_CALENDAR.trading_day(np.array([instant]))[0] == day_number(date(2024, 7, 13))
    utc_days = FxCalendar(DayClose.UTC_MIDNIGHT).trading_day(np.array([instant]))
    assert utc_days[0] == day_number(date(2024, 7, 12))
