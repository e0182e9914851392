"""The feature matrix: as-of joins of completed bars only, confluence, and no look-ahead."""

from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from forex_assets.features.feature_config import (
    FeatureSettings,
    default_indicators,
    parse_indicators,
)
from forex_assets.features.feature_matrix import (
    CONFLUENCE_TREND,
    TooFewBarsError,
    assemble_feature_matrix,
    build_feature_matrix,
    higher_timeframes,
    prefixed,
    trend_ema_periods,
    with_confluence,
)
from forex_assets.features.indicator_set import compute_indicators
from forex_assets.ingest.sample import generate_sample_m1
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.market.resample import resample_bars
from forex_assets.market.timeframes import Timeframe

# Short periods so that even daily bars of a few weeks warm up.
SPECS = parse_indicators(
    {
        "ema": [3, 8],
        "rsi": [5],
        "atr": [3],
        "bbands": [{"period": 5, "nbdev": 2.0}],
        "stoch": [{"k_period": 5, "k_smooth": 3, "d_period": 3}],
        "ewma_vol": [4],
        "candle": True,
        "session": True,
    }
)
BASE = Timeframe.M5
CALENDAR = FxCalendar()


@pytest.fixture(scope="module")
def m1() -> pl.DataFrame:
    # Spans a US DST switch (2024-03-10) and month ends.
    return generate_sample_m1("GBPUSD", start=date(2024, 2, 19), years=0.12, seed=7)


def features_of(m1: pl.DataFrame, specs=SPECS) -> dict[Timeframe, pl.DataFrame]:
    return {
        tf: compute_indicators(resample_bars(m1, tf, CALENDAR), specs)
        for tf in [BASE, *higher_timeframes(BASE)]
    }


def bars_of(m1: pl.DataFrame) -> dict[Timeframe, pl.DataFrame]:
    return {tf: resample_bars(m1, tf, CALENDAR) for tf in [BASE, *higher_timeframes(BASE)]}


def matrix_of(m1: pl.DataFrame, specs=SPECS) -> pl.DataFrame:
    matrix = assemble_feature_matrix(features_of(m1, specs), BASE)
    return with_confluence(matrix, bars_of(m1), BASE, trend_ema_periods(specs))


@pytest.fixture(scope="module")
def full_matrix(m1) -> pl.DataFrame:
    return matrix_of(m1)


@pytest.fixture(scope="module")
def default_matrix(m1) -> pl.DataFrame:
    return matrix_of(m1, default_indicators())


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fraction=st.floats(min_value=0.02, max_value=0.98))
def test_truncating_input_at_t_never_changes_rows_known_by_t(m1, full_matrix, fraction):
    times = m1.get_column("time")
    cut = times[int(fraction * (m1.height - 1))]
    truncated = matrix_of(m1.filter(pl.col("time") < cut))
    # A row is known when its base bar closes; rows of the truncated data all closed by t.
    assert truncated.get_column("close_time").max() <= cut
    known_by_cut = full_matrix.filter(pl.col("close_time") <= cut)
    assert_frame_equal(truncated, known_by_cut, check_exact=True)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fraction=st.floats(min_value=0.05, max_value=0.95))
def test_no_look_ahead_with_the_default_indicator_set(m1, default_matrix, fraction):
    cut = m1.get_column("time")[int(fraction * (m1.height - 1))]
    truncated = matrix_of(m1.filter(pl.col("time") < cut), default_indicators())
    expected = default_matrix.filter(pl.col("close_time") <= cut)
    assert_frame_equal(truncated, expected, check_exact=True)


