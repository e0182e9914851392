"""The embedded sample generator: deterministic, valid, and shaped like FX."""

import io
from datetime import date

import numpy as np
import polars as pl
import pytest

from forex_assets.ingest.sample import SAMPLE_PROFILES, generate_sample_m1
from forex_assets.market import bar_integrity
from forex_assets.market.fx_calendar import FxCalendar, in_weekend_closure
from forex_assets.market.instruments import instrument_for
from forex_assets.market.timeframes import Timeframe

YEARS = 0.25


@pytest.fixture(scope="module")
def eurusd() -> pl.DataFrame:
    return generate_sample_m1("EURUSD", years=YEARS)


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def test_same_seed_gives_identical_bytes(eurusd):
    again = generate_sample_m1("EURUSD", years=YEARS)
    assert _parquet_bytes(again) == _parquet_bytes(eurusd)


def test_other_seed_or_symbol_gives_other_bars(eurusd):
    assert not generate_sample_m1("EURUSD", years=YEARS, seed=7).equals(eurusd)
    gbp = generate_sample_m1("GBPUSD", years=YEARS)
    assert not np.allclose(
        gbp.get_column("close").to_numpy()[:100] / 1.2085,
        eurusd.get_column("close").to_numpy()[:100] / 1.0705,
    )


def test_at_least_the_four_majors_have_profiles():
    assert {"EURUSD", "GBPUSD", "USDJPY", "AUDUSD"} <= set(SAMPLE_PROFILES)


@pytest.mark.parametrize("symbol", list(SAMPLE_PROFILES))
def test_bars_pass_integrity_and_sit_on_the_quote_grid(symbol):
    bars = generate_sample_m1(symbol, years=0.05)
    assert bar_integrity.monotonic_utc_index(bars).passed
    assert bar_integrity.unique_timestamps(bars).passed
    assert bar_integrity.ohlc_consistency(bars).passed
    assert bar_integrity.session_coverage(bars, Timeframe.M1, FxCalendar(), 0.999).passed
    decimals = instrument_for(symbol).price_decimals
    for column in ("open", "high", "low", "close"):
        values = bars.get_column(column).to_numpy()
        assert np.allclose(values, np.round(values, decimals), rtol=0, atol=1e-12)
    profile = SAMPLE_PROFILES[symbol]
    assert 0.7 * profile.start_price < bars.get_column("close").median() < 1.3 * profile.start_price


def test_two_years_by_default_without_weekend_bars():
    bars = generate_sample_m1("USDJPY")
    span = bars.get_column("time").max() - bars.get_column("time").min()
    assert 725 <= span.days <= 731
    assert bars.height == pytest.approx(2 * 52 * 5 * 1440, rel=0.01)
    assert not bars.select(in_weekend_closure(pl.col("time")).any()).item()


def _returns(bars: pl.DataFrame) -> pl.DataFrame:
    return bars.with_columns(
        r=pl.col("close").log().diff(),
        hour=pl.col("time").dt.hour(),
        gap=pl.col("time").diff().dt.total_minutes(),
    ).filter(pl.col("gap") == 1)


def test_intraday_volatility_seasonality(eurusd):
    by_hour = _returns(eurusd).group_by("hour").agg(pl.col("r").std().alias("vol")).sort("hour")
    vol = dict(zip(by_hour.get_column("hour"), by_hour.get_column("vol"), strict=True))
    assert vol[13] > 1.5 * vol[4]  # London/New York overlap vs late Asia
    assert vol[13] > 1.5 * vol[21]  # vs the rollover hour


def test_volatility_clusters(eurusd):
    absolute = _returns(eurusd).get_column("r").abs().to_numpy()
    lag = 60
    correlation = np.corrcoef(absolute[:-lag], absolute[lag:])[0, 1]
    assert correlation > 0.05  # a random walk with constant volatility gives ~0


def test_spreads_realistic_and_wider_at_rollover(eurusd):
    pips = eurusd.with_columns(pips=pl.col("spread") / 0.0001, hour=pl.col("time").dt.hour())
    assert 0.3 < pips.get_column("pips").median() < 2.0
    by_hour = pips.group_by("hour").agg(pl.col("pips").mean()).sort("hour")
    spread = dict(zip(by_hour.get_column("hour"), by_hour.get_column("pips"), strict=True))
    assert spread[21] > 2 * spread[13]


def test_weekend_reopen_gaps(eurusd):
    frame = eurusd.with_columns(
        gap=pl.col("time").diff().dt.total_minutes(), prev_close=pl.col("close").shift()
    )
    reopens = frame.filter(pl.col("gap") > 1)
    assert reopens.height >= 10
    assert (reopens.get_column("open") != reopens.get_column("prev_close")).mean() > 0.8


def test_unknown_symbol_and_bad_length_are_explained():
    with pytest.raises(KeyError, match="no sample profile"):
        generate_sample_m1("EURNOK")
    with pytest.raises(ValueError, match="years=0"):
        generate_sample_m1("EURUSD", years=0)


def test_a_length_inside_the_weekend_closure_is_refused_not_empty():
    # 2023-01-01 is a Sunday: the market reopens at 22:00 UTC, after these 8.8 hours.
    with pytest.raises(ValueError) as info:
        generate_sample_m1("EURUSD", start=date(2023, 1, 1), years=0.001)
    assert str(info.value).startswith(
        "years=0.001 from 2023-01-01 spans 8.8 hours, all inside the FX weekend closure"
    )
    assert generate_sample_m1("EURUSD", start=date(2023, 1, 1), years=0.003).height > 0
