"""The look-ahead audit passes the real pipeline's matrix and catches a planted leak."""

import polars as pl
import pytest

from forex_assets.features.feature_config import FeatureSettings, parse_indicators
from forex_assets.features.feature_matrix import (
    KEY_COLUMNS,
    build_feature_matrix,
    higher_timeframes,
    prefixed,
)
from forex_assets.features.hygiene import clean_feature_columns
from forex_assets.features.indicator_set import compute_indicators
from forex_assets.features.look_ahead import audit_look_ahead
from forex_assets.ingest.sample import generate_sample_m1
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.market.resample import resample_bars
from forex_assets.market.timeframes import Timeframe

CALENDAR = FxCalendar()
SETTINGS = FeatureSettings(
    indicators=tuple(parse_indicators({"ema": [3, 8], "rsi": [5], "atr": [3], "candle": True}))
)


@pytest.fixture(scope="module")
def m1() -> pl.DataFrame:
    return generate_sample_m1("EURUSD", years=0.08, seed=3)


@pytest.fixture(scope="module")
def matrix(m1) -> pl.DataFrame:
    """Built exactly as the assets build it: float32 features cleaned per timeframe."""
    base = SETTINGS.base_timeframe
    bars = {tf: resample_bars(m1, tf, CALENDAR) for tf in [base, *higher_timeframes(base)]}
    features = {}
    for tf, frame in bars.items():
        computed = compute_indicators(frame, SETTINGS.indicators, float32=True)
        names = [c for c in computed.columns if c not in KEY_COLUMNS]
        features[tf] = clean_feature_columns(computed, names, SETTINGS.max_warmup_share)[0]
    return build_feature_matrix(features, bars, SETTINGS).frame


def test_the_pipelines_matrix_has_no_look_ahead(m1, matrix):
    report = audit_look_ahead(m1, matrix, SETTINGS, CALENDAR)
    assert report.passed, report.first_mismatch
    assert report.rows_compared > 1000 and report.values_compared > 10 * report.rows_compared


@pytest.mark.parametrize("cut_share", [0.2, 0.5, 0.9])
def test_any_cut_finds_nothing(m1, matrix, cut_share):
    assert audit_look_ahead(m1, matrix, SETTINGS, CALENDAR, cut_share).mismatches == 0


def test_a_feature_shifted_one_bar_into_the_future_is_caught(m1, matrix):
    column = prefixed(Timeframe.M5, "rsi_5")
    leaky = matrix.with_columns(pl.col(column).shift(-1))
    report = audit_look_ahead(m1, leaky, SETTINGS, CALENDAR)
    assert not report.passed
    assert report.mismatches > 100
    assert report.first_mismatch is not None and report.first_mismatch["column"] == column


def test_a_higher_timeframe_joined_on_its_open_is_caught(m1, matrix):
    """Each row gets the H1 value of the bar *after* the one it should see."""
    column = prefixed(Timeframe.H1, "ema_8")
    h1 = matrix.select("close_time", column).unique(column, keep="first", maintain_order=True)
    ahead = h1.with_columns(pl.col(column).shift(-1).alias("next_value"))
    leaky = (
        matrix.join(ahead.select(column, "next_value"), on=column, how="left")
        .with_columns(pl.col("next_value").alias(column))
        .drop("next_value")
    )
    report = audit_look_ahead(m1, leaky, SETTINGS, CALENDAR)
    assert not report.passed and report.first_mismatch["column"] == column


def test_a_cut_share_outside_zero_one_is_refused(m1, matrix):
    with pytest.raises(ValueError, match="cut_share"):
        audit_look_ahead(m1, matrix, SETTINGS, CALENDAR, cut_share=1.0)
