from datetime import timedelta

import polars as pl

from forex_assets.market import bar_integrity
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.market.timeframes import Timeframe
from forex_assets_tests.conftest import m1_frame, utc


def _bars():
    return m1_frame(utc(2024, 1, 9, 10), [1.1, 1.2, 1.15, 1.18, 1.2])


def test_clean_bars_pass_every_check():
    bars = _bars()
    assert bar_integrity.monotonic_utc_index(bars).passed
    assert bar_integrity.unique_timestamps(bars).passed
    assert bar_integrity.ohlc_consistency(bars).passed
    assert bar_integrity.session_coverage(bars, Timeframe.M1, FxCalendar(), 1.0).passed


def test_backward_step_and_duplicates_are_counted():
    bars = _bars()
    shuffled = pl.concat([bars.slice(2), bars.slice(0, 2)])
    result = bar_integrity.monotonic_utc_index(shuffled)
    assert not result.passed
    assert result.details["backward_steps"] == 1
    doubled = pl.concat([bars, bars.slice(1, 1)]).sort("time")
    assert bar_integrity.unique_timestamps(doubled).details["duplicated_rows"] == 2


def test_naive_times_fail_the_utc_check():
    naive = _bars().with_columns(pl.col("time").dt.replace_time_zone(None))
    assert not bar_integrity.monotonic_utc_index(naive).passed


def test_ohlc_violations_are_counted():
    bars = _bars().with_columns(
        high=pl.when(pl.col("time") == utc(2024, 1, 9, 10, 1)).then(0.5).otherwise(pl.col("high")),
        low=pl.when(pl.col("time") == utc(2024, 1, 9, 10, 3))
        .then(float("nan"))
        .otherwise(pl.col("low")),
    )
    result = bar_integrity.ohlc_consistency(bars)
    assert not result.passed
    assert result.details["inconsistent_rows"] == 2


def test_coverage_counts_missing_trading_minutes_but_not_weekends():
    friday_to_monday = pl.concat(
        [
            m1_frame(utc(2024, 1, 12, 21, 50), [1.1] * 10),
            m1_frame(utc(2024, 1, 14, 22, 0), [1.1] * 10),
        ]
    )
    full = bar_integrity.session_coverage(friday_to_monday, Timeframe.M1, FxCalendar(), 1.0)
    assert full.passed and full.details["expected_bars"] == 20
    holed = friday_to_monday.filter(pl.col("time") != utc(2024, 1, 14, 22, 5))
    partial = bar_integrity.session_coverage(holed, Timeframe.M1, FxCalendar(), 0.99)
    assert not partial.passed and partial.details["observed_bars"] == 19
    empty = bar_integrity.session_coverage(holed.clear(), Timeframe.M1, FxCalendar(), 0.5)
    assert not empty.passed and empty.details["reason"] == "no bars"


def test_coverage_on_higher_timeframes():
    bars = m1_frame(utc(2024, 1, 9, 10), [1.1] * 300)
    h1 = bars.group_by_dynamic("time", every="1h").agg(pl.col("open").first())
    h1 = h1.with_columns(high=pl.col("open"), low=pl.col("open"), close=pl.col("open"))
    result = bar_integrity.session_coverage(
        h1.filter(pl.col("time") != utc(2024, 1, 9, 12)), Timeframe.H1, FxCalendar(), 0.9
    )
    assert result.details["expected_bars"] == 5 and result.details["observed_bars"] == 4
    assert not result.passed
    assert utc(2024, 1, 9, 10) + timedelta(hours=4) == h1.get_column("time").max()