def test_a_join_on_bar_open_times_would_be_caught(m1):
    """The property test's control: joining higher bars as of their *open* leaks."""
    features = features_of(m1)
    base = features[BASE].filter(pl.col("complete"))
    h4 = features[Timeframe.H4].select("time", pl.col("rsi_5").alias("h4_rsi"))
    leaky = base.join_asof(h4, on="time", strategy="backward")
    cut = m1.get_column("time")[m1.height // 2]
    truncated_m1 = m1.filter(pl.col("time") < cut)
    truncated_features = features_of(truncated_m1)
    h4_truncated = truncated_features[Timeframe.H4].select("time", pl.col("rsi_5").alias("h4_rsi"))
    leaky_truncated = (
        truncated_features[BASE]
        .filter(pl.col("complete"))
        .join_asof(h4_truncated, on="time", strategy="backward")
    )
    overlap = leaky.join(leaky_truncated, on="time", suffix="_truncated")
    assert (overlap.get_column("h4_rsi") != overlap.get_column("h4_rsi_truncated")).any()


def test_higher_timeframe_rows_are_the_last_bar_closed_by_the_row(m1, full_matrix):
    h4 = features_of(m1)[Timeframe.H4].filter(pl.col("complete"))
    for row in (
        full_matrix.filter(pl.col(prefixed(Timeframe.H4, "rsi_5")).is_not_nan())
        .sample(200, seed=1)
        .iter_rows(named=True)
    ):
        closed = h4.filter(pl.col("close_time") <= row["close_time"])
        assert row[prefixed(Timeframe.H4, "rsi_5")] == closed.get_column("rsi_5")[-1]


def test_rows_are_completed_base_bars_with_every_timeframe_prefixed(m1, full_matrix):
    m5 = resample_bars(m1, BASE, CALENDAR)
    assert full_matrix.height == m5.filter(pl.col("complete")).height
    assert "complete" not in full_matrix.columns
    for tf in [BASE, *higher_timeframes(BASE)]:
        assert prefixed(tf, "rsi_5") in full_matrix.columns


def test_confluence_is_the_mean_trend_vote(full_matrix):
    timeframes = [BASE, *higher_timeframes(BASE)]
    row = full_matrix.filter(pl.col(CONFLUENCE_TREND).is_not_nan()).row(-1, named=True)
    votes = [
        (row[prefixed(tf, "ema_3")] > row[prefixed(tf, "ema_8")])
        - (row[prefixed(tf, "ema_3")] < row[prefixed(tf, "ema_8")])
        for tf in timeframes
        if row[prefixed(tf, "ema_8")] == row[prefixed(tf, "ema_8")]
    ]
    assert row[CONFLUENCE_TREND] == pytest.approx(sum(votes) / len(votes))
    assert full_matrix.get_column(CONFLUENCE_TREND).fill_nan(0.0).min() >= -1.0
    assert full_matrix.get_column(CONFLUENCE_TREND).fill_nan(0.0).max() <= 1.0


def test_missing_base_timeframe_is_explained(m1):
    features = features_of(m1)
    del features[BASE]
    with pytest.raises(KeyError, match="base timeframe M5 has no features"):
        assemble_feature_matrix(features, BASE)


def test_built_matrix_is_trimmed_labeled_and_float32(m1):
    settings_ = FeatureSettings(indicators=tuple(SPECS))
    features = features_of(m1)
    built = build_feature_matrix(features, bars_of(m1), settings_)
    frame = built.frame
    assert frame.height + built.hygiene.warmup_rows + built.unlabeled_rows == (
        features[BASE].filter(pl.col("complete")).height
    )
    assert built.unlabeled_rows > 0  # the last bars' barriers run past the data
    assert all(frame.schema[c] == pl.Float32 for c in built.feature_columns)
    assert frame.get_column("tb_label").null_count() == 0
    assert (frame.get_column("tb_t1") > frame.get_column("close_time")).all()
    events = frame.filter(pl.col("meta_side").is_not_null() & pl.col("meta_label").is_not_null())
    assert (events.get_column("meta_t1") > events.get_column("close_time")).all()
    first = frame.row(0, named=True)
    assert all(first[c] == first[c] for c in built.feature_columns)  # no NaN after warm-up
    dropped = {d.column for d in built.hygiene.dropped}
    assert not dropped & set(frame.columns)
    # Session flags of daily and longer bars are constant and go, with the reason kept.
    assert prefixed(Timeframe.D1, "session_asia") in dropped


def test_trend_emas_need_two_periods():
    assert trend_ema_periods(parse_indicators({"ema": [50, 9, 21]})) == (9, 21)
    assert trend_ema_periods(parse_indicators({"ema": [9]})) is None


def test_truncation_inside_a_weekend_keeps_friday(m1):
    friday_close = m1.filter(pl.col("time").dt.weekday() == 5).get_column("time").max() + timedelta(
        minutes=1
    )
    truncated = matrix_of(m1.filter(pl.col("time") < friday_close + timedelta(hours=30)))
    assert truncated.get_column("close_time").max() <= friday_close


def _built(m1: pl.DataFrame, settings_: FeatureSettings):
    base = settings_.base_timeframe
    bars = {tf: resample_bars(m1, tf, CALENDAR) for tf in [base, *higher_timeframes(base)]}
    features = {tf: compute_indicators(b, settings_.indicators) for tf, b in bars.items()}
    return build_feature_matrix(features, bars, settings_)


def test_too_few_bars_for_any_labeled_row_is_explained(m1):
    with pytest.raises(TooFewBarsError) as info:
        _built(m1.head(60), FeatureSettings())
    assert str(info.value).startswith(
        "12 complete M5 bars is too few for the feature matrix: indicator warm-up takes 1 "
        "(m5__log_return_1) and the other 11 have no triple-barrier label yet"
    )
    assert "FOREX_ASSETS_SAMPLE_YEARS=0.1" in str(info.value)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.integers(min_value=0, max_value=1500))
def test_a_short_history_gives_rows_or_says_it_is_too_short(m1, rows):
    """However few bars there are, the matrix has labeled rows or names why it has none."""
    try:
        built = _built(m1.head(rows), FeatureSettings())
    except TooFewBarsError as error:
        assert "too few for the feature matrix" in str(error)
    else:
        assert built.frame.height > 0
        assert built.frame.get_column("tb_label").null_count() == 0
