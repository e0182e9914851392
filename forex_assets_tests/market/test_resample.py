"""Resampling on the FX session clock, checked against a plain-Python reference."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from forex_assets.market.bar_schema import M1_SCHEMA
from forex_assets.market.fx_calendar import DayClose, FxCalendar, in_weekend_closure
from forex_assets.market.resample import resample_bars
from forex_assets.market.timeframes import Timeframe
from forex_assets_tests.conftest import m1_frame, utc

NEW_YORK = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")


def _session(t: datetime, day_close: DayClose) -> datetime:
    if day_close is DayClose.UTC_MIDNIGHT:
        return t.astimezone(UTC).replace(tzinfo=None)
    return t.astimezone(NEW_YORK).replace(tzinfo=None) + timedelta(hours=7)


def _from_session(s: datetime, day_close: DayClose) -> datetime:
    if day_close is DayClose.UTC_MIDNIGHT:
        return s.replace(tzinfo=UTC)
    return (s - timedelta(hours=7)).replace(tzinfo=NEW_YORK).astimezone(UTC)


def _bucket(s: datetime, tf: Timeframe, day_close: DayClose) -> tuple[datetime, datetime]:
    """Reference bar open and close on the session clock, written out by hand."""
    midnight = s.replace(hour=0, minute=0, second=0, microsecond=0)
    if tf is Timeframe.MN1:
        start = midnight.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return start, end
    if tf is Timeframe.W1:
        first_weekday = 6 if day_close is DayClose.UTC_MIDNIGHT else 0  # Sunday / Monday
        start = midnight - timedelta(days=(s.weekday() - first_weekday) % 7)
        return start, start + timedelta(days=7)
    minutes = tf.nominal_minutes
    of_day = (s - midnight).total_seconds() // 60
    start = midnight + timedelta(minutes=of_day // minutes * minutes)
    return start, start + timedelta(minutes=minutes)


def _reference(m1: pl.DataFrame, tf: Timeframe, day_close: DayClose) -> list[dict]:
    groups: dict[datetime, list[dict]] = {}
    ends = {}
    for row in m1.iter_rows(named=True):
        start, end = _bucket(_session(row["time"], day_close), tf, day_close)
        groups.setdefault(start, []).append(row)
        ends[start] = end
    data_end = m1.get_column("time").max() + timedelta(minutes=1)
    out = []
    for start, rows in groups.items():
        close_time = _from_session(ends[start], day_close)
        volumes = [r["volume"] for r in rows if r["volume"] is not None]
        out.append(
            {
                "time": _from_session(start, day_close),
                "close_time": close_time,
                "open": rows[0]["open"],
                "high": max(r["high"] for r in rows),
                "low": min(r["low"] for r in rows),
                "close": rows[-1]["close"],
                "volume": sum(volumes) if volumes else None,
                "bar_count": len(rows),
                "complete": close_time <= data_end,
            }
        )
    return out


@st.composite
def m1_bars(draw):
    """Sorted, unique, in-session M1 bars spread over several weeks (DST switches included)."""
    start = draw(
        st.sampled_from([utc(2024, 3, 1), utc(2024, 10, 25), utc(2023, 12, 25), utc(2024, 6, 27)])
    )
    offsets = draw(st.lists(st.integers(0, 40 * 1440), min_size=1, max_size=120, unique=True))
    times = sorted(start + timedelta(minutes=o) for o in offsets)
    frame = pl.DataFrame({"time": times}, schema={"time": M1_SCHEMA["time"]})
    frame = frame.filter(~in_weekend_closure(pl.col("time")))
    n = frame.height
    assume(n > 0)
    prices = draw(st.lists(st.floats(1.0, 2.0), min_size=n, max_size=n))
    volumes = draw(st.lists(st.one_of(st.none(), st.floats(0, 100)), min_size=n, max_size=n))
    closes = [min(max(c, p - 0.001), p + 0.001) for p, c in zip(prices, prices[::-1], strict=True)]
    return frame.with_columns(
        open=pl.Series(prices, dtype=pl.Float64),
        high=pl.Series(prices, dtype=pl.Float64) + 0.001,
        low=pl.Series(prices, dtype=pl.Float64) - 0.001,
        close=pl.Series(closes, dtype=pl.Float64),
        volume=pl.Series(volumes, dtype=pl.Float64),
        spread=pl.lit(None, pl.Float64),
    ).select(list(M1_SCHEMA))


@settings(max_examples=60, deadline=None)
@given(m1=m1_bars(), tf=st.sampled_from(list(Timeframe)), day_close=st.sampled_from(list(DayClose)))
def test_resample_matches_reference(m1, tf, day_close):
    bars = resample_bars(m1, tf, FxCalendar(day_close))
    expected = _reference(m1, tf, day_close)
    got = bars.drop("spread").to_dicts()
    assert len(got) == len(expected)
    for row, ref in zip(got, expected, strict=True):
        for column, value in ref.items():
            if isinstance(value, float):
                assert row[column] == pytest.approx(value), column
            else:
                assert row[column] == value, column


def test_daily_bars_close_at_17_new_york_in_winter_and_summer():
    calendar = FxCalendar(DayClose.NEW_YORK_17)
    winter = m1_frame(utc(2024, 1, 9, 21, 58), [1.1, 1.2, 1.3, 1.4])  # 16:58 .. 17:01 EST
    summer = m1_frame(utc(2024, 7, 9, 20, 58), [1.1, 1.2, 1.3, 1.4])  # 16:58 .. 17:01 EDT
    for frame, cut in ((winter, utc(2024, 1, 9, 22)), (summer, utc(2024, 7, 9, 21))):
        d1 = resample_bars(frame, Timeframe.D1, calendar)
        assert d1.get_column("time").to_list() == [cut - timedelta(days=1), cut]
        assert d1.get_column("close_time").to_list() == [cut, cut + timedelta(days=1)]
        assert d1.get_column("bar_count").to_list() == [2, 2]
        assert d1.get_column("close").to_list() == [1.2, 1.4]


def test_utc_midnight_daily_and_sunday_weeks():
    calendar = FxCalendar(DayClose.UTC_MIDNIGHT)
    # Sunday 2024-01-14 22:00 UTC (market open) through Monday 00:01 UTC.
    frame = m1_frame(utc(2024, 1, 14, 23, 59), [1.1, 1.2, 1.3])
    d1 = resample_bars(frame, Timeframe.D1, calendar)
    assert d1.get_column("time").to_list() == [utc(2024, 1, 14), utc(2024, 1, 15)]
    w1 = resample_bars(frame, Timeframe.W1, calendar)
    assert w1.get_column("time").to_list() == [utc(2024, 1, 14)]


def test_week_opens_sunday_17_new_york():
    calendar = FxCalendar(DayClose.NEW_YORK_17)
    friday = m1_frame(utc(2024, 1, 12, 21, 58), [1.1, 1.2])  # Friday 16:58, 16:59 EST
    sunday = m1_frame(utc(2024, 1, 14, 22, 0), [1.3, 1.4])  # Sunday 17:00, 17:01 EST
    w1 = resample_bars(pl.concat([friday, sunday]), Timeframe.W1, calendar)
    assert w1.get_column("time").to_list() == [utc(2024, 1, 7, 22), utc(2024, 1, 14, 22)]
    # A week closes when the next one opens: Sunday 17:00 New York.
    assert w1.get_column("close_time").to_list() == [utc(2024, 1, 14, 22), utc(2024, 1, 21, 22)]
    assert w1.get_column("complete").to_list() == [True, False]


def test_month_starts_at_previous_day_17_new_york():
    calendar = FxCalendar(DayClose.NEW_YORK_17)
    # Wednesday 2024-07-31 16:59 EDT belongs to July, 17:00 EDT to August's first trading day.
    frame = m1_frame(utc(2024, 7, 31, 20, 59), [1.1, 1.2])
    mn1 = resample_bars(frame, Timeframe.MN1, calendar)
    assert mn1.get_column("time").to_list() == [utc(2024, 6, 30, 21), utc(2024, 7, 31, 21)]
    assert mn1.get_column("bar_count").to_list() == [1, 1]


def test_h4_boundaries_follow_the_new_york_close():
    calendar = FxCalendar(DayClose.NEW_YORK_17)
    winter = resample_bars(m1_frame(utc(2024, 1, 9, 22), [1.1] * 300), Timeframe.H4, calendar)
    summer = resample_bars(m1_frame(utc(2024, 7, 9, 21), [1.1] * 300), Timeframe.H4, calendar)
    assert [t.hour for t in winter.get_column("time")] == [22, 2]
    assert [t.hour for t in summer.get_column("time")] == [21, 1]


def test_incomplete_trailing_bar_is_marked_not_dropped():
    calendar = FxCalendar(DayClose.NEW_YORK_17)
    frame = m1_frame(utc(2024, 1, 9, 10, 0), [1.1] * 90)  # 10:00 .. 11:29 UTC
    h1 = resample_bars(frame, Timeframe.H1, calendar)
    assert h1.get_column("complete").to_list() == [True, False]
    assert h1.get_column("bar_count").to_list() == [60, 30]
    exact = resample_bars(frame.head(60), Timeframe.H1, calendar)
    assert exact.get_column("complete").to_list() == [True]


def test_volume_is_null_only_when_no_minute_had_volume():
    calendar = FxCalendar(DayClose.NEW_YORK_17)
    frame = m1_frame(utc(2024, 1, 9, 10, 0), [1.1] * 120).with_columns(
        volume=pl.when(pl.col("time") < utc(2024, 1, 9, 11)).then(None).otherwise(pl.lit(2.0))
    )
    h1 = resample_bars(frame, Timeframe.H1, calendar)
    assert h1.get_column("volume").to_list() == [None, 120.0]


def test_empty_input_gives_empty_bars():
    empty = pl.DataFrame(schema=M1_SCHEMA)
    assert resample_bars(empty, Timeframe.H1, FxCalendar()).height == 0
